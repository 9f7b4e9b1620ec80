// Private: an open-addressing map from term bytes to a dense id (0, 1, 2, ... in insertion order),
// keys stored in one arena. Lookups take string_views and allocate nothing; a new term's bytes are
// copied once, when it enters the table.
//
// Layout, for few cache misses per lookup on vocabularies larger than the L2 cache: a slot is 8
// bytes (24 bits of the hash and the 40-bit arena offset of the term's record), and a record holds
// the id, the length and the bytes together. A hit costs the slot's line and the record's line.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace kiln::text {

class TermTable {
 public:
  explicit TermTable(std::size_t expected = 1024) {
    arena_.assign(kRecordStart, '\0');  // offset 0 marks an empty slot
    rehash(capacity_for(expected));
  }

  /// Id of `term`, inserting it with the next id if absent.
  std::int32_t insert(std::string_view term) { return insert(term, hash(term)); }
  /// The same with `h == hash(term)` computed by the caller (e.g. ahead, to prefetch).
  std::int32_t insert(std::string_view term, std::uint64_t h) {
    const std::uint64_t tag = h >> 40 << 40;
    std::size_t slot = h & mask_;
    while (true) {
      const std::uint64_t s = slots_[slot];
      if (s == 0) break;
      if ((s & ~kOffsetMask) == tag && equal(s & kOffsetMask, term)) return record_id(s & kOffsetMask);
      slot = (slot + 1) & mask_;
    }
    return add(term, tag, slot);
  }

  /// Id of `term` or -1.
  [[nodiscard]] std::int32_t find(std::string_view term) const { return find(term, hash(term)); }
  [[nodiscard]] std::int32_t find(std::string_view term, std::uint64_t h) const {
    const std::uint64_t tag = h >> 40 << 40;
    std::size_t slot = h & mask_;
    while (true) {
      const std::uint64_t s = slots_[slot];
      if (s == 0) return -1;
      if ((s & ~kOffsetMask) == tag && equal(s & kOffsetMask, term)) return record_id(s & kOffsetMask);
      slot = (slot + 1) & mask_;
    }
  }

  /// Starts loading the slot a lookup of a term with hash `h` reads first.
  void prefetch(std::uint64_t h) const { __builtin_prefetch(slots_.data() + (h & mask_)); }

  [[nodiscard]] std::size_t size() const { return records_.size(); }
  /// Valid until the next insert.
  [[nodiscard]] std::string_view view(std::int32_t id) const {
    const std::uint64_t offset = records_[static_cast<std::size_t>(id)];
    return std::string_view(arena_.data() + offset + 8, record_len(offset));
  }

  /// A wyhash-style 64-bit hash: one 64x64->128-bit multiply for terms of up to 8 bytes, two up
  /// to 16 (not stable across versions: never persist it).
  static std::uint64_t hash(std::string_view s) {
    constexpr std::uint64_t k0 = 0xa0761d6478bd642fULL, k1 = 0xe7037ed1a0b428dbULL, k2 = 0x8ebc6af09c88c6e3ULL;
    const auto* p = reinterpret_cast<const unsigned char*>(s.data());
    const std::size_t n = s.size();
    if (n <= 8) {
      std::uint64_t a = 0;
      if (n >= 4) {
        a = (load4(p) << 32) | load4(p + n - 4);
      } else if (n > 0) {
        a = (std::uint64_t{p[0]} << 16) | (std::uint64_t{p[n >> 1]} << 8) | p[n - 1];
      }
      return mix(a ^ k0, n ^ k1);
    }
    if (n <= 16) return mix(mix(load8(p) ^ k1, load8(p + n - 8) ^ k0), n ^ k2);
    std::uint64_t seed = k0;
    std::size_t left = n;
    while (left > 16) {
      seed = mix(load8(p) ^ k1, load8(p + 8) ^ seed);
      p += 16;
      left -= 16;
    }
    // The last 16 bytes, overlapping bytes already mixed in when left < 16 (n > 16, so in bounds).
    return mix(mix(load8(p + left - 16) ^ k1, load8(p + left - 8) ^ seed), n ^ k2);
  }

