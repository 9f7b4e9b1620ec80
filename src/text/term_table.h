// Private: an open-addressing map from term bytes to a dense id (0, 1, 2, ... in insertion order),
// keys stored in one arena. Lookups take string_views and allocate nothing; a new term's bytes are
// copied once, when it enters the table.
//
// Layout, for one cache miss per lookup: a slot is 16 bytes (the term's first 8 bytes, its length
// and its id), so a term of up to 8 bytes is found by comparing the slot
// alone; only longer terms read the rest of their bytes from the arena record (length, bytes).
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "uninitialized_allocator.h"

namespace kiln::text {

/// A term with what lookups compare first: its hash and its first 8 bytes (little-endian,
/// zero-padded). Build with TermTable::key (or key_padded).
struct TermKey {
  std::string_view term;
  std::uint64_t hash;
  std::uint64_t prefix;
};

class TermTable {
 public:
  explicit TermTable(std::size_t expected = 1024) {
    arena_.assign(kRecordStart, '\0');
    arena_used_ = kRecordStart;
    rehash(capacity_for(expected));
  }

  /// Id of `term`, inserting it with the next id if absent.
  std::int32_t insert(std::string_view term) { return insert(key(term)); }
  /// The same with the key computed by the caller (e.g. ahead, to prefetch).
  std::int32_t insert(const TermKey& k) {
    const std::uint32_t len = len_of(k.term.size());
    std::size_t i = k.hash & mask_;
    while (true) {
      const Slot& s = slots_[i];
      if (s.id_plus_1 == 0) break;
      if (s.prefix == k.prefix && s.len == len && (k.term.size() <= 8 || equal_tail(s.id_plus_1 - 1, k.term))) {
        return s.id_plus_1 - 1;
      }
      i = (i + 1) & mask_;
    }
    return add(k, len, i);
  }

  /// Id of `term` or -1.
  [[nodiscard]] std::int32_t find(std::string_view term) const { return find(key(term)); }
  [[nodiscard]] std::int32_t find(const TermKey& k) const {
    const std::uint32_t len = len_of(k.term.size());
    std::size_t i = k.hash & mask_;
    while (true) {
      const Slot& s = slots_[i];
      if (s.id_plus_1 == 0) return -1;
      if (s.prefix == k.prefix && s.len == len && (k.term.size() <= 8 || equal_tail(s.id_plus_1 - 1, k.term))) {
        return s.id_plus_1 - 1;
      }
      i = (i + 1) & mask_;
    }
  }

  /// Starts loading the slot a lookup of a term with hash `h` reads first.
  void prefetch(std::uint64_t h) const { __builtin_prefetch(slots_.data() + (h & mask_)); }
  /// The same as a value that holds the slot array (for loops that insert nothing meanwhile).
  struct Prefetcher {
    const void* slots;
    std::size_t mask;
    void operator()(std::uint64_t h) const { __builtin_prefetch(static_cast<const Slot*>(slots) + (h & mask)); }
  };
  [[nodiscard]] Prefetcher prefetcher() const { return Prefetcher{slots_.data(), mask_}; }

  [[nodiscard]] std::size_t size() const { return records_.size(); }
  /// Valid until the next insert.
  [[nodiscard]] std::string_view view(std::int32_t id) const {
    const std::uint64_t offset = records_[static_cast<std::size_t>(id)];
    return std::string_view(arena_.data() + offset + 4, record_len(offset));
  }

  /// The key of `s` (reads only its bytes).
  static TermKey key(std::string_view s) {
    const auto* p = reinterpret_cast<const unsigned char*>(s.data());
    const std::size_t n = s.size();
    std::uint64_t prefix;
    if (n >= 8) {
      prefix = load8(p);
    } else if (n >= 4) {
      prefix = load4(p) | (load4(p + n - 4) << (8 * (n - 4)));  // overlapping bytes agree
    } else if (n > 0) {
      prefix = std::uint64_t{p[0]} | (std::uint64_t{p[n >> 1]} << (8 * (n >> 1))) | (std::uint64_t{p[n - 1]} << (8 * (n - 1)));
    } else {
      prefix = 0;
    }
    const std::uint64_t h = hash_with(s, prefix);
    return TermKey{s, h, prefix};
  }
  /// The same for `n` >= 1 bytes at `p` where the 8 bytes before `p` and the 8 bytes from `p` may
  /// all be read.
  static TermKey key_padded(const char* p, std::size_t n) {
    const auto* u = reinterpret_cast<const unsigned char*>(p);
    const std::uint64_t prefix = load8(u) & (~std::uint64_t{0} >> (n < 8 ? 64 - 8 * n : 0));
    const std::string_view s(p, n);
    if (n > 16) return TermKey{s, hash_long(s), prefix};
    const std::uint64_t last = load8(u + n - 8);  // in the padding before p when n < 8
    return TermKey{s, hash_short(prefix, n > 8 ? last : 0, n), prefix};
  }

