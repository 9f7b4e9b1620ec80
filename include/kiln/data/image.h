// Image decoding (PNG through libpng, JPEG through libjpeg-turbo) into 8-bit pixels, channel
// conversion, and the check that drops or rejects unreadable images of a data set. Free of LibTorch
// (the fuzz target links it alone); resizing and normalization live in the "image" preprocessor.
//
// Channel policy (what every consumer sees):
//  - decode_image keeps the file's own layout: 1 (gray), 2 (gray + alpha), 3 (RGB) or 4 (RGBA)
//    channels, 8 bits each (16-bit PNGs are reduced to 8 bits, palettes expanded; libpng's
//    simplified reader converts files that carry a gamma other than sRGB's to sRGB);
//  - to_channels(image, 1 | 3) composites alpha over a white background (transparent icon
//    backgrounds become white), turns RGB into gray with ITU-R BT.601 luma
//    (0.299 R + 0.587 G + 0.114 B, rounded), and replicates gray into three equal channels.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace kiln::data {

struct Dataset;
struct DataReport;

/// Limits applied before any pixel is decoded: an image beyond them is a DataError, never an
/// allocation of its claimed size.
struct ImageLimits {
  /// Largest encoded file, in bytes. Default 32 MiB.
  std::int64_t max_bytes = 32LL << 20;
  /// Largest width × height, in pixels. Default 40,000,000 (about 6300 × 6300).
  std::int64_t max_pixels = 40'000'000;
};

/// Decoded pixels, row-major, channels interleaved (HWC), 8 bits per channel.
struct Image {
  int width = 0;
  int height = 0;
  /// 1 gray, 2 gray + alpha, 3 RGB, 4 RGBA.
  int channels = 0;
  std::vector<std::uint8_t> pixels;  ///< height * width * channels bytes
};

/// "png", "jpeg", or "" when the bytes start with neither signature.
[[nodiscard]] std::string image_format(std::string_view bytes);

/// Decodes PNG or JPEG bytes. Throws DataError (message without a location: callers prefix the
/// file and row) for an unknown format, a corrupt or truncated file, a CMYK JPEG, or an image
/// larger than `limits`. Thread-safe.
[[nodiscard]] Image decode_image(std::string_view bytes, const ImageLimits& limits = {});

/// PNG bytes of `image` (1-4 channels, 8 bits). Throws DataError when libpng fails. Used to write
/// data sets held as arrays (digits, IDX) as image files.
[[nodiscard]] std::string encode_png(const Image& image);

/// Baseline JPEG bytes of `image` (1 or 3 channels) at `quality` (1-100).
[[nodiscard]] std::string encode_jpeg(const Image& image, int quality = 90);

/// The image with `channels` (1 or 3) channels, under the policy above. Throws ConfigError for
/// another count.
[[nodiscard]] Image to_channels(const Image& image, int channels);

/// The bytes of the image file `path`. Throws DataError when it is missing, unreadable or larger
/// than limits.max_bytes (naming the file).
[[nodiscard]] std::string read_image_file(const std::string& path, const ImageLimits& limits = {});

/// `path` resolved against `base_dir` (the data file's folder) unless it is absolute.
[[nodiscard]] std::string resolve_image_path(const std::string& base_dir, const std::string& path);

/// What to do with an image that cannot be read or decoded.
enum class BadImagePolicy {
  kError,  ///< throw DataError naming the row and the file (the default)
  kSkip,   ///< drop the row and count it under "bad_image" in the data report
};

/// Reads and decodes every image of `ds` (in parallel). Under kError the first bad one throws
/// DataError naming the example, the file and the problem; under kSkip bad rows are removed from
/// `ds` and counted in report->dropped["bad_image"] (report may be null), and rows_kept updated.
/// Returns the number of rows dropped. A data set without images is left as it is.
std::int64_t check_images(Dataset& ds, const ImageLimits& limits, BadImagePolicy policy, DataReport* report,
                          const std::string& where);

/// "error" | "skip" → the policy; ConfigError naming `flag` otherwise.
[[nodiscard]] BadImagePolicy bad_image_policy_from_name(const std::string& name, const std::string& flag);

}  // namespace kiln::data
