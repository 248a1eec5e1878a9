#include "openmmbg/tools/MoleculeIO.h"

#include <openmm/OpenMMException.h>
#include <openmm/serialization/XmlSerializer.h>

#include <fstream>
#include <sstream>

using OpenMM::OpenMMException;

namespace OpenMMBG {

namespace {

std::string trim(const std::string& text) {
    size_t begin = text.find_first_not_of(' ');
    if (begin == std::string::npos)
        return "";
    return text.substr(begin, text.find_last_not_of(' ') - begin + 1);
}

/** Columns [begin, begin+width) of a fixed-column PDB line, 0-based, trimmed. */
std::string field(const std::string& line, size_t begin, size_t width) {
    return begin < line.size() ? trim(line.substr(begin, width)) : "";
}

double coordinate(const std::string& line, size_t begin, const std::string& path, int lineNumber) {
    std::string text = field(line, begin, 8);
    try {
        size_t used;
        double value = std::stod(text, &used);
        if (used == text.size())
            return value;
    } catch (const std::exception&) {
    }
    throw OpenMMException("readPdb: " + path + ", line " + std::to_string(lineNumber)
                          + ": cannot read a coordinate from '" + text + "'");
}

} // namespace

int PdbStructure::findAtom(const std::string& residueName, const std::string& atomName) const {
    for (size_t i = 0; i < atoms.size(); i++)
        if (atoms[i].residueName == residueName && atoms[i].name == atomName)
            return (int) i;
    return -1;
}

PdbStructure readPdb(const std::string& path) {
    std::ifstream in(path);
    if (!in)
        throw OpenMMException("readPdb: cannot open '" + path + "'");
    PdbStructure structure;
    std::string line;
    int lineNumber = 0;
    while (std::getline(in, line)) {
        lineNumber++;
        if (line.rfind("ENDMDL", 0) == 0)
            break;
        if (line.rfind("ATOM", 0) != 0 && line.rfind("HETATM", 0) != 0)
            continue;
        PdbAtom atom;
        atom.name = field(line, 12, 4);
        atom.residueName = field(line, 17, 3);
        std::string residueNumber = field(line, 22, 4);
        try {
            atom.residueNumber = std::stoi(residueNumber);
        } catch (const std::exception&) {
            throw OpenMMException("readPdb: " + path + ", line " + std::to_string(lineNumber)
                                  + ": cannot read a residue number from '" + residueNumber + "'");
        }
        atom.element = field(line, 76, 2);
        // PDB files hold Angstroms.
        OpenMM::Vec3 position(coordinate(line, 30, path, lineNumber), coordinate(line, 38, path, lineNumber),
                              coordinate(line, 46, path, lineNumber));
        structure.atoms.push_back(atom);
        structure.positions.push_back(position * 0.1);
    }
    if (structure.atoms.empty())
        throw OpenMMException("readPdb: '" + path + "' holds no ATOM or HETATM records");
    return structure;
}

std::unique_ptr<OpenMM::System> loadSystemXml(const std::string& path) {
    std::ifstream in(path);
    if (!in)
        throw OpenMMException("loadSystemXml: cannot open '" + path + "'");
    try {
        return std::unique_ptr<OpenMM::System>(OpenMM::XmlSerializer::deserialize<OpenMM::System>(in));
    } catch (const std::exception& e) {
        throw OpenMMException("loadSystemXml: '" + path + "' is not a serialized OpenMM System: " + e.what());
    }
}

void saveSystemXml(const OpenMM::System& system, const std::string& path) {
    std::ofstream out(path);
    if (!out)
        throw OpenMMException("saveSystemXml: cannot write '" + path + "'");
    OpenMM::XmlSerializer::serialize<OpenMM::System>(&system, "System", out);
    if (!out)
        throw OpenMMException("saveSystemXml: writing '" + path + "' failed");
}

} // namespace OpenMMBG
