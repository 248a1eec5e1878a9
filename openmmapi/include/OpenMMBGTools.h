#ifndef OPENMMBG_TOOLS_H_
#define OPENMMBG_TOOLS_H_

// What the examples, benchmarks and tests use around the plugin: toy systems
// with exact answers, PDB/System XML/DCD files, and sampling metrics.

#include "openmmbg/tools/DCDFile.h"
#include "openmmbg/tools/Metrics.h"
#include "openmmbg/tools/MoleculeIO.h"
#include "openmmbg/tools/Reweighting.h"
#include "openmmbg/tools/ToySystems.h"

#endif
