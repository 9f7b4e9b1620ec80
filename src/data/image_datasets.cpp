// Image data sets for `kiln data fetch`: arrays of pixels (scikit-learn's digits.csv.gz, IDX files)
// turned into a folder of PNG files and an `image,label` CSV whose paths are relative to the CSV.
#include <cmath>
#include <cstring>
#include <sstream>

#include "image_datasets.h"
#include "kiln/core/error.h"
#include "kiln/data/image.h"

namespace kiln::data {

std::vector<LabeledImage> convert_digits_csv(std::string_view content, const std::string& where) {
  std::vector<LabeledImage> out;
  std::size_t line_no = 0, pos = 0;
  while (pos < content.size()) {
    std::size_t end = content.find('\n', pos);
    if (end == std::string_view::npos) end = content.size();
    std::string_view line = content.substr(pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) continue;
    std::vector<double> values;
    std::size_t start = 0;
    while (start <= line.size()) {
      std::size_t comma = line.find(',', start);
      if (comma == std::string_view::npos) comma = line.size();
      const std::string field(line.substr(start, comma - start));
      char* stop = nullptr;
      const double v = std::strtod(field.c_str(), &stop);
      if (field.empty() || stop != field.c_str() + field.size() || !std::isfinite(v)) {
        throw DataError(where + ":" + std::to_string(line_no) + ": field " + std::to_string(values.size() + 1) +
                        " is not a number: '" + field + "'");
      }
      values.push_back(v);
      start = comma + 1;
    }
    if (values.size() != 65) {
      throw DataError(where + ":" + std::to_string(line_no) + ": expected 65 fields (8x8 pixels and a label), got " +
                      std::to_string(values.size()));
    }
    LabeledImage li;
    li.image.width = li.image.height = 8;
    li.image.channels = 1;
    li.image.pixels.resize(64);
    for (int i = 0; i < 64; ++i) {
      // 0..16 ink counts → 0..255 gray, white ink on black as scikit-learn draws them (gray_r aside).
      const double v = std::min(16.0, std::max(0.0, values[static_cast<std::size_t>(i)]));
      li.image.pixels[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(std::lround(v * 255.0 / 16.0));
    }
    li.label = std::to_string(static_cast<int>(values[64]));
    out.push_back(std::move(li));
  }
  return out;
}

std::vector<LabeledImage> convert_idx(std::string_view images, std::string_view labels, const std::string& where) {
  auto be32 = [](std::string_view s, std::size_t at) {
    const auto* p = reinterpret_cast<const unsigned char*>(s.data()) + at;
    return (std::uint32_t(p[0]) << 24) | (std::uint32_t(p[1]) << 16) | (std::uint32_t(p[2]) << 8) | std::uint32_t(p[3]);
  };
  if (images.size() < 16 || be32(images, 0) != 0x00000803) {
    throw DataError(where + ": the images file is not an IDX file of unsigned bytes with 3 dimensions (magic 0x00000803)");
  }
  if (labels.size() < 8 || be32(labels, 0) != 0x00000801) {
    throw DataError(where + ": the labels file is not an IDX file of unsigned bytes with 1 dimension (magic 0x00000801)");
  }
  const std::uint64_t n = be32(images, 4), h = be32(images, 8), w = be32(images, 12), nl = be32(labels, 4);
  if (n != nl) {
    throw DataError(where + ": " + std::to_string(n) + " images but " + std::to_string(nl) + " labels");
  }
  if (h == 0 || w == 0 || h > 4096 || w > 4096 || images.size() != 16 + n * h * w || labels.size() != 8 + n) {
    throw DataError(where + ": the IDX files' sizes do not match their headers (" + std::to_string(n) + " images of " +
                    std::to_string(h) + "x" + std::to_string(w) + "); the file is truncated or corrupt");
  }
  std::vector<LabeledImage> out(n);
  for (std::uint64_t i = 0; i < n; ++i) {
    out[i].image.width = static_cast<int>(w);
    out[i].image.height = static_cast<int>(h);
    out[i].image.channels = 1;
    out[i].image.pixels.assign(images.begin() + static_cast<std::ptrdiff_t>(16 + i * h * w),
                               images.begin() + static_cast<std::ptrdiff_t>(16 + (i + 1) * h * w));
    out[i].label = std::to_string(static_cast<unsigned char>(labels[8 + i]));
  }
  return out;
}

}  // namespace kiln::data
