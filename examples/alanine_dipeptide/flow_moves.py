#!/usr/bin/python3
"""Flow moves in an ordinary OpenMM Python script: alanine dipeptide at 300 K
with the flow the pipeline trained (results/alanine_dipeptide/flow.bgflow).

    /usr/bin/python3 examples/alanine_dipeptide/flow_moves.py
        [--flow FILE] [--moves 2000] [--cycles 20] [--output DIR]

1. app.Simulation with a LatentMetropolisIntegrator and the usual reporters
   (StateDataReporter, DCDReporter): `moves` flow moves at 300 K.
2. A CompoundIntegrator that alternates Langevin MD (0.5 ps) and 50 flow
   moves, `cycles` times, reporting phi after each cycle.

Writes flow_moves.log and flow_moves.dcd into DIR (default: the flow's folder).
"""
import argparse
import os
import sys

import numpy as np
import openmm
import openmm.app as app
import openmm.unit as unit

import openmmbg

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
TEMPERATURE = 300 * unit.kelvin


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--flow", default="results/alanine_dipeptide/flow.bgflow")
    parser.add_argument("--moves", type=int, default=2000, help="flow moves in the app.Simulation part")
    parser.add_argument("--cycles", type=int, default=20, help="MD + flow-move cycles in the CompoundIntegrator part")
    parser.add_argument("--output", help="folder for flow_moves.log and flow_moves.dcd (default: the flow's)")
    args = parser.parse_args()
    if not os.path.exists(args.flow):
        sys.exit(f"error: no flow at {args.flow}; run the pipeline first (bash scripts/run_pipeline.sh) or pass --flow")
    output = args.output or os.path.dirname(os.path.abspath(args.flow))
    os.makedirs(output, exist_ok=True)

    pdb = app.PDBFile(os.path.join(DATA, "alanine_dipeptide.pdb"))
    with open(os.path.join(DATA, "alanine_dipeptide_system.xml")) as f:
        system = openmm.XmlSerializer.deserialize(f.read())
    flow = openmmbg.FlowModel.load(args.flow, system)  # refuses a flow made for another System
    print(f"flow: {args.flow} ({flow.getFlowType()}, {flow.getNumParameters()} parameters, "
          f"T_ref {flow.getReferenceTemperature():.0f} K)")

    # 1. Flow moves as the integrator of an app.Simulation, with reporters.
    moves = openmmbg.LatentMetropolisIntegrator(flow, TEMPERATURE, 0.05, 0.1)  # T, latent sigma, P(independence)
    moves.setRandomNumberSeed(1)
    simulation = app.Simulation(pdb.topology, system, moves, openmm.Platform.getPlatformByName("Reference"))
    simulation.context.setPositions(pdb.positions)
    moves.warmUp(200)  # tunes the latent step size towards 30% acceptance; production steps never adapt
    log = os.path.join(output, "flow_moves.log")
    simulation.reporters.append(app.StateDataReporter(log, max(1, args.moves // 20), step=True,
                                                      potentialEnergy=True))
    simulation.reporters.append(app.DCDReporter(os.path.join(output, "flow_moves.dcd"), max(1, args.moves // 100)))
    simulation.step(args.moves)
    statistics = moves.getStatistics()
    print(f"app.Simulation: {args.moves} flow moves, latent step {moves.getLatentStepSize():.3f}, acceptance "
          f"random walk {statistics.acceptanceRate(openmmbg.MoveKind.RandomWalk):.3f}, "
          f"independence {statistics.acceptanceRate(openmmbg.MoveKind.Independence):.4f}; log {log}")

    # 2. MD and flow moves alternating in a CompoundIntegrator (it owns both integrators).
    md = openmm.LangevinMiddleIntegrator(TEMPERATURE, 1 / unit.picosecond, 1 * unit.femtosecond)
    md.setRandomNumberSeed(2)
    mc = openmmbg.LatentMetropolisIntegrator(flow, TEMPERATURE, moves.getLatentStepSize(), 0.1)
    mc.setRandomNumberSeed(3)
    compound = openmm.CompoundIntegrator()
    compound.addIntegrator(md)
    compound.addIntegrator(mc)
    context = openmm.Context(system, compound, openmm.Platform.getPlatformByName("Reference"))
    context.setPositions(simulation.context.getState(getPositions=True).getPositions())
    context.setVelocitiesToTemperature(TEMPERATURE, 4)
    phi_atoms, _ = openmmbg.backboneDihedrals(openmmbg.readPdb(os.path.join(DATA, "alanine_dipeptide.pdb")))
    for cycle in range(args.cycles):
        compound.setCurrentIntegrator(0)
        compound.step(500)  # 0.5 ps of MD
        compound.setCurrentIntegrator(1)
        compound.step(50)   # 50 flow moves
        x = context.getState(getPositions=True).getPositions(asNumpy=True).value_in_unit(unit.nanometer)
        phi = openmmbg.dihedralAngles(np.asarray(x)[None], phi_atoms)[0]
        print(f"  cycle {cycle + 1:3d}: phi {np.degrees(phi):7.1f} deg")
    print(f"CompoundIntegrator: {args.cycles} cycles, flow-move acceptance {mc.getAcceptanceRate():.3f}")


if __name__ == "__main__":
    main()
