// PNG (libpng's simplified reader) and JPEG (libjpeg-turbo) decoding, channel conversion, and image
// file reading. No LibTorch and no other Kiln source: fuzz/fuzz_image_decoder links this file alone.
#include <png.h>
// jpeglib.h needs size_t and FILE declared first.
#include <cstddef>
#include <cstdio>
#include <jpeglib.h>

#include <csetjmp>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "kiln/core/error.h"
#include "kiln/data/image.h"

namespace kiln::data {
namespace {

std::string pixels_text(std::int64_t w, std::int64_t h) { return std::to_string(w) + "x" + std::to_string(h); }

void check_size(std::int64_t w, std::int64_t h, const ImageLimits& limits, const char* format) {
  if (w < 1 || h < 1) throw DataError(std::string(format) + " header gives an empty image (" + pixels_text(w, h) + ")");
  if (w * h > limits.max_pixels) {
    throw DataError(std::string(format) + " image is " + pixels_text(w, h) + " = " + std::to_string(w * h) +
                    " pixels, more than the limit of " + std::to_string(limits.max_pixels) +
                    "; shrink it first or raise the pixel limit");
  }
}

Image decode_png(std::string_view bytes, const ImageLimits& limits) {
  png_image img;
  std::memset(&img, 0, sizeof img);
  img.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_memory(&img, bytes.data(), bytes.size())) {
    const std::string msg = img.message;
    png_image_free(&img);
    throw DataError("corrupt PNG: " + msg);
  }
  try {
    check_size(img.width, img.height, limits, "PNG");
  } catch (...) {
    png_image_free(&img);
    throw;
  }
  const bool color = (img.format & PNG_FORMAT_FLAG_COLOR) != 0;
  const bool alpha = (img.format & PNG_FORMAT_FLAG_ALPHA) != 0;
  img.format = color ? (alpha ? PNG_FORMAT_RGBA : PNG_FORMAT_RGB) : (alpha ? PNG_FORMAT_GA : PNG_FORMAT_GRAY);
  Image out;
  out.width = static_cast<int>(img.width);
  out.height = static_cast<int>(img.height);
  out.channels = static_cast<int>(PNG_IMAGE_SAMPLE_CHANNELS(img.format));
  out.pixels.resize(PNG_IMAGE_SIZE(img));
  if (!png_image_finish_read(&img, nullptr, out.pixels.data(), 0, nullptr)) {
    const std::string msg = img.message;
    png_image_free(&img);
    throw DataError("corrupt or truncated PNG: " + msg);
  }
  png_image_free(&img);
  return out;
}

// libjpeg reports errors through a callback that must not return: it long-jumps back into
// jpeg_decode_raw, which holds no C++ object whose destructor could be skipped.
struct JpegError {
  jpeg_error_mgr mgr;
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
  int warnings;
};

void jpeg_on_error(j_common_ptr c) {
  auto* e = reinterpret_cast<JpegError*>(c->err);
  (*c->err->format_message)(c, e->message);
  std::longjmp(e->jump, 1);
}

// Warnings (msg_level -1) are corrupt data: a truncated file decodes as gray padding otherwise.
void jpeg_on_message(j_common_ptr c, int level) {
  auto* e = reinterpret_cast<JpegError*>(c->err);
  if (level < 0 && e->warnings++ == 0) (*c->err->format_message)(c, e->message);
}

enum class JpegStatus { kOk, kError, kWarning, kTooLarge, kCmyk };

// C-style on purpose (see JpegError). `out` lives in the caller's frame.
JpegStatus jpeg_decode_raw(const unsigned char* data, unsigned long size, const ImageLimits& limits, Image& out,
                           JpegError& err) {
  jpeg_decompress_struct cinfo;
  cinfo.err = jpeg_std_error(&err.mgr);
  err.mgr.error_exit = jpeg_on_error;
  err.mgr.emit_message = jpeg_on_message;
  err.warnings = 0;
  err.message[0] = '\0';
  if (setjmp(err.jump)) {
    jpeg_destroy_decompress(&cinfo);
    return JpegStatus::kError;
  }
  jpeg_create_decompress(&cinfo);
  jpeg_mem_src(&cinfo, data, size);
  jpeg_read_header(&cinfo, TRUE);
  out.width = static_cast<int>(cinfo.image_width);
  out.height = static_cast<int>(cinfo.image_height);
  if (cinfo.image_width < 1 || cinfo.image_height < 1 ||
      static_cast<std::int64_t>(cinfo.image_width) * cinfo.image_height > limits.max_pixels) {
    jpeg_destroy_decompress(&cinfo);
    return JpegStatus::kTooLarge;
  }
  if (cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK) {
    jpeg_destroy_decompress(&cinfo);
    return JpegStatus::kCmyk;
  }
  cinfo.out_color_space = cinfo.num_components == 1 ? JCS_GRAYSCALE : JCS_RGB;
  // Bound libjpeg's own working memory (progressive files buffer every coefficient).
  cinfo.mem->max_memory_to_use = 512L << 20;
  jpeg_start_decompress(&cinfo);
  out.channels = cinfo.output_components;
  out.pixels.resize(static_cast<std::size_t>(out.width) * out.height * out.channels);
  const std::size_t stride = static_cast<std::size_t>(out.width) * out.channels;
  while (cinfo.output_scanline < cinfo.output_height) {
    JSAMPROW row = out.pixels.data() + cinfo.output_scanline * stride;
    jpeg_read_scanlines(&cinfo, &row, 1);
  }
  jpeg_finish_decompress(&cinfo);
  jpeg_destroy_decompress(&cinfo);
  return err.warnings > 0 ? JpegStatus::kWarning : JpegStatus::kOk;
}

Image decode_jpeg(std::string_view bytes, const ImageLimits& limits) {
  Image out;
  JpegError err;
  const JpegStatus status = jpeg_decode_raw(reinterpret_cast<const unsigned char*>(bytes.data()),
                                            static_cast<unsigned long>(bytes.size()), limits, out, err);
  switch (status) {
    case JpegStatus::kOk:
      return out;
    case JpegStatus::kError:
      throw DataError(std::string("corrupt JPEG: ") + err.message);
    case JpegStatus::kWarning:
      throw DataError(std::string("corrupt or truncated JPEG: ") + err.message);
    case JpegStatus::kTooLarge:
      check_size(out.width, out.height, limits, "JPEG");
      throw DataError("JPEG image size " + pixels_text(out.width, out.height) + " is out of range");
    case JpegStatus::kCmyk:
      throw DataError("CMYK JPEG images are not supported; convert it to RGB (e.g. `convert in.jpg -colorspace sRGB out.jpg`)");
  }
  throw DataError("JPEG decoder returned an unknown status");
}

// jpeg_encode_raw's destination: a growing malloc'd buffer libjpeg owns until the end.
JpegStatus jpeg_encode_raw(const Image& image, int quality, unsigned char** out, unsigned long* out_size,
                           JpegError& err) {
  jpeg_compress_struct cinfo;
  cinfo.err = jpeg_std_error(&err.mgr);
  err.mgr.error_exit = jpeg_on_error;
  err.warnings = 0;
  if (setjmp(err.jump)) {
    jpeg_destroy_compress(&cinfo);
    return JpegStatus::kError;
  }
  jpeg_create_compress(&cinfo);
  jpeg_mem_dest(&cinfo, out, out_size);
  cinfo.image_width = static_cast<JDIMENSION>(image.width);
  cinfo.image_height = static_cast<JDIMENSION>(image.height);
  cinfo.input_components = image.channels;
  cinfo.in_color_space = image.channels == 1 ? JCS_GRAYSCALE : JCS_RGB;
  jpeg_set_defaults(&cinfo);
  jpeg_set_quality(&cinfo, quality, TRUE);
  jpeg_start_compress(&cinfo, TRUE);
  const std::size_t stride = static_cast<std::size_t>(image.width) * image.channels;
  while (cinfo.next_scanline < cinfo.image_height) {
    auto* row = const_cast<JSAMPLE*>(image.pixels.data() + cinfo.next_scanline * stride);
    jpeg_write_scanlines(&cinfo, &row, 1);
  }
  jpeg_finish_compress(&cinfo);
  jpeg_destroy_compress(&cinfo);
  return JpegStatus::kOk;
}

void check_pixels(const Image& image, const char* what) {
  if (image.width < 1 || image.height < 1 || image.channels < 1 || image.channels > 4 ||
      image.pixels.size() != static_cast<std::size_t>(image.width) * image.height * image.channels) {
    throw DataError(std::string(what) + ": the image's size " + pixels_text(image.width, image.height) + "x" +
                    std::to_string(image.channels) + " does not match its " + std::to_string(image.pixels.size()) +
                    " bytes of pixels");
  }
}

}  // namespace

