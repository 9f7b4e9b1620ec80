// Private: 256-entry byte tables for the ASCII fast paths of python_lower and the analyzer. An
// ASCII byte is classified exactly as Python classifies the code point; a byte >= 0x80 is kHigh and
// sends the caller to the general (decoding) path.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>

namespace kiln::text::detail {

enum ByteClass : std::uint8_t {
  kOther = 0,  ///< ASCII, neither `\w` nor whitespace
  kWord = 1,   ///< ASCII `\w`: [0-9A-Za-z_]
  kSpace = 2,  ///< ASCII str.isspace(): \t \n \v \f \r, 0x1C..0x1F, ' '
  kHigh = 3,   ///< >= 0x80: part of a multibyte sequence (or an invalid byte)
};

constexpr std::array<std::uint8_t, 256> make_byte_classes() {
  std::array<std::uint8_t, 256> t{};
  for (int b = 0; b < 256; ++b) {
    std::uint8_t c = kOther;
    if ((b >= '0' && b <= '9') || (b >= 'A' && b <= 'Z') || (b >= 'a' && b <= 'z') || b == '_') c = kWord;
    if ((b >= 0x09 && b <= 0x0D) || (b >= 0x1C && b <= 0x20)) c = kSpace;
    if (b >= 0x80) c = kHigh;
    t[static_cast<std::size_t>(b)] = c;
  }
  return t;
}

inline constexpr std::array<std::uint8_t, 256> kByteClasses = make_byte_classes();

[[nodiscard]] inline ByteClass byte_class(unsigned char b) { return static_cast<ByteClass>(kByteClasses[b]); }

constexpr std::uint64_t kHighBits = 0x8080808080808080ULL;
constexpr std::uint64_t kOnes = 0x0101010101010101ULL;

/// Loads 8 bytes from p (unaligned).
[[nodiscard]] inline std::uint64_t load8(const void* p) {
  std::uint64_t w;
  std::memcpy(&w, p, 8);
  return w;
}

/// ASCII lowercase of 8 bytes at once. Precondition: no byte of `w` is >= 0x80 (then no byte
/// addition below carries into its neighbour).
[[nodiscard]] inline std::uint64_t ascii_lower8(std::uint64_t w) {
  const std::uint64_t above_z = w + kOnes * (0x80 - 'Z' - 1);  // high bit set where byte > 'Z'
  const std::uint64_t from_a = w + kOnes * (0x80 - 'A');       // high bit set where byte >= 'A'
  const std::uint64_t upper = from_a & ~above_z & kHighBits;
  return w | (upper >> 2);  // 0x80 >> 2 == 0x20, the case bit
}

}  // namespace kiln::text::detail