 private:
  /// Appends `term` as the next id in the empty `slot`; out of line, so the lookup inlines.
  [[gnu::noinline]] std::int32_t add(std::string_view term, std::uint64_t tag, std::size_t slot) {
    const auto id = static_cast<std::int32_t>(records_.size());
    const std::uint64_t offset = arena_.size();
    const auto len = static_cast<std::uint32_t>(term.size());
    arena_.append(reinterpret_cast<const char*>(&id), 4);
    arena_.append(reinterpret_cast<const char*>(&len), 4);
    arena_.append(term.data(), term.size());
    records_.push_back(offset);
    slots_[slot] = tag | offset;
    if (records_.size() > (slots_.size() >> 1)) rehash(slots_.size() * 2);
    return id;
  }

  static constexpr std::uint64_t kOffsetMask = (std::uint64_t{1} << 40) - 1;
  static constexpr std::size_t kRecordStart = 8;

  std::int32_t record_id(std::uint64_t offset) const {
    std::int32_t id;
    std::memcpy(&id, arena_.data() + offset, 4);
    return id;
  }
  std::size_t record_len(std::uint64_t offset) const {
    std::uint32_t len;
    std::memcpy(&len, arena_.data() + offset + 4, 4);
    return len;
  }
  /// The record at `offset` holds `term`; inlined for the short keys that dominate (no memcmp).
  bool equal(std::uint64_t offset, std::string_view term) const {
    const std::size_t n = term.size();
    if (record_len(offset) != n) return false;
    const auto* a = reinterpret_cast<const unsigned char*>(arena_.data() + offset + 8);
    const auto* b = reinterpret_cast<const unsigned char*>(term.data());
    if (n >= 8) {
      for (std::size_t k = 0; k + 8 < n; k += 8) {
        if (load8(a + k) != load8(b + k)) return false;
      }
      return load8(a + n - 8) == load8(b + n - 8);
    }
    if (n >= 4) return load4(a) == load4(b) && load4(a + n - 4) == load4(b + n - 4);
    for (std::size_t k = 0; k < n; ++k) {
      if (a[k] != b[k]) return false;
    }
    return true;
  }
  static std::uint64_t mix(std::uint64_t a, std::uint64_t b) {
    const unsigned __int128 r = static_cast<unsigned __int128>(a) * b;
    return static_cast<std::uint64_t>(r) ^ static_cast<std::uint64_t>(r >> 64);
  }
  static std::uint64_t load4(const unsigned char* p) {
    std::uint32_t v;
    std::memcpy(&v, p, 4);
    return v;
  }
  static std::uint64_t load8(const unsigned char* p) {
    std::uint64_t v;
    std::memcpy(&v, p, 8);
    return v;
  }
  static std::size_t capacity_for(std::size_t n) {
    std::size_t c = 16;
    while (c < n * 2) c <<= 1;
    return c;
  }
  void rehash(std::size_t capacity) {
    slots_.assign(capacity, 0);
    mask_ = capacity - 1;
    for (std::size_t id = 0; id < records_.size(); ++id) {
      const std::uint64_t h = hash(view(static_cast<std::int32_t>(id)));
      std::size_t slot = h & mask_;
      while (slots_[slot] != 0) slot = (slot + 1) & mask_;
      slots_[slot] = (h >> 40 << 40) | records_[id];
    }
  }

  std::string arena_;                  ///< kRecordStart bytes, then per term: id, length, bytes
  std::vector<std::uint64_t> records_;  ///< arena offset of each id's record
  std::vector<std::uint64_t> slots_;    ///< 0 = empty, else (hash >> 40 << 40) | record offset
  std::size_t mask_ = 0;
};

}  // namespace kiln::text
