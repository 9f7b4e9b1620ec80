#include "wordpiece_chars.h"

#include <algorithm>
#include <array>
#include <memory>
#include <vector>

namespace kiln::text::wordpiece_chars {
namespace {

struct FlagRun {
  char32_t first, last;
  std::uint8_t flags;
};
struct CodeMap {
  char32_t cp;
  const char* utf8;
};

#include "wordpiece_tables.inc"

constexpr char32_t kHangulFirst = 0xAC00, kHangulLast = 0xD7A3;
constexpr std::size_t kBlock = 256;
constexpr std::size_t kBlocks = 0x110000 / kBlock;

// Two-stage table: block index per 256 code points, deduplicated 256-byte blocks.
struct Table {
  std::array<std::uint16_t, kBlocks> index{};
  std::vector<std::array<std::uint8_t, kBlock>> blocks;
};

const Table& table() {
  static const Table* t = [] {
    std::vector<std::uint8_t> dense(0x110000, 0);
    for (const auto& r : kFlagRuns)
      for (char32_t c = r.first; c <= r.last; ++c) dense[c] = r.flags;
    for (const auto& m : kStripMap) dense[m.cp] |= kHasStrip;
    for (char32_t c = kHangulFirst; c <= kHangulLast; ++c) dense[c] |= kHasStrip;
    for (const auto& m : kLowerMap) dense[m.cp] |= kHasLower;
    auto* out = new Table();  // never destroyed: used during static destruction too
    for (std::size_t b = 0; b < kBlocks; ++b) {
      std::array<std::uint8_t, kBlock> block{};
      std::copy_n(dense.begin() + static_cast<std::ptrdiff_t>(b * kBlock), kBlock, block.begin());
      auto it = std::find(out->blocks.begin(), out->blocks.end(), block);
      if (it == out->blocks.end()) it = out->blocks.insert(out->blocks.end(), block);
      out->index[b] = static_cast<std::uint16_t>(it - out->blocks.begin());
    }
    return out;
  }();
  return *t;
}

template <std::size_t N>
std::string_view find_map(const CodeMap (&map)[N], char32_t cp) {
  const auto* it = std::lower_bound(std::begin(map), std::end(map), cp,
                                    [](const CodeMap& m, char32_t c) { return m.cp < c; });
  if (it == std::end(map) || it->cp != cp) return {};
  return it->utf8;
}

std::size_t put_utf8(char* out, char32_t cp) {
  out[0] = static_cast<char>(0xE0 | (cp >> 12));
  out[1] = static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
  out[2] = static_cast<char>(0x80 | (cp & 0x3F));
  return 3;
}

}  // namespace

std::uint8_t flags(char32_t cp) {
  if (cp >= 0x110000) return kRemoved;
  const Table& t = table();
  return t.blocks[t.index[cp / kBlock]][cp % kBlock];
}

std::string_view strip(char32_t cp, char* buf) {
  if (cp >= kHangulFirst && cp <= kHangulLast) {
    // Unicode's algorithmic decomposition (checked against the reference by the generator).
    const char32_t s = cp - kHangulFirst;
    std::size_t n = put_utf8(buf, 0x1100 + s / 588);
    n += put_utf8(buf + n, 0x1161 + (s % 588) / 28);
    if (s % 28 != 0) n += put_utf8(buf + n, 0x11A7 + s % 28);
    return {buf, n};
  }
  return find_map(kStripMap, cp);
}

std::string_view lower(char32_t cp) { return find_map(kLowerMap, cp); }

}  // namespace kiln::text::wordpiece_chars
