#ifndef OPENMMBG_H_
#define OPENMMBG_H_

// Umbrella header of the OpenMM-BG plugin: Boltzmann generators for OpenMM.

#include "openmmbg/MoleculeIO.h"
#include "openmmbg/OpenMMEnergy.h"

#endif
