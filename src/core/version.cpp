#include "kiln/core/version.h"

#ifndef KILN_VERSION_STRING
#error "KILN_VERSION_STRING must be defined by the build (CMakeLists.txt: add_compile_definitions)"
#endif

namespace kiln {

std::string version() { return KILN_VERSION_STRING; }

}  // namespace kiln
