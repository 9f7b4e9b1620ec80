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
  const auto out = kiln::data::convert_idx(images, labels, "mnist");
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].image.height, 2);
  EXPECT_EQ(out[0].image.width, 3);
  EXPECT_EQ(out[1].image.pixels, (std::vector<std::uint8_t>{7, 8, 9, 10, 11, 255}));
  EXPECT_EQ(out[1].label, "9");
  EXPECT_NE(message([&] { (void)kiln::data::convert_idx(labels, labels, "m"); }).find("m: the images file is not an IDX file"),
            std::string::npos);
  EXPECT_NE(message([&] { (void)kiln::data::convert_idx(images, images, "m"); }).find("m: the labels file is not an IDX file"),
            std::string::npos);
  EXPECT_NE(message([&] { (void)kiln::data::convert_idx(images.substr(0, 20), labels, "m"); })
                .find("the file is truncated or corrupt"),
            std::string::npos);
  const std::string three = be32(0x801) + be32(3) + std::string("\x01\x02\x03", 3);
  EXPECT_NE(message([&] { (void)kiln::data::convert_idx(images, three, "m"); }).find("m: 2 images but 3 labels"),
            std::string::npos);
}
