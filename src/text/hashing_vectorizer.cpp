#include "kiln/text/hashing_vectorizer.h"

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <utility>

#include "kiln/core/error.h"
#include "kiln/core/parallel.h"
#include "row_builder.h"

namespace kiln::text {
namespace {

inline std::uint32_t rotl32(std::uint32_t x, int r) { return (x << r) | (x >> (32 - r)); }

}  // namespace

std::int32_t murmurhash3_32(std::string_view key, std::uint32_t seed) {
  const auto* data = reinterpret_cast<const unsigned char*>(key.data());
  const std::size_t len = key.size();
  const std::size_t nblocks = len / 4;
  std::uint32_t h1 = seed;
  constexpr std::uint32_t c1 = 0xcc9e2d51;
  constexpr std::uint32_t c2 = 0x1b873593;
  for (std::size_t i = 0; i < nblocks; ++i) {
    std::uint32_t k1;
    std::memcpy(&k1, data + i * 4, 4);  // little-endian hosts, as scikit-learn's build
    k1 *= c1;
    k1 = rotl32(k1, 15);
    k1 *= c2;
    h1 ^= k1;
    h1 = rotl32(h1, 13);
    h1 = h1 * 5 + 0xe6546b64;
  }
  const unsigned char* tail = data + nblocks * 4;
  std::uint32_t k1 = 0;
  switch (len & 3) {
    case 3: k1 ^= static_cast<std::uint32_t>(tail[2]) << 16; [[fallthrough]];
    case 2: k1 ^= static_cast<std::uint32_t>(tail[1]) << 8; [[fallthrough]];
    case 1:
      k1 ^= tail[0];
      k1 *= c1;
      k1 = rotl32(k1, 15);
      k1 *= c2;
      h1 ^= k1;
  }
  h1 ^= static_cast<std::uint32_t>(len);
  h1 ^= h1 >> 16;
  h1 *= 0x85ebca6b;
  h1 ^= h1 >> 13;
  h1 *= 0xc2b2ae35;
  h1 ^= h1 >> 16;
  return static_cast<std::int32_t>(h1);
}

void HashingOptions::validate(const std::string& prefix) const {
  if (n_features < 1 || n_features > 2147483647) {
    throw ConfigError(prefix + "n_features must be in [1, 2147483647], got " + std::to_string(n_features));
  }
}

HashedTerm hash_term(std::string_view term, const HashingOptions& options) {
  const std::int32_t h = murmurhash3_32(term, 0);
  const std::int64_t n = options.n_features;
  HashedTerm out;
  if (h == INT32_MIN) {
    out.column = static_cast<std::int32_t>((2147483647LL - (n - 1)) % n);
  } else {
    out.column = static_cast<std::int32_t>(std::abs(static_cast<std::int64_t>(h)) % n);
  }
  out.sign = (options.alternate_sign && h < 0) ? -1 : 1;
  return out;
}

HashingVectorizer::HashingVectorizer(AnalyzerOptions analyzer, HashingOptions hashing)
    : analyzer_(analyzer), hashing_(hashing) {
  hashing_.validate();
}

CsrMatrix<std::int32_t> HashingVectorizer::transform(const std::vector<std::string>& docs) const {
  const std::size_t n = docs.size();
  std::vector<detail::RowCounts> chunks(core::chunk_count(n));
  core::parallel_chunks(n, [&](std::size_t begin, std::size_t end, std::size_t chunk) {
    detail::RowCounts& rows = chunks[chunk];
    AnalyzerScratch scratch;
    std::vector<std::string_view> terms;
    std::vector<std::pair<std::int32_t, int>> hashed;
    for (std::size_t d = begin; d < end; ++d) {
      analyzer_.analyze(docs[d], scratch, terms);
      hashed.clear();
      for (std::string_view t : terms) {
        HashedTerm h = hash_term(t, hashing_);
        hashed.emplace_back(h.column, h.sign);
      }
      std::sort(hashed.begin(), hashed.end(),
                [](const auto& a, const auto& b) { return a.first < b.first; });
      for (std::size_t k = 0; k < hashed.size();) {
        std::int32_t col = hashed[k].first;
        std::int32_t sum = 0;
        for (; k < hashed.size() && hashed[k].first == col; ++k) sum += hashed[k].second;
        rows.cols.push_back(col);
        rows.counts.push_back(sum);
      }
      rows.indptr.push_back(static_cast<std::int64_t>(rows.cols.size()));
    }
  });
  CsrMatrix<std::int32_t> out;
  out.rows = static_cast<std::int64_t>(n);
  out.cols = hashing_.n_features;
  for (const auto& rows : chunks) {
    const std::int64_t base = static_cast<std::int64_t>(out.indices.size());
    for (std::size_t r = 1; r < rows.indptr.size(); ++r) out.indptr.push_back(base + rows.indptr[r]);
    out.indices.insert(out.indices.end(), rows.cols.begin(), rows.cols.end());
    out.data.insert(out.data.end(), rows.counts.begin(), rows.counts.end());
  }
  return out;
}

}  // namespace kiln::text