std::string encode_png(const Image& image) {
  check_pixels(image, "encode_png");
  png_image img;
  std::memset(&img, 0, sizeof img);
  img.version = PNG_IMAGE_VERSION;
  img.width = static_cast<png_uint_32>(image.width);
  img.height = static_cast<png_uint_32>(image.height);
  static const png_uint_32 kFormats[5] = {0, PNG_FORMAT_GRAY, PNG_FORMAT_GA, PNG_FORMAT_RGB, PNG_FORMAT_RGBA};
  img.format = kFormats[image.channels];
  png_alloc_size_t size = 0;
  if (!png_image_write_get_memory_size(img, size, 0, image.pixels.data(), 0, nullptr)) {
    throw DataError(std::string("encode_png: ") + img.message);
  }
  std::string out(size, '\0');
  if (!png_image_write_to_memory(&img, out.data(), &size, 0, image.pixels.data(), 0, nullptr)) {
    throw DataError(std::string("encode_png: ") + img.message);
  }
  out.resize(size);
  return out;
}

std::string encode_jpeg(const Image& image, int quality) {
  check_pixels(image, "encode_jpeg");
  if (image.channels != 1 && image.channels != 3) throw DataError("encode_jpeg: JPEG holds 1 or 3 channels, not " + std::to_string(image.channels));
  if (quality < 1 || quality > 100) throw ConfigError("encode_jpeg: quality must be in [1, 100], got " + std::to_string(quality));
  unsigned char* buf = nullptr;
  unsigned long size = 0;
  JpegError err;
  const JpegStatus status = jpeg_encode_raw(image, quality, &buf, &size, err);
  std::string out;
  if (status == JpegStatus::kOk && buf) out.assign(reinterpret_cast<const char*>(buf), size);
  std::free(buf);
  if (status != JpegStatus::kOk) throw DataError(std::string("encode_jpeg: ") + err.message);
  return out;
}

