// The C++ API in one program, as the README shows it: train a TSF on 600 K
// frames of alanine dipeptide (ML, then mixed ML + KL), save and reload it,
// sample at 300 K, then alternate Langevin MD with LatentMetropolisIntegrator
// moves in a CompoundIntegrator, and run TSFParallelTemperingIntegrator.
//
//   api_tour md600.dcd [--ml-steps 3000] [--mixed-steps 1500] [--cycles 100]
//
// md600.dcd: 600 K frames, e.g. the pipeline's results/alanine_dipeptide/md600.dcd.

#include <OpenMM.h>
#include <OpenMMBG.h>
#include <OpenMMBGTools.h>

#include <ATen/CPUGeneratorImpl.h>

#include <cstdio>
#include <cstring>
#include <string>

using namespace OpenMMBG;

int main(int argc, char** argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: api_tour md600.dcd [--ml-steps N] [--mixed-steps N] [--cycles N]\n");
        return 2;
    }
    long long mlSteps = 3000, mixedSteps = 1500;
    int cycles = 100;
    for (int i = 2; i + 1 < argc; i += 2) {
        if (!std::strcmp(argv[i], "--ml-steps"))
            mlSteps = std::stoll(argv[i + 1]);
        else if (!std::strcmp(argv[i], "--mixed-steps"))
            mixedSteps = std::stoll(argv[i + 1]);
        else if (!std::strcmp(argv[i], "--cycles"))
            cycles = std::stoi(argv[i + 1]);
    }
    try {
        OpenMM::Platform::loadPluginsFromDirectory(OpenMM::Platform::getDefaultPluginsDirectory());
        const std::string data = BG_DATA_DIR;
        std::unique_ptr<OpenMM::System> system = loadSystemXml(data + "/alanine_dipeptide_system.xml");
        at::Tensor frames = readDcd(argv[1], system->getNumParticles());  // [F, 22, 3] nm, float64

        // A TSF on internal coordinates (z-matrix from the bond graph, cuts and normalisation from the frames),
        // with volume-preserving spline couplings besides its affine ones (still temperature-steerable).
        FlowConfig config;
        config.numBlocks = 4;
        config.hiddenLayers = 2;
        config.hiddenWidth = 128;
        config.tsfSplineCouplings = true;
        FlowModel model = FlowModel::createForMolecule(*system, frames, "tsf", config, 600.0);

        // Maximum likelihood, then mixed ML + reverse KL through the energy bridge.
        TrainerOptions options;
        options.printProgress = true;
        options.logInterval = 250;
        FlowTrainer trainer(model, options);  // trains `model` in place
        const int64_t heldOut = frames.size(0) / 10;  // the run's last tenth, for early stopping
        trainer.setData(frames.narrow(0, 0, frames.size(0) - heldOut), 600.0);
        trainer.setValidationData(frames.narrow(0, frames.size(0) - heldOut, heldOut));
        trainer.setEnergy(std::make_shared<OpenMMEnergy>(*system, 600.0));
        TrainingStage ml;
        ml.name = "ml";
        ml.steps = mlSteps;
        ml.learningRate = 1e-3;
        ml.finalLearningRate = 1e-4;
        ml.validationInterval = 250;  // ends with the weights of the best held-out NLL
        trainer.train(ml);
        TrainingStage mixed;
        mixed.name = "mixed";
        mixed.steps = mixedSteps;
        mixed.learningRate = 3e-4;
        mixed.finalLearningRate = 3e-5;
        mixed.lambdaStart = 0.0;
        mixed.lambdaEnd = 0.2;
        trainer.train(mixed);
        model.save("api_tour_flow.bgflow");

        // Sampling and densities at any temperature.
        FlowModel flow = FlowModel::load("api_tour_flow.bgflow", *system);
        at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(1);
        FlowSample sample = flow.sample(1000, 300.0, generator);
        at::Tensor logq = flow.logProb(frames.narrow(0, 0, 1000), 600.0, generator);
        std::printf("300 K samples: %.1f%% in the domain; mean log q of 1000 MD frames at 600 K: %.2f nats\n",
                    100 * sample.inDomain.to(at::kDouble).mean().item<double>(), logq.mean().item<double>());

        // MD and flow moves, alternating.
        std::vector<OpenMM::Vec3> positions;
        for (int i = 0; i < system->getNumParticles(); i++)
            positions.emplace_back(frames[0][i][0].item<double>(), frames[0][i][1].item<double>(),
                                   frames[0][i][2].item<double>());
        auto* moves = new LatentMetropolisIntegrator(flow, 300.0, 0.1, 0.1);
        moves->setRandomNumberSeed(5);
        auto* md = new OpenMM::LangevinMiddleIntegrator(300.0, 1.0, 0.001);
        OpenMM::CompoundIntegrator integrator;  // owns both
        integrator.addIntegrator(md);
        integrator.addIntegrator(moves);
        OpenMM::Context context(*system, integrator, OpenMM::Platform::getPlatformByName("CPU"));
        context.setPositions(positions);
        integrator.setCurrentIntegrator(1);
        moves->warmUp(1000);
        for (int cycle = 0; cycle < cycles; cycle++) {
            integrator.setCurrentIntegrator(0);
            integrator.step(500);
            integrator.setCurrentIntegrator(1);
            integrator.step(50);
        }
        std::printf("MD + flow moves: acceptance %.3f, energy %.1f kJ/mol\n", moves->getAcceptanceRate(),
                    context.getState(OpenMM::State::Energy).getPotentialEnergy());

        // Parallel tempering on one TSF.
        TSFParallelTemperingIntegrator pt(flow, TSFParallelTemperingIntegrator::geometricLadder(300, 600, 5), 0.1, 0.1);
        pt.setRandomNumberSeed(7);
        OpenMM::Context ptContext(*system, pt, OpenMM::Platform::getPlatformByName("CPU"));
        ptContext.setPositions(positions);
        pt.warmUp(500);
        pt.step(20 * cycles);
        std::printf("parallel tempering: exchange acceptance");
        for (int pair = 0; pair + 1 < pt.getNumReplicas(); pair++)
            std::printf(" %.2f", pt.getExchangeAcceptanceRate(pair));
        std::printf(", %lld round trips\n", pt.getNumRoundTrips());
    } catch (const std::exception& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return 1;
    }
    return 0;
}
