// Numbers in messages for people (not persisted).
#pragma once

#include <string>

namespace kiln::core {

/// `v` as an std::ostream prints it by default (6 significant digits: 0.3, 1e-05, inf, nan).
[[nodiscard]] std::string format_number(double v);

}  // namespace kiln::core
