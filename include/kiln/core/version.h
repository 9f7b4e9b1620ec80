#pragma once

#include <string>

namespace kiln {

/// Kiln's version, "MAJOR.MINOR.PATCH".
[[nodiscard]] inline std::string version() { return KILN_VERSION_STRING; }

}  // namespace kiln
