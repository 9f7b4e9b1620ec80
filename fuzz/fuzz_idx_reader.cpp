// libFuzzer target for the IDX reader (MNIST / Fashion-MNIST files, `kiln prepare --idx-labels`).
// Input: a 2-byte big-endian length L, then L bytes of images file and the rest as labels file.
// convert_idx must return or throw kiln::Error; anything else (crash, hang, huge allocation, other
// exception, sanitizer report) is a bug.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "image_datasets.h"
#include "kiln/core/error.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  const std::size_t split = std::min<std::size_t>((std::size_t{data[0]} << 8) | data[1], size - 2);
  const std::string_view rest(reinterpret_cast<const char*>(data) + 2, size - 2);
  try {
    const auto out = kiln::data::convert_idx(rest.substr(0, split), rest.substr(split), "images", "labels");
    for (const auto& li : out) {
      if (li.image.pixels.size() != static_cast<std::size_t>(li.image.width) * li.image.height) __builtin_trap();
    }
  } catch (const kiln::Error&) {
  }
  return 0;
}
