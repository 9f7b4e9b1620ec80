// The built-in model families. registry.cpp registers them on first use of the registry, explicitly,
// because self-registering static objects are dropped when linking from a static library.
#pragma once

#include "kiln/nn/model.h"

namespace kiln::nn {

[[nodiscard]] ModelFamily linear_family();
[[nodiscard]] ModelFamily mlp_family();
[[nodiscard]] ModelFamily embedbag_family();
[[nodiscard]] ModelFamily bert_family();
[[nodiscard]] ModelFamily cnn_family();
[[nodiscard]] ModelFamily multimodal_family();

/// The channel count of the inputs' pixel_values [batch, C, H, W]; ConfigError naming `family` and
/// the fix (the image preprocessor) when there is none.
[[nodiscard]] int64_t pixel_channels(const std::string& family, const InputSpec& inputs);

}  // namespace kiln::nn
