// Stratified train/validation/test splits and k-fold with scikit-learn's allocation semantics.
//
// Reproducibility: the same labels (same order) and the same seed give the same row indices on every
// platform and standard library (std::mt19937_64 with explicit Fisher-Yates and rejection sampling;
// no std::shuffle or std::uniform_int_distribution). Changing how rows are drawn changes every
// recorded split: treat it as a format change.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace kiln::data {

/// What to do with classes that have fewer than 2 rows (they cannot appear in both train and test).
enum class RareClassPolicy {
  kError,      ///< Throw DataError listing those classes.
  kDrop,       ///< Leave their rows out (SplitResult::dropped).
  kTrainOnly,  ///< Put their rows in train; the other classes are split as if these were absent.
};

/// "error" | "drop" | "train-only". Throws ConfigError naming the value and the choices.
[[nodiscard]] RareClassPolicy parse_rare_class_policy(const std::string& name);

struct SplitOptions {
  /// Test share: a proportion in (0, 1) (test rows = ceil(test_size * n)), or a whole row count >= 1.
  /// n is the number of rows being split (rows of rare classes set aside by the policy excluded).
  /// Default 0.2.
  double test_size = 0.2;
  /// Validation share, same convention and relative to the same n (not to what is left after the
  /// test split); 0 = no validation split. Default 0.
  double val_size = 0;
  /// Seed for every random choice; same seed and input → same split. Default 42.
  std::uint64_t seed = 42;
  /// Classes with fewer than 2 rows. Default kError.
  RareClassPolicy rare_classes = RareClassPolicy::kError;
};

/// Row indices (into the labels vector) per split, each in the split's random order. The four
/// vectors are disjoint and together hold every row exactly once.
struct SplitResult {
  std::vector<std::size_t> train, val, test;
  /// Rows left out under RareClassPolicy::kDrop, ascending.
  std::vector<std::size_t> dropped;
  /// Classes dropped or kept train-only for having fewer than 2 rows, in byte order.
  std::vector<std::string> rare_classes;
};

/// Per class, the same number of rows in train and test as scikit-learn's
/// train_test_split(..., test_size, stratify=y) (StratifiedShuffleSplit + _approximate_mode,
/// train counts allocated first). Where scikit-learn breaks a tie between equal remainders at
/// random, Kiln breaks it with its own generator: totals match and each such class gets the floor
/// or floor + 1 of its share. With val_size > 0 the test split is taken first, then validation
/// from the rest exactly as a second train_test_split(rest, test_size=val rows, stratify=rest) would.
/// Throws ConfigError for sizes out of range or too small/large for the number of classes, and
/// DataError for labels that cannot be split (no rows, one-row classes under kError, classes left
/// with fewer than 2 rows for the validation split). Messages name the flag and the value to use.
[[nodiscard]] SplitResult stratified_split(const std::vector<std::string>& labels, const SplitOptions& options);

/// One fold: row indices, each vector ascending; disjoint, together every row.
struct Fold {
  std::vector<std::size_t> train, test;
};

/// Stratified k-fold as scikit-learn's StratifiedKFold(n_splits=k, shuffle=True): per fold, the same
/// number of test rows of each class (classes in order of first appearance, round robin over the
/// rows sorted by class). Each row is in exactly one test fold. Throws ConfigError for k < 2,
/// k > number of rows, or k > the row count of every class; DataError for no rows. Warns through
/// kiln::core::warn when some class has fewer than k rows (some test folds then lack it).
[[nodiscard]] std::vector<Fold> stratified_kfold(const std::vector<std::string>& labels, int k, std::uint64_t seed);

}  // namespace kiln::data
