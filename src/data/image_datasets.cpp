// Image data sets for `kiln data fetch`: arrays of pixels (scikit-learn's digits.csv.gz, IDX files)
// turned into a folder of PNG files and an `image,label` CSV whose paths are relative to the CSV.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <sstream>

#include "image_datasets.h"

#include <nlohmann/json.hpp>

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

std::vector<LabeledImage> convert_mnist_json(std::string_view content, const std::string& label,
                                             const std::string& where) {
  constexpr std::size_t kPixels = 28 * 28;
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(content);
  } catch (const nlohmann::json::parse_error& e) {
    throw DataError(where + ": not valid JSON (byte " + std::to_string(e.byte) +
                    "); the download may be corrupt: fetch again with --force");
  } catch (const nlohmann::json::exception&) {
    throw DataError(where + ": not usable JSON; the download may be corrupt: fetch again with --force");
  }
  if (!j.is_object() || !j.contains("data") || !j["data"].is_array()) {
    throw DataError(where + ": expected an object {\"data\": [pixels...]}, got " + std::string(j.type_name()) +
                    (j.is_object() ? " without a 'data' list" : ""));
  }
  const auto& data = j["data"];
  if (data.size() % kPixels != 0) {
    throw DataError(where + ": 'data' holds " + std::to_string(data.size()) +
                    " values, not a multiple of 784 (28x28 pixels per image)");
  }
  std::vector<LabeledImage> out(data.size() / kPixels);
  for (std::size_t i = 0; i < out.size(); ++i) {
    out[i].label = label;
    out[i].image.width = out[i].image.height = 28;
    out[i].image.channels = 1;
    out[i].image.pixels.resize(kPixels);
    for (std::size_t k = 0; k < kPixels; ++k) {
      const auto& v = data[i * kPixels + k];
      const double d = v.is_number() ? v.get<double>() : -1.0;
      if (!(d >= 0.0 && d <= 1.0)) {
        throw DataError(where + ": data[" + std::to_string(i * kPixels + k) + "] is " + v.dump() +
                        "; pixels are numbers from 0 to 1");
      }
      out[i].image.pixels[k] = static_cast<std::uint8_t>(std::lround(d * 255.0));
    }
  }
  return out;
}

namespace {

std::uint32_t be32(std::string_view s, std::size_t at) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data()) + at;
  return (std::uint32_t(p[0]) << 24) | (std::uint32_t(p[1]) << 16) | (std::uint32_t(p[2]) << 8) | std::uint32_t(p[3]);
}

std::string hex32(std::uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08x", v);
  return buf;
}

// Throws unless `bytes` starts with the IDX header of unsigned bytes with `dims` dimensions.
void check_idx_magic(std::string_view bytes, int dims, const std::string& name, const char* role,
                     const char* example) {
  if (bytes.size() >= 2 && static_cast<unsigned char>(bytes[0]) == 0x1f && static_cast<unsigned char>(bytes[1]) == 0x8b) {
    throw DataError(name + ": the file is gzip-compressed; uncompress it first (`gunzip -k " + name + "`) and pass "
                    "the uncompressed file");
  }
  const std::size_t header = 4 + 4 * static_cast<std::size_t>(dims);
  const std::uint32_t want = 0x800u + static_cast<std::uint32_t>(dims);
  if (bytes.size() < 4 || be32(bytes, 0) != want) {
    throw DataError(name + ": not an IDX " + role + " file: magic number " +
                    (bytes.size() < 4 ? std::string("missing (") + std::to_string(bytes.size()) + " bytes)"
                                      : hex32(be32(bytes, 0))) +
                    ", expected " + hex32(want) + " (unsigned bytes, " + std::to_string(dims) +
                    (dims == 1 ? " dimension" : " dimensions") + "); pass the " + role + " file (e.g. " + example +
                    ")");
  }
  if (bytes.size() < header) {
    throw DataError(name + ": truncated IDX header (" + std::to_string(bytes.size()) + " bytes, the header has " +
                    std::to_string(header) + "); download the file again");
  }
}

void check_idx_size(std::string_view bytes, std::uint64_t expected, const std::string& name, const std::string& what) {
  if (bytes.size() < expected) {
    throw DataError(name + ": truncated: the header declares " + what + " (" + std::to_string(expected) +
                    " bytes) but the file has " + std::to_string(bytes.size()) + " bytes; download it again");
  }
  if (bytes.size() > expected) {
    throw DataError(name + ": " + std::to_string(bytes.size() - expected) + " bytes after the last record; the header "
                    "declares " + what + " (" + std::to_string(expected) + " bytes); the file is corrupt or not IDX");
  }
}

}  // namespace

std::vector<LabeledImage> convert_idx(std::string_view images, std::string_view labels, const std::string& images_name,
                                      const std::string& labels_name) {
  check_idx_magic(images, 3, images_name, "images", "train-images-idx3-ubyte");
  check_idx_magic(labels, 1, labels_name, "labels", "train-labels-idx1-ubyte");
  const std::uint64_t n = be32(images, 4), h = be32(images, 8), w = be32(images, 12), nl = be32(labels, 4);
  if (h == 0 || w == 0 || h > 4096 || w > 4096) {
    throw DataError(images_name + ": the header declares images of " + std::to_string(h) + "x" + std::to_string(w) +
                    " pixels; each side must be from 1 to 4096");
  }
  const std::string shape = std::to_string(n) + " images of " + std::to_string(h) + "x" + std::to_string(w);
  check_idx_size(images, 16 + n * h * w, images_name, shape);
  check_idx_size(labels, 8 + nl, labels_name, std::to_string(nl) + " labels");
  if (n != nl) {
    throw DataError(images_name + " holds " + std::to_string(n) + " images but " + labels_name + " holds " +
                    std::to_string(nl) + " labels; pass the labels file that belongs to these images "
                    "(train-images with train-labels, t10k-images with t10k-labels)");
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
