// Pixel-array converters of the image data sets: scikit-learn's digits CSV and IDX files, with
// their malformed-input messages.
#include <gtest/gtest.h>

#include "image_datasets.h"
#include "kiln/core/error.h"

namespace {

std::string be32(std::uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8), static_cast<char>(v)};
}

template <typename F>
std::string message(F f) {
  try {
    f();
  } catch (const kiln::DataError& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST(ImageDatasets, DigitsRowsBecome8x8GrayImages) {
  std::string row;
  for (int i = 0; i < 64; ++i) row += std::to_string(i % 17) + ".0,";
  const auto out = kiln::data::convert_digits_csv(row + "7\n" + row + "3\r\n", "digits.csv");
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].label, "7");
  EXPECT_EQ(out[1].label, "3");
  EXPECT_EQ(out[0].image.width, 8);
  EXPECT_EQ(out[0].image.channels, 1);
  EXPECT_EQ(out[0].image.pixels[0], 0);
  EXPECT_EQ(out[0].image.pixels[16], 255);  // 16 ink → white
  EXPECT_EQ(out[0].image.pixels[8], 128);   // 8 * 255 / 16 = 127.5, rounded
  EXPECT_NE(message([] { (void)kiln::data::convert_digits_csv("1,2,3\n", "d.csv"); })
                .find("d.csv:1: expected 65 fields (8x8 pixels and a label), got 3"),
            std::string::npos);
  EXPECT_NE(message([&] { (void)kiln::data::convert_digits_csv(row + "x\n", "d.csv"); })
                .find("d.csv:1: field 65 is not a number: 'x'"),
            std::string::npos);
}

TEST(ImageDatasets, IdxImagesAndLabels) {
  const std::string images = be32(0x803) + be32(2) + be32(2) + be32(3) + std::string("\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\xff", 12);
  const std::string labels = be32(0x801) + be32(2) + std::string("\x05\x09", 2);
  const auto out = kiln::data::convert_idx(images, labels, "img", "lab");
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].image.height, 2);
  EXPECT_EQ(out[0].image.width, 3);
  EXPECT_EQ(out[1].image.pixels, (std::vector<std::uint8_t>{7, 8, 9, 10, 11, 255}));
  EXPECT_EQ(out[1].label, "9");
}

TEST(ImageDatasets, IdxErrorsNameTheFileAndTheFix) {
  using kiln::data::convert_idx;
  const std::string images = be32(0x803) + be32(2) + be32(2) + be32(3) + std::string(12, '\x01');
  const std::string labels = be32(0x801) + be32(2) + std::string("\x05\x09", 2);
  EXPECT_EQ(message([&] { (void)convert_idx(labels, labels, "img", "lab"); }),
            "img: not an IDX images file: magic number 0x00000801, expected 0x00000803 (unsigned bytes, 3 dimensions); "
            "pass the images file (e.g. train-images-idx3-ubyte)");
  EXPECT_EQ(message([&] { (void)convert_idx(images, images, "img", "lab"); }),
            "lab: not an IDX labels file: magic number 0x00000803, expected 0x00000801 (unsigned bytes, 1 dimension); "
            "pass the labels file (e.g. train-labels-idx1-ubyte)");
  EXPECT_EQ(message([&] { (void)convert_idx(std::string("\x1f\x8b\x08\x00", 4), labels, "img.gz", "lab"); }),
            "img.gz: the file is gzip-compressed; uncompress it first (`gunzip -k img.gz`) and pass the uncompressed file");
  EXPECT_EQ(message([&] { (void)convert_idx(images.substr(0, 10), labels, "img", "lab"); }),
            "img: truncated IDX header (10 bytes, the header has 16); download the file again");
  EXPECT_EQ(message([&] { (void)convert_idx(images.substr(0, 20), labels, "img", "lab"); }),
            "img: truncated: the header declares 2 images of 2x3 (28 bytes) but the file has 20 bytes; download it again");
  EXPECT_EQ(message([&] { (void)convert_idx(images + "xx", labels, "img", "lab"); }),
            "img: 2 bytes after the last record; the header declares 2 images of 2x3 (28 bytes); the file is corrupt or "
            "not IDX");
  EXPECT_EQ(message([&] { (void)convert_idx(images, labels.substr(0, 9), "img", "lab"); }),
            "lab: truncated: the header declares 2 labels (10 bytes) but the file has 9 bytes; download it again");
  const std::string three = be32(0x801) + be32(3) + std::string("\x01\x02\x03", 3);
  EXPECT_EQ(message([&] { (void)convert_idx(images, three, "img", "lab"); }),
            "img holds 2 images but lab holds 3 labels; pass the labels file that belongs to these images "
            "(train-images with train-labels, t10k-images with t10k-labels)");
  const std::string wide = be32(0x803) + be32(1) + be32(1) + be32(5000);
  EXPECT_EQ(message([&] { (void)convert_idx(wide, labels, "img", "lab"); }),
            "img: the header declares images of 1x5000 pixels; each side must be from 1 to 4096");
}

TEST(ImageDatasets, MnistJsonIsOneDigitsImages) {
  std::string data;
  for (int i = 0; i < 2 * 784; ++i) data += (data.empty() ? "" : ",") + std::string(i == 1 ? "0.992" : i == 785 ? "1" : "0");
  const auto out = kiln::data::convert_mnist_json("{ \"data\": [" + data + "]}", "7", "7.json");
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].label, "7");
  EXPECT_EQ(out[0].image.width, 28);
  EXPECT_EQ(out[0].image.height, 28);
  EXPECT_EQ(out[0].image.pixels[1], 253);  // 0.992 * 255 = 252.96
  EXPECT_EQ(out[1].image.pixels[1], 255);
  EXPECT_EQ(out[1].image.pixels[0], 0);
  EXPECT_EQ(message([] { (void)kiln::data::convert_mnist_json("{\"data\": [0, 1]}", "1", "1.json"); }),
            "1.json: 'data' holds 2 values, not a multiple of 784 (28x28 pixels per image)");
  EXPECT_EQ(message([] { (void)kiln::data::convert_mnist_json("[1]", "1", "1.json"); }),
            "1.json: expected an object {\"data\": [pixels...]}, got array");
  const std::string truncated = message([] { (void)kiln::data::convert_mnist_json("{\"data\": [0,", "1", "1.json"); });
  EXPECT_EQ(truncated.rfind("1.json: not valid JSON (byte ", 0), 0u) << truncated;
  EXPECT_NE(truncated.find("); the download may be corrupt: fetch again with --force"), std::string::npos) << truncated;
  std::string bad = "0";
  for (int i = 1; i < 784; ++i) bad += i == 5 ? ",2" : ",0";
  EXPECT_EQ(message([&] { (void)kiln::data::convert_mnist_json("{\"data\": [" + bad + "]}", "1", "1.json"); }),
            "1.json: data[5] is 2; pixels are numbers from 0 to 1");
}
