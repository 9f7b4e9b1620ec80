// Feature hashing as scikit-learn's HashingVectorizer does it: each term's UTF-8 bytes go through
// MurmurHash3 (x86, 32-bit, seed 0, signed); the column is |h| mod n_features and, with
// alternate_sign, the sign of h decides the sign of the count. Columns match scikit-learn exactly,
// so no vocabulary needs to be fitted or shared.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "kiln/text/analyzer.h"
#include "kiln/text/csr.h"

namespace kiln::text {

/// MurmurHash3_x86_32 of `key`, as a signed 32-bit value (scikit-learn's
/// `murmurhash3_32(key, seed, positive=False)` for str keys encoded as UTF-8).
[[nodiscard]] std::int32_t murmurhash3_32(std::string_view key, std::uint32_t seed = 0);

struct HashingOptions {
  /// Number of columns, 1 .. 2^31-1. Default 2^20 (scikit-learn's default).
  std::int64_t n_features = std::int64_t{1} << 20;
  /// Count a term -1 instead of +1 when its hash is negative, so that collisions tend to cancel.
  /// Default true (scikit-learn's default).
  bool alternate_sign = true;

  /// Throws ConfigError naming `prefix` + field and the bad value.
  void validate(const std::string& prefix = "hashing.") const;
};

/// The column and sign scikit-learn gives a term.
struct HashedTerm {
  std::int32_t column = 0;
  int sign = 1;
};
[[nodiscard]] HashedTerm hash_term(std::string_view term, const HashingOptions& options);

/// scikit-learn's HashingVectorizer(norm=None, binary=False): signed term counts per document.
/// Entries whose signed counts cancel stay stored with value 0, as in scikit-learn.
/// Thread-safe after construction.
class HashingVectorizer {
 public:
  /// Validates both option sets (ConfigError).
  HashingVectorizer(AnalyzerOptions analyzer, HashingOptions hashing);

  /// Counts for each document (valid UTF-8), rows in input order, using core::threads() threads.
  [[nodiscard]] CsrMatrix<std::int32_t> transform(const std::vector<std::string>& docs) const;

  [[nodiscard]] const HashingOptions& options() const { return hashing_; }
  [[nodiscard]] const Analyzer& analyzer() const { return analyzer_; }

 private:
  Analyzer analyzer_;
  HashingOptions hashing_;
};

}  // namespace kiln::text
