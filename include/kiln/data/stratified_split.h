// Stratified train/validation/test splits and k-fold with scikit-learn's allocation semantics.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace kiln::data {

/// What to do with classes that have fewer than 2 rows.
enum class RareClassPolicy { kError, kDrop, kTrainOnly };
[[nodiscard]] RareClassPolicy parse_rare_class_policy(const std::string& name);

struct SplitOptions {
  /// Test share in (0, 1) as a proportion, or >= 1 as a row count. Default 0.2.
  double test_size = 0.2;
  /// Validation share (same convention); 0 = no validation split. Default 0.
  double val_size = 0;
  /// Seed for the permutation; same seed and input → same split. Default 42.
  std::uint64_t seed = 42;
  RareClassPolicy rare_classes = RareClassPolicy::kError;
};

/// Row indices per split, each sorted by the split's random order.
struct SplitResult {
  std::vector<std::size_t> train, val, test;
  /// Rows left out (RareClassPolicy::kDrop).
  std::vector<std::size_t> dropped;
  /// Classes dropped or kept train-only for having fewer than 2 rows.
  std::vector<std::string> rare_classes;
};

/// Per class, the same number of rows in each split as scikit-learn's
/// train_test_split(..., stratify=y) (StratifiedShuffleSplit + _approximate_mode). With val_size > 0
/// the test split is taken first, then validation from the rest (val_size relative to the whole).
/// Throws ConfigError/DataError naming the problem (size out of range, too small for the classes,
/// one-row classes listed).
[[nodiscard]] SplitResult stratified_split(const std::vector<std::string>& labels, const SplitOptions& options);

struct Fold {
  std::vector<std::size_t> train, test;
};

/// Stratified k-fold as scikit-learn's StratifiedKFold(n_splits=k, shuffle=true): the same number
/// of rows per class in each fold. Throws ConfigError for k < 2 or k > smallest class... (warns like sklearn).
[[nodiscard]] std::vector<Fold> stratified_kfold(const std::vector<std::string>& labels, int k, std::uint64_t seed);

}  // namespace kiln::data
