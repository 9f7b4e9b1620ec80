#include "base64.h"

#include <array>
#include <cstdint>

namespace kiln::serve {
namespace {

constexpr std::array<signed char, 256> make_table() {
  std::array<signed char, 256> t{};
  for (auto& v : t) v = -1;
  const char* alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  for (int i = 0; i < 64; ++i) t[static_cast<unsigned char>(alphabet[i])] = static_cast<signed char>(i);
  return t;
}
constexpr auto kTable = make_table();

}  // namespace

bool decode_base64(std::string_view in, std::size_t max_bytes, std::string& out, std::size_t& bad_at, bool& too_large) {
  out.clear();
  too_large = false;
  std::size_t start = 0;
  if (in.substr(0, 5) == "data:") {
    const std::size_t comma = in.find(',');
    if (comma == std::string_view::npos || in.substr(0, comma).find(";base64") == std::string_view::npos) {
      bad_at = 0;
      return false;
    }
    start = comma + 1;
  }
  std::size_t end = in.size();
  while (end > start && in[end - 1] == '=' && in.size() - end < 2) --end;
  const std::size_t chars = end - start;
  if (chars % 4 == 1) {
    bad_at = in.size();
    return false;
  }
  if (chars / 4 * 3 + (chars % 4 ? chars % 4 - 1 : 0) > max_bytes) {
    too_large = true;
    bad_at = start + max_bytes / 3 * 4;
    return false;
  }
  out.reserve(chars / 4 * 3 + 2);
  std::uint32_t acc = 0;
  int bits = 0;
  for (std::size_t i = start; i < end; ++i) {
    const int v = kTable[static_cast<unsigned char>(in[i])];
    if (v < 0) {
      bad_at = i;
      out.clear();
      return false;
    }
    acc = (acc << 6) | static_cast<std::uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  // Padding present must complete the last group.
  if (end != in.size() && (chars + (in.size() - end)) % 4 != 0) {
    bad_at = end;
    out.clear();
    return false;
  }
  return true;
}

}  // namespace kiln::serve