std::string image_format(std::string_view bytes) {
  static const unsigned char kPng[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  if (bytes.size() >= 8 && std::memcmp(bytes.data(), kPng, 8) == 0) return "png";
  if (bytes.size() >= 3 && static_cast<unsigned char>(bytes[0]) == 0xFF &&
      static_cast<unsigned char>(bytes[1]) == 0xD8 && static_cast<unsigned char>(bytes[2]) == 0xFF) {
    return "jpeg";
  }
  return "";
}

Image decode_image(std::string_view bytes, const ImageLimits& limits) {
  if (static_cast<std::int64_t>(bytes.size()) > limits.max_bytes) {
    throw DataError("image file has " + std::to_string(bytes.size()) + " bytes, more than the limit of " +
                    std::to_string(limits.max_bytes));
  }
  const std::string format = image_format(bytes);
  if (format == "png") return decode_png(bytes, limits);
  if (format == "jpeg") return decode_jpeg(bytes, limits);
  if (bytes.empty()) throw DataError("image file is empty");
  throw DataError("not a PNG or JPEG file (it starts with neither signature); convert it to PNG");
}

Image to_channels(const Image& image, int channels) {
  if (channels != 1 && channels != 3) {
    throw ConfigError("image channels must be 1 (gray) or 3 (RGB), got " + std::to_string(channels));
  }
  if (image.channels == channels) return image;
  Image out;
  out.width = image.width;
  out.height = image.height;
  out.channels = channels;
  const std::size_t n = static_cast<std::size_t>(image.width) * image.height;
  out.pixels.resize(n * channels);
  const int in_c = image.channels;
  const bool alpha = in_c == 2 || in_c == 4;
  for (std::size_t i = 0; i < n; ++i) {
    const std::uint8_t* p = image.pixels.data() + i * in_c;
    int rgb[3];
    if (in_c >= 3) {
      rgb[0] = p[0], rgb[1] = p[1], rgb[2] = p[2];
    } else {
      rgb[0] = rgb[1] = rgb[2] = p[0];
    }
    if (alpha) {  // over white: c·a + 255·(1 − a), rounded
      const int a = p[in_c - 1];
      for (int& c : rgb) c = (c * a + 255 * (255 - a) + 127) / 255;
    }
    std::uint8_t* q = out.pixels.data() + i * channels;
    if (channels == 3) {
      q[0] = static_cast<std::uint8_t>(rgb[0]), q[1] = static_cast<std::uint8_t>(rgb[1]), q[2] = static_cast<std::uint8_t>(rgb[2]);
    } else if (in_c >= 3) {
      q[0] = static_cast<std::uint8_t>((299 * rgb[0] + 587 * rgb[1] + 114 * rgb[2] + 500) / 1000);
    } else {
      q[0] = static_cast<std::uint8_t>(rgb[0]);
    }
  }
  return out;
}

std::string read_image_file(const std::string& path, const ImageLimits& limits) {
  std::error_code ec;
  const auto status = std::filesystem::status(path, ec);
  if (ec || !std::filesystem::exists(status)) throw DataError("image file '" + path + "' does not exist");
  if (!std::filesystem::is_regular_file(status)) throw DataError("image file '" + path + "' is not a regular file");
  const auto size = std::filesystem::file_size(path, ec);
  if (!ec && static_cast<std::int64_t>(size) > limits.max_bytes) {
    throw DataError("image file '" + path + "' has " + std::to_string(size) + " bytes, more than the limit of " +
                    std::to_string(limits.max_bytes));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) throw DataError("cannot open image file '" + path + "' (permissions?)");
  std::ostringstream buf;
  buf << in.rdbuf();
  return std::move(buf).str();
}

std::string resolve_image_path(const std::string& base_dir, const std::string& path) {
  const std::filesystem::path p(path);
  if (p.is_absolute() || base_dir.empty()) return path;
  return (std::filesystem::path(base_dir) / p).string();
}

}  // namespace kiln::data
