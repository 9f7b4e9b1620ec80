#pragma once

#include <string>

namespace kiln {

/// Kiln's version, "MAJOR.MINOR.PATCH" (the CMake project version, compiled into kiln::core).
[[nodiscard]] std::string version();

}  // namespace kiln
