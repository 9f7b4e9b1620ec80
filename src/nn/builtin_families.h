// The built-in model families. registry.cpp registers them on first use of the registry, explicitly,
// because self-registering static objects are dropped when linking from a static library.
#pragma once

#include "kiln/nn/model.h"

namespace kiln::nn {

[[nodiscard]] ModelFamily linear_family();
[[nodiscard]] ModelFamily mlp_family();
[[nodiscard]] ModelFamily embedbag_family();
[[nodiscard]] ModelFamily bert_family();

}  // namespace kiln::nn
