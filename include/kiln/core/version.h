#pragma once

#include <string>

namespace kiln {

/// Kiln's version, "MAJOR.MINOR.PATCH".
[[nodiscard]] std::string version();

/// LibTorch's version and build (for `kiln version` and artifact manifests).
[[nodiscard]] std::string torch_version();

}  // namespace kiln
