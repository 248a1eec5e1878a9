#ifndef OPENMMBG_H_
#define OPENMMBG_H_

// Umbrella header of the OpenMM-BG plugin: Boltzmann generators for OpenMM.

#include "openmmbg/CartesianCoordinates.h"
#include "openmmbg/DCDFile.h"
#include "openmmbg/Flow.h"
#include "openmmbg/FlowModel.h"
#include "openmmbg/FlowTrainer.h"
#include "openmmbg/InternalCoordinates.h"
#include "openmmbg/LatentMetropolisIntegrator.h"
#include "openmmbg/Metrics.h"
#include "openmmbg/MoleculeIO.h"
#include "openmmbg/OpenMMEnergy.h"
#include "openmmbg/RealNVPFlow.h"
#include "openmmbg/Stereochemistry.h"
#include "openmmbg/TSFParallelTemperingIntegrator.h"
#include "openmmbg/TSFFlow.h"
#include "openmmbg/Topology.h"
#include "openmmbg/ToySystems.h"
#include "openmmbg/ZMatrix.h"

#endif
