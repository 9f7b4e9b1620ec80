// libFuzzer target for the image decoder (PNG through libpng, JPEG through libjpeg-turbo). Input:
// the file's bytes. decode_image must return or throw kiln::Error; anything else (crash, hang, other
// exception, sanitizer report) is a bug. Small limits keep a forged header from asking for gigabytes;
// a decoded image is also pushed through the channel conversions.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "kiln/core/error.h"
#include "kiln/data/image.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  kiln::data::ImageLimits limits;
  limits.max_pixels = 1 << 20;
  limits.max_bytes = 1 << 20;
  try {
    const auto image = kiln::data::decode_image(std::string_view(reinterpret_cast<const char*>(data), size), limits);
    if (image.pixels.size() != static_cast<std::size_t>(image.width) * image.height * image.channels) __builtin_trap();
    (void)kiln::data::to_channels(image, 1);
    (void)kiln::data::to_channels(image, 3);
  } catch (const kiln::Error&) {
  }
  return 0;
}