  /// A wyhash-style 64-bit hash: one 64x64->128-bit multiply for terms of up to 16 bytes (not
  /// stable across versions: never persist it).
  static std::uint64_t hash(std::string_view s) { return key(s).hash; }

 private:
  struct Slot {
    std::uint64_t prefix;    ///< the term's first 8 bytes, zero-padded
    std::uint32_t len;       ///< the term's length (saturated at 2^32 - 1)
    std::int32_t id_plus_1;  ///< 0 = empty
  };

  static constexpr std::uint64_t k0 = 0xa0761d6478bd642fULL, k1 = 0xe7037ed1a0b428dbULL, k2 = 0x8ebc6af09c88c6e3ULL;

  /// Terms of up to 16 bytes: the first 8 bytes (zero-padded) and, past 8 bytes, the last 8.
  static std::uint64_t hash_short(std::uint64_t prefix, std::uint64_t last, std::size_t n) {
    return mix(prefix ^ k0, (last + n) ^ k1);
  }
  static std::uint64_t hash_with(std::string_view s, std::uint64_t prefix) {
    const auto* p = reinterpret_cast<const unsigned char*>(s.data());
    const std::size_t n = s.size();
    if (n <= 8) return hash_short(prefix, 0, n);
    if (n <= 16) return hash_short(prefix, load8(p + n - 8), n);
    return hash_long(s);
  }
  /// Terms of more than 16 bytes.
  static std::uint64_t hash_long(std::string_view s) {
    const auto* p = reinterpret_cast<const unsigned char*>(s.data());
    const std::size_t n = s.size();
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

  static std::uint32_t len_of(std::size_t n) {
    return n < 0xffffffffU ? static_cast<std::uint32_t>(n) : 0xffffffffU;
  }

  /// Appends `k` as the next id in the empty slot `i`; out of line, so the lookup inlines.
  [[gnu::noinline]] std::int32_t add(const TermKey& k, std::uint32_t len_tag, std::size_t i) {
    const auto id = static_cast<std::int32_t>(records_.size());
    const std::uint64_t offset = arena_used_;
    const auto len = static_cast<std::uint32_t>(k.term.size());
    arena_used_ = offset + 4 + len;
    if (arena_.size() < arena_used_) arena_.resize(2 * arena_used_);  // not initialized
    std::memcpy(arena_.data() + offset, &len, 4);
    std::memcpy(arena_.data() + offset + 4, k.term.data(), len);
    records_.push_back(offset);
    hashes_.push_back(k.hash);
    slots_[i] = Slot{k.prefix, len_tag, id + 1};
    if (records_.size() > (slots_.size() >> 1)) rehash(slots_.size() * 2);
    return id;
  }

  static constexpr std::size_t kRecordStart = 8;

  std::size_t record_len(std::uint64_t offset) const {
    std::uint32_t len;
    std::memcpy(&len, arena_.data() + offset, 4);
    return len;
  }
  /// Term `id` equals `term`, whose first 8 bytes (of more than 8) are known to match.
  bool equal_tail(std::int32_t id, std::string_view term) const {
    const std::uint64_t offset = records_[static_cast<std::size_t>(id)];
    const std::size_t n = term.size();
    if (record_len(offset) != n) return false;
    const auto* a = reinterpret_cast<const unsigned char*>(arena_.data() + offset + 4);
    const auto* b = reinterpret_cast<const unsigned char*>(term.data());
    for (std::size_t k = 8; k + 8 < n; k += 8) {
      if (load8(a + k) != load8(b + k)) return false;
    }
    return load8(a + n - 8) == load8(b + n - 8);
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
    slots_.assign(capacity, Slot{0, 0, 0});
    mask_ = capacity - 1;
    for (std::size_t id = 0; id < records_.size(); ++id) {
      std::size_t i = hashes_[id] & mask_;
      while (slots_[i].id_plus_1 != 0) i = (i + 1) & mask_;
      const std::uint64_t offset = records_[id];
      const std::size_t n = record_len(offset);
      std::uint64_t prefix = 0;
      std::memcpy(&prefix, arena_.data() + offset + 4, n < 8 ? n : 8);
      slots_[i] = Slot{prefix, len_of(n), static_cast<std::int32_t>(id) + 1};
    }
  }

  /// [0, arena_used_): kRecordStart zero bytes, then per term: length, bytes. Past that,
  /// uninitialized room.
  std::vector<char, detail::UninitializedAllocator<char>> arena_;
  std::size_t arena_used_ = 0;
  std::vector<std::uint64_t> records_;  ///< arena offset of each id's record
  std::vector<std::uint64_t> hashes_;   ///< each id's hash (for rehashing)
  std::vector<Slot> slots_;
  std::size_t mask_ = 0;
};

}  // namespace kiln::text
