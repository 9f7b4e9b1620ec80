// Converters from pixel arrays to labelled images (pure: no files, no network), for the image data
// sets of `kiln data fetch`.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "kiln/data/image.h"

namespace kiln::data {

struct LabeledImage {
  Image image;
  std::string label;
};

/// scikit-learn's digits.csv.gz, uncompressed: one row per image, 64 pixel values (0-16, row-major
/// 8x8) and the digit. Pixels scale to 0-255 gray. Throws DataError naming `where`:line.
[[nodiscard]] std::vector<LabeledImage> convert_digits_csv(std::string_view content, const std::string& where);

/// IDX files (MNIST, Fashion-MNIST): images (magic 0x803: count, rows, columns, then bytes) and
/// labels (magic 0x801: count, then bytes). Labels are the byte values in decimal. Throws DataError
/// naming `where` for a wrong magic number, counts that disagree or truncated files.
[[nodiscard]] std::vector<LabeledImage> convert_idx(std::string_view images, std::string_view labels,
                                                    const std::string& where);

}  // namespace kiln::data
