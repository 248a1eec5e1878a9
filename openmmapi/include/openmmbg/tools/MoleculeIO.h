#ifndef OPENMMBG_MOLECULEIO_H_
#define OPENMMBG_MOLECULEIO_H_

#include <openmm/System.h>
#include <openmm/Vec3.h>

#include <memory>
#include <string>
#include <vector>

namespace OpenMMBG {

/** One ATOM/HETATM record of a PDB file. */
struct PdbAtom {
    std::string name;         // e.g. "CA"
    std::string residueName;  // e.g. "ALA"
    int residueNumber = 0;
    std::string element;      // e.g. "C"; empty if the file gives none
};

/** The atoms and positions of the first model of a PDB file. */
struct PdbStructure {
    std::vector<PdbAtom> atoms;
    std::vector<OpenMM::Vec3> positions;  // nm

    /** Index of the atom with this residue and atom name, or -1. */
    int findAtom(const std::string& residueName, const std::string& atomName) const;
};

/** Reads a PDB file (first model only). Throws OpenMMException if it is missing or malformed. */
PdbStructure readPdb(const std::string& path);

/** Loads a System serialized with OpenMM's XmlSerializer. Throws OpenMMException if missing or corrupt. */
std::unique_ptr<OpenMM::System> loadSystemXml(const std::string& path);

/** Serializes a System with OpenMM's XmlSerializer. */
void saveSystemXml(const OpenMM::System& system, const std::string& path);

} // namespace OpenMMBG

#endif
