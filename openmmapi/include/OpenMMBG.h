#ifndef OPENMMBG_H_
#define OPENMMBG_H_

// Umbrella header of the OpenMM-BG plugin: Boltzmann generators for OpenMM.
// The energy bridge, coordinates, flows and their trainer, the
// integrators, and coarse-grained latent-variable models. Toy systems, file formats and metrics used by the examples
// are in OpenMMBGTools.h.

#include "openmmbg/CGLatentModel.h"
#include "openmmbg/CGLatentTraining.h"
#include "openmmbg/CartesianCoordinates.h"
#include "openmmbg/Flow.h"
#include "openmmbg/FlowAnnealing.h"
#include "openmmbg/FlowModel.h"
#include "openmmbg/FlowTrainer.h"
#include "openmmbg/InternalCoordinates.h"
#include "openmmbg/LatentMetropolisIntegrator.h"
#include "openmmbg/OpenMMEnergy.h"
#include "openmmbg/Positions.h"
#include "openmmbg/RealNVPFlow.h"
#include "openmmbg/ReplicaExchange.h"
#include "openmmbg/SplineFlow.h"
#include "openmmbg/Stereochemistry.h"
#include "openmmbg/TSFFlow.h"
#include "openmmbg/TSFParallelTemperingIntegrator.h"
#include "openmmbg/Topology.h"
#include "openmmbg/ZMatrix.h"

#endif
