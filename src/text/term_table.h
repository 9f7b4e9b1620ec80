// Private: an open-addressing map from term bytes to a dense id (0, 1, 2, ... in insertion order),
// keys stored in one arena. Lookups take string_views and allocate nothing.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace kiln::text {

class TermTable {
 public:
  explicit TermTable(std::size_t expected = 1024) { rehash(capacity_for(expected)); }

  /// Id of `term`, inserting it with the next id if absent.
  std::int32_t insert(std::string_view term) {
    std::uint64_t h = hash(term);
    std::size_t slot = h & mask_;
    while (true) {
      std::int32_t id = slots_[slot];
      if (id < 0) break;
      if (hashes_[id] == h && view(id) == term) return id;
      slot = (slot + 1) & mask_;
    }
    auto id = static_cast<std::int32_t>(offsets_.size() - 1);
    arena_.append(term.data(), term.size());
    offsets_.push_back(arena_.size());
    hashes_.push_back(h);
    slots_[slot] = id;
    if (offsets_.size() - 1 > (slots_.size() >> 1)) rehash(slots_.size() * 2);
    return id;
  }

  /// Id of `term` or -1.
  [[nodiscard]] std::int32_t find(std::string_view term) const {
    std::uint64_t h = hash(term);
    std::size_t slot = h & mask_;
    while (true) {
      std::int32_t id = slots_[slot];
      if (id < 0) return -1;
      if (hashes_[id] == h && view(id) == term) return id;
      slot = (slot + 1) & mask_;
    }
  }

  [[nodiscard]] std::size_t size() const { return offsets_.size() - 1; }
  /// Valid until the next insert.
  [[nodiscard]] std::string_view view(std::int32_t id) const {
    return std::string_view(arena_.data() + offsets_[id], offsets_[id + 1] - offsets_[id]);
  }

  static std::uint64_t hash(std::string_view s) {
    // FNV-1a over 8-byte words, then a final mix.
    std::uint64_t h = 0xcbf29ce484222325ULL ^ s.size();
    const char* p = s.data();
    std::size_t n = s.size();
    while (n >= 8) {
      std::uint64_t w;
      std::memcpy(&w, p, 8);
      h = (h ^ w) * 0x100000001b3ULL;
      h ^= h >> 29;
      p += 8;
      n -= 8;
    }
    std::uint64_t w = 0;
    std::memcpy(&w, p, n);
    h = (h ^ w) * 0x100000001b3ULL;
    h ^= h >> 32;
    h *= 0xd6e8feb86659fd93ULL;
    h ^= h >> 32;
    return h;
  }

 private:
  static std::size_t capacity_for(std::size_t n) {
    std::size_t c = 16;
    while (c < n * 2) c <<= 1;
    return c;
  }
  void rehash(std::size_t capacity) {
    slots_.assign(capacity, -1);
    mask_ = capacity - 1;
    for (std::size_t id = 0; id + 1 < offsets_.size(); ++id) {
      std::size_t slot = hashes_[id] & mask_;
      while (slots_[slot] >= 0) slot = (slot + 1) & mask_;
      slots_[slot] = static_cast<std::int32_t>(id);
    }
  }

  std::string arena_;
  std::vector<std::size_t> offsets_{0};
  std::vector<std::uint64_t> hashes_;
  std::vector<std::int32_t> slots_;
  std::size_t mask_ = 0;
};

}  // namespace kiln::text
