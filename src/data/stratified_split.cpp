#include "kiln/data/stratified_split.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <sstream>
#include <string_view>
#include <unordered_map>
#include <utility>

#include "kiln/core/error.h"
#include "kiln/core/log.h"

namespace kiln::data {
namespace {

// Portable random source: std::mt19937_64's output sequence is fixed by the standard; integers in a
// range come from rejection sampling here, never from a library distribution.
class Rng {
 public:
  explicit Rng(std::uint64_t seed) : engine_(seed) {}

  // Uniform in [0, bound), bound >= 1.
  std::uint64_t below(std::uint64_t bound) {
    const std::uint64_t threshold = (0 - bound) % bound;  // 2^64 mod bound
    for (;;) {
      const std::uint64_t x = engine_();
      if (x >= threshold) return x % bound;
    }
  }

  // Fisher-Yates over the whole range.
  template <typename T>
  void shuffle(std::vector<T>& values) {
    for (std::size_t i = values.size(); i > 1; --i) {
      const std::size_t j = static_cast<std::size_t>(below(i));
      std::swap(values[i - 1], values[j]);
    }
  }

 private:
  std::mt19937_64 engine_;
};

// Rows grouped by class; classes either in byte order of their names or in order of first appearance.
struct Classes {
  std::vector<std::string> names;
  std::vector<std::size_t> counts;
  std::vector<std::size_t> offsets;  // class c's rows are rows[offsets[c], offsets[c] + counts[c])
  std::vector<std::size_t> rows;     // ascending within each class
};

enum class ClassOrder { kByName, kFirstAppearance };

Classes group_by_class(const std::vector<std::string>& labels, ClassOrder order) {
  std::unordered_map<std::string_view, std::uint32_t> ids;
  ids.reserve(64);
  std::vector<std::uint32_t> row_class(labels.size());
  std::vector<std::string_view> first_seen;
  for (std::size_t i = 0; i < labels.size(); ++i) {
    auto [it, inserted] = ids.try_emplace(labels[i], static_cast<std::uint32_t>(first_seen.size()));
    if (inserted) first_seen.push_back(labels[i]);
    row_class[i] = it->second;
  }
  const std::size_t n_classes = first_seen.size();
  std::vector<std::uint32_t> rank(n_classes);
  std::iota(rank.begin(), rank.end(), 0u);
  if (order == ClassOrder::kByName) {
    std::vector<std::uint32_t> by_name(n_classes);
    std::iota(by_name.begin(), by_name.end(), 0u);
    std::sort(by_name.begin(), by_name.end(),
              [&](std::uint32_t a, std::uint32_t b) { return first_seen[a] < first_seen[b]; });
    for (std::size_t r = 0; r < n_classes; ++r) rank[by_name[r]] = static_cast<std::uint32_t>(r);
  }
  Classes classes;
  classes.names.resize(n_classes);
  classes.counts.assign(n_classes, 0);
  for (std::size_t c = 0; c < n_classes; ++c) classes.names[rank[c]] = std::string(first_seen[c]);
  for (auto& c : row_class) {
    c = rank[c];
    ++classes.counts[c];
  }
  classes.offsets.assign(n_classes, 0);
  for (std::size_t c = 1; c < n_classes; ++c) classes.offsets[c] = classes.offsets[c - 1] + classes.counts[c - 1];
  std::vector<std::size_t> cursor = classes.offsets;
  classes.rows.resize(labels.size());
  for (std::size_t i = 0; i < labels.size(); ++i) classes.rows[cursor[row_class[i]]++] = i;
  return classes;
}

// scikit-learn's _approximate_mode (sklearn/utils/__init__.py): floor of each class's share of
// n_draws, then one more for the largest remainders; ties at the cut-off broken with rng. The
// arithmetic is the same IEEE double sequence as numpy's (count / total * n_draws, then the
// remainder in a separate statement so no compiler fuses it into an FMA), so which remainders are
// equal matches scikit-learn exactly.
std::vector<std::size_t> approximate_mode(const std::vector<std::size_t>& counts, std::size_t n_draws, Rng& rng) {
  const std::size_t n_classes = counts.size();
  const double total = static_cast<double>(std::accumulate(counts.begin(), counts.end(), std::size_t{0}));
  std::vector<std::size_t> drawn(n_classes);
  std::vector<double> remainder(n_classes);
  std::size_t floored_sum = 0;
  for (std::size_t c = 0; c < n_classes; ++c) {
    const double share = static_cast<double>(counts[c]) / total;
    const double continuous = share * static_cast<double>(n_draws);
    const double floored = std::floor(continuous);
    remainder[c] = continuous - floored;
    drawn[c] = static_cast<std::size_t>(floored);
    floored_sum += drawn[c];
  }
  if (floored_sum >= n_draws) return drawn;
  std::size_t need = n_draws - floored_sum;
  std::vector<std::size_t> by_remainder(n_classes);
  std::iota(by_remainder.begin(), by_remainder.end(), std::size_t{0});
  std::sort(by_remainder.begin(), by_remainder.end(), [&](std::size_t a, std::size_t b) {
    return remainder[a] != remainder[b] ? remainder[a] > remainder[b] : a < b;
  });
  for (std::size_t begin = 0; begin < n_classes && need > 0;) {
    std::size_t end = begin + 1;
    while (end < n_classes && remainder[by_remainder[end]] == remainder[by_remainder[begin]]) ++end;
    const std::size_t group = end - begin;
    if (group <= need) {
      for (std::size_t i = begin; i < end; ++i) ++drawn[by_remainder[i]];
      need -= group;
    } else {
      // Partial Fisher-Yates: the first `need` slots become a uniform random subset of the group.
      for (std::size_t i = 0; i < need; ++i) {
        const std::size_t j = i + static_cast<std::size_t>(rng.below(group - i));
        std::swap(by_remainder[begin + i], by_remainder[begin + j]);
        ++drawn[by_remainder[begin + i]];
      }
      need = 0;
    }
    begin = end;
  }
  return drawn;
}

std::string format_number(double value) {
  std::ostringstream out;
  out.precision(15);
  out << value;
  return out.str();
}

std::string quoted_list(const std::vector<std::string>& names, std::size_t shown = 10) {
  std::string out;
  const std::size_t n = std::min(shown, names.size());
  for (std::size_t i = 0; i < n; ++i) {
    if (i > 0) out += ", ";
    out += "'" + names[i] + "'";
  }
  if (names.size() > n) out += " and " + std::to_string(names.size() - n) + " more";
  return out;
}

bool is_proportion(double size) { return size > 0 && size < 1; }

// Checks a size option on its own (before the data is known): a proportion in (0, 1) or a whole
// count >= 1; 0 is allowed only where the split is optional.
void check_size_option(const char* flag, double value, bool zero_allowed) {
  const bool ok = std::isfinite(value) &&
                  ((zero_allowed && value == 0) || is_proportion(value) || (value >= 1 && value == std::floor(value)));
  if (!ok) {
    throw ConfigError(std::string(flag) + " must be a proportion in (0, 1) or a whole row count >= 1" +
                      (zero_allowed ? " (0 for none)" : "") + ", got " + format_number(value));
  }
}

// Rows a size option stands for out of n (scikit-learn: ceil(p * n) for a proportion).
std::size_t rows_for(double size, std::size_t n) {
  if (is_proportion(size)) return static_cast<std::size_t>(std::ceil(size * static_cast<double>(n)));
  return static_cast<std::size_t>(size);
}

// Smallest proportion, rounded up to three decimals, whose rows_for reaches `rows` out of n; 0 if
// none below 1 does.
double smallest_share_for(std::size_t rows, std::size_t n) {
  const double share = std::ceil(static_cast<double>(rows) / static_cast<double>(n) * 1000.0) / 1000.0;
  return share < 1 && rows_for(share, n) >= rows ? share : 0;
}

// Largest proportion, rounded down to three decimals, whose rows_for stays within `rows` out of n;
// 0 if none above 0 does.
double largest_share_for(std::size_t rows, std::size_t n) {
  double share = std::floor(static_cast<double>(rows) / static_cast<double>(n) * 1000.0) / 1000.0;
  while (share > 0 && rows_for(share, n) > rows) share -= 0.001;
  return share > 0 && share < 1 ? share : 0;
}

std::string rows_word(std::size_t n, const char* kind = "") {
  return std::to_string(n) + " " + kind + (*kind ? " " : "") + (n == 1 ? "row" : "rows");
}

// "use --test-size >= 0.017 (or 5 rows)"
std::string at_least_hint(const char* flag, std::size_t rows, std::size_t n) {
  const double share = smallest_share_for(rows, n);
  std::string hint = std::string("use ") + flag + " >= ";
  if (share > 0) return hint + format_number(share) + " (or " + rows_word(rows) + ")";
  return hint + rows_word(rows);
}

// "use --test-size <= 0.98 (or 294 rows)"
std::string at_most_hint(const char* flag, std::size_t rows, std::size_t n) {
  const double share = largest_share_for(rows, n);
  std::string hint = std::string("use ") + flag + " <= ";
  if (share > 0) return hint + format_number(share) + " (or " + rows_word(rows) + ")";
  return hint + rows_word(rows);
}

// Rows of each class placed in each split, by class (byte order of names).
struct Allocation {
  std::vector<std::size_t> train, val, test;
};

Allocation allocate(const std::vector<std::size_t>& counts, std::size_t n, const std::vector<std::string>& names,
                    const SplitOptions& options, Rng& rng) {
  const std::size_t n_classes = counts.size();
  const std::string test_flag = "--test-size " + format_number(options.test_size);

  // Stage 1, as train_test_split(y, test_size, stratify=y).
  const std::size_t n_test = rows_for(options.test_size, n);
  if (n_test >= n) {
    throw ConfigError(test_flag + " gives " + rows_word(n_test, "test") + " of the " + rows_word(n) +
                      " to split, leaving none to train on; " + at_most_hint("--test-size", n - n_classes, n));
  }
  const std::size_t n_rest = n - n_test;
  if (n_rest < n_classes) {
    throw ConfigError(test_flag + " leaves " + rows_word(n_rest, "training") + " but there are " +
                      std::to_string(n_classes) + " classes; each class needs at least one training row: " +
                      at_most_hint("--test-size", n - n_classes, n));
  }
  if (n_test < n_classes) {
    throw ConfigError(test_flag + " gives " + rows_word(n_test, "test") + " but there are " +
                      std::to_string(n_classes) + " classes; each class needs at least one test row: " +
                      at_least_hint("--test-size", n_classes, n));
  }
  Allocation a;
  a.train = approximate_mode(counts, n_rest, rng);
  a.test.resize(n_classes);
  for (std::size_t c = 0; c < n_classes; ++c) a.test[c] = counts[c] - a.train[c];
  a.val.assign(n_classes, 0);
  if (options.val_size == 0) return a;

  // Stage 2, as train_test_split(rest, test_size=<validation rows>, stratify=rest).
  const std::string val_flag = "--val-size " + format_number(options.val_size);
  const std::size_t n_val = rows_for(options.val_size, n);
  if (n_val >= n_rest) {
    throw ConfigError(val_flag + " gives " + rows_word(n_val, "validation") + " but only " + rows_word(n_rest) +
                      " remain after " + test_flag + " takes " + std::to_string(n_test) +
                      "; lower --val-size or --test-size so that together they leave at least " +
                      rows_word(n_classes) + " (one per class) for training");
  }
  std::vector<std::string> short_classes;  // "'name' (3 rows, 1 left)"
  for (std::size_t c = 0; c < n_classes; ++c) {
    if (a.train[c] < 2) {
      short_classes.push_back("'" + names[c] + "' (" + rows_word(counts[c]) + ", " + std::to_string(a.train[c]) +
                              " left)");
    }
  }
  if (!short_classes.empty()) {
    std::string listed;
    for (std::size_t i = 0; i < std::min<std::size_t>(10, short_classes.size()); ++i) {
      listed += (i > 0 ? ", " : "") + short_classes[i];
    }
    if (short_classes.size() > 10) listed += " and " + std::to_string(short_classes.size() - 10) + " more";
    const std::size_t n_short = short_classes.size();
    throw DataError(std::to_string(n_short) + (n_short == 1 ? " class has" : " classes have") +
                    " fewer than 2 rows left after the test split, too few to split between train and validation: " +
                    listed + "; add rows to these classes, lower --test-size, or set --val-size 0");
  }
  const std::size_t n_train = n_rest - n_val;
  if (n_train < n_classes) {
    throw ConfigError(test_flag + " and " + val_flag + " leave " + rows_word(n_train, "training") + " but there are " +
                      std::to_string(n_classes) + " classes; each class needs at least one training row: lower them "
                      "so that together they take at most " + rows_word(n - n_classes));
  }
  if (n_val < n_classes) {
    throw ConfigError(val_flag + " gives " + rows_word(n_val, "validation") + " but there are " +
                      std::to_string(n_classes) + " classes; each class needs at least one validation row: " +
                      at_least_hint("--val-size", n_classes, n));
  }
  const std::vector<std::size_t> rest = a.train;
  a.train = approximate_mode(rest, n_train, rng);
  for (std::size_t c = 0; c < n_classes; ++c) a.val[c] = rest[c] - a.train[c];
  return a;
}

}  // namespace

RareClassPolicy parse_rare_class_policy(const std::string& name) {
  if (name == "error") return RareClassPolicy::kError;
  if (name == "drop") return RareClassPolicy::kDrop;
  if (name == "train-only") return RareClassPolicy::kTrainOnly;
  throw ConfigError("--rare-classes must be one of error, drop, train-only; got '" + name + "'");
}

SplitResult stratified_split(const std::vector<std::string>& labels, const SplitOptions& options) {
  check_size_option("--test-size", options.test_size, /*zero_allowed=*/false);
  check_size_option("--val-size", options.val_size, /*zero_allowed=*/true);
  if (is_proportion(options.test_size) && is_proportion(options.val_size) && options.test_size + options.val_size >= 1) {
    throw ConfigError("--test-size " + format_number(options.test_size) + " and --val-size " +
                      format_number(options.val_size) + " add up to 1 or more, leaving nothing to train on; "
                      "lower one of them");
  }
  if (labels.empty()) throw DataError("no rows to split");

  const Classes all = group_by_class(labels, ClassOrder::kByName);
  SplitResult result;

  // Set aside classes with fewer than 2 rows according to the policy.
  std::vector<std::size_t> kept;  // class ids in `all`
  for (std::size_t c = 0; c < all.names.size(); ++c) {
    if (all.counts[c] < 2) {
      result.rare_classes.push_back(all.names[c]);
    } else {
      kept.push_back(c);
    }
  }
  if (!result.rare_classes.empty()) {
    if (options.rare_classes == RareClassPolicy::kError) {
      const std::size_t n_rare = result.rare_classes.size();
      throw DataError(std::to_string(n_rare) + (n_rare == 1 ? " class has" : " classes have") +
                      " only 1 row, too few to stratify (a class needs a row in train and one in test): " +
                      quoted_list(result.rare_classes) +
                      "; add rows to these classes, or use --rare-classes drop|train-only");
    }
    std::vector<std::size_t>& sink =
        options.rare_classes == RareClassPolicy::kDrop ? result.dropped : result.train;
    for (std::size_t c = 0; c < all.names.size(); ++c) {
      if (all.counts[c] < 2) sink.push_back(all.rows[all.offsets[c]]);
    }
    std::sort(result.dropped.begin(), result.dropped.end());
    if (kept.empty()) {
      throw DataError("no class has 2 or more rows (" + std::to_string(all.names.size()) +
                      " classes, 1 row each), so there is nothing to split; add rows");
    }
  }

  std::vector<std::size_t> counts(kept.size());
  std::vector<std::string> names(kept.size());
  std::size_t n = 0;
  for (std::size_t k = 0; k < kept.size(); ++k) {
    counts[k] = all.counts[kept[k]];
    names[k] = all.names[kept[k]];
    n += counts[k];
  }
  if (!is_proportion(options.test_size) && options.test_size >= static_cast<double>(n)) {
    throw ConfigError("--test-size " + format_number(options.test_size) + " is not smaller than the " + rows_word(n) +
                      " to split; " + at_most_hint("--test-size", n > counts.size() ? n - counts.size() : 0, n));
  }
  if (!is_proportion(options.val_size) && options.val_size >= static_cast<double>(n)) {
    throw ConfigError("--val-size " + format_number(options.val_size) + " is not smaller than the " + rows_word(n) +
                      " to split; use a proportion in (0, 1) or fewer rows");
  }

  Rng rng(options.seed);
  const Allocation a = allocate(counts, n, names, options, rng);

  result.train.reserve(result.train.size() + std::accumulate(a.train.begin(), a.train.end(), std::size_t{0}));
  result.val.reserve(std::accumulate(a.val.begin(), a.val.end(), std::size_t{0}));
  result.test.reserve(std::accumulate(a.test.begin(), a.test.end(), std::size_t{0}));
  std::vector<std::size_t> rows;
  for (std::size_t k = 0; k < kept.size(); ++k) {
    const std::size_t c = kept[k];
    rows.assign(all.rows.begin() + all.offsets[c], all.rows.begin() + all.offsets[c] + all.counts[c]);
    rng.shuffle(rows);
    auto it = rows.begin();
    result.test.insert(result.test.end(), it, it + a.test[k]);
    it += a.test[k];
    result.val.insert(result.val.end(), it, it + a.val[k]);
    it += a.val[k];
    result.train.insert(result.train.end(), it, rows.end());
  }
  rng.shuffle(result.train);
  rng.shuffle(result.val);
  rng.shuffle(result.test);
  return result;
}

std::vector<Fold> stratified_kfold(const std::vector<std::string>& labels, int k, std::uint64_t seed) {
  if (k < 2) throw ConfigError("--folds must be at least 2, got " + std::to_string(k));
  if (labels.empty()) throw DataError("no rows to split into folds");
  const std::size_t n = labels.size();
  const auto n_folds = static_cast<std::size_t>(k);
  if (n_folds > n) {
    throw ConfigError("--folds " + std::to_string(k) + " is more than the " + rows_word(n) + "; use --folds <= " +
                      std::to_string(n));
  }
  const Classes classes = group_by_class(labels, ClassOrder::kFirstAppearance);
  const std::size_t n_classes = classes.names.size();
  const auto largest = std::max_element(classes.counts.begin(), classes.counts.end()) - classes.counts.begin();
  const auto smallest = std::min_element(classes.counts.begin(), classes.counts.end()) - classes.counts.begin();
  if (classes.counts[largest] < n_folds) {
    throw ConfigError("--folds " + std::to_string(k) + " is more than the rows of every class (the largest, '" +
                      classes.names[largest] + "', has " + std::to_string(classes.counts[largest]) +
                      "); use --folds <= " + std::to_string(classes.counts[largest]));
  }
  if (classes.counts[smallest] < n_folds) {
    core::warn("class '" + classes.names[smallest] + "' has only " + rows_word(classes.counts[smallest]) +
               ", fewer than --folds " + std::to_string(k) + ": some test folds will have no row of it");
  }

  // scikit-learn's allocation: rows sorted by class (first-appearance order) are dealt round robin,
  // position p to fold p % k. Class c spans positions [offset, offset + count); fold f receives the
  // positions p in that span with p % k == f.
  auto dealt_before = [n_folds](std::size_t end, std::size_t fold) -> std::size_t {
    return end > fold ? (end - fold - 1) / n_folds + 1 : 0;  // #{p < end : p % k == fold}
  };
  Rng rng(seed);
  std::vector<std::uint32_t> test_fold(n);
  std::vector<std::uint32_t> folds_for_class;
  std::vector<std::size_t> fold_sizes(n_folds, 0);
  for (std::size_t c = 0; c < n_classes; ++c) {
    const std::size_t begin = classes.offsets[c];
    const std::size_t end = begin + classes.counts[c];
    folds_for_class.clear();
    for (std::size_t f = 0; f < n_folds; ++f) {
      const std::size_t take = dealt_before(end, f) - dealt_before(begin, f);
      folds_for_class.insert(folds_for_class.end(), take, static_cast<std::uint32_t>(f));
      fold_sizes[f] += take;
    }
    rng.shuffle(folds_for_class);
    for (std::size_t i = 0; i < classes.counts[c]; ++i) test_fold[classes.rows[begin + i]] = folds_for_class[i];
  }

  std::vector<Fold> folds(n_folds);
  for (std::size_t f = 0; f < n_folds; ++f) {
    // One slot of slack on each side lets every row be written to both vectors without a branch;
    // only the matching cursor advances.
    std::vector<std::size_t>& test = folds[f].test;
    std::vector<std::size_t>& train = folds[f].train;
    test.resize(fold_sizes[f] + 1);
    train.resize(n - fold_sizes[f] + 1);
    std::size_t n_test = 0, n_train = 0;
    for (std::size_t i = 0; i < n; ++i) {
      const bool in_test = test_fold[i] == f;
      test[n_test] = i;
      train[n_train] = i;
      n_test += in_test;
      n_train += !in_test;
    }
    test.resize(n_test);
    train.resize(n_train);
  }
  return folds;
}

}  // namespace kiln::data
