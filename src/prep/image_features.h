// The built-in "image" preprocessor type (image_features.cpp), added by the registry, and the pure
// tensor steps it is made of (exposed for tests and goldens).
#pragma once

#include <torch/torch.h>

#include <array>
#include <cstdint>
#include <string>

#include "kiln/data/image.h"
#include "kiln/prep/preprocessor.h"

namespace kiln::prep {

[[nodiscard]] PreprocessorType image_type();

/// How an image reaches the target size. Persisted in kiln.json: never rename.
///  - "stretch": the whole image scaled to height × width (the aspect ratio changes when it differs);
///  - "center_crop": scaled (keeping the aspect ratio) until it covers height × width, then the
///    centre cut out (torchvision's Resize(shorter side) + CenterCrop).
/// Both scale with bilinear interpolation, half-pixel centres (PyTorch's
/// interpolate(mode="bilinear", align_corners=False), no antialiasing).
[[nodiscard]] torch::Tensor resize_image(const torch::Tensor& chw, int64_t height, int64_t width,
                                         const std::string& policy);

/// An 8-bit image as float32 [channels, height, width] in [0, 1].
[[nodiscard]] torch::Tensor image_to_tensor(const data::Image& image);

/// Training augmentation of normalized pixel_values [batch, C, H, W], one random draw per example
/// from LibTorch's global generator, applied as one affine resampling (bilinear, zeros outside,
/// which is the channel mean after normalization):
///  - random resized crop: a window covering a share in [crop_scale_min, crop_scale_max] of the
///    image area, aspect ratio in [3/4, 4/3] (log-uniform; a side that would overflow the image is
///    clipped to it, keeping the area), placed uniformly, scaled back to H × W;
///  - horizontal flip with probability 1/2 when `hflip`;
///  - rotation by a uniform angle in [-rotation_degrees, rotation_degrees].
struct AugmentOptions {
  double crop_scale_min = 0.8;
  double crop_scale_max = 1.0;
  bool hflip = false;
  double rotation_degrees = 10.0;
};
[[nodiscard]] torch::Tensor augment_pixels(const torch::Tensor& pixels, const AugmentOptions& options);

}  // namespace kiln::prep
