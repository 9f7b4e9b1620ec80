// An ensemble of trained models: the average of the members' calibrated class probabilities,
// Σ_i w_i · softmax(logits_i / T_i). Member i reads the batch's tensors named "member<i>/<name>"
// (prep's ensemble featurizer produces them). The ensemble's logits are the log of that average, so
// softmax(logits) gives it back and a temperature fitted on top calibrates the ensemble as a whole.
// Persisted as family "ensemble", params {"members": [{"family", "params", "temperature",
// "weight"}, ...]}; member i's weights are named "member<i>.<its own names>".
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "kiln/nn/model.h"

namespace kiln::nn {

struct EnsembleMember {
  std::shared_ptr<Model> model;  ///< trained; built from `spec`
  ModelSpec spec;                ///< resolved (every default filled in)
  double temperature = 1.0;      ///< > 0: the member's own calibration
  double weight = 1.0;           ///< > 0; weights are normalised to sum to 1
};

struct Ensemble {
  ModelSpec spec;
  std::shared_ptr<Model> model;
};

/// An ensemble of `members` (at least two, each with `num_classes` outputs) sharing their modules
/// (no copy). Throws ConfigError for fewer than two members, a bad temperature or weight, or a
/// member with another number of classes.
[[nodiscard]] Ensemble make_ensemble(std::vector<EnsembleMember> members, int64_t num_classes);

/// The prefix of member i's input tensors: "member<i>/" (the ensemble featurizer writes them so).
[[nodiscard]] std::string ensemble_member_prefix(std::size_t i);

/// Registered on first use of the registry (registry.cpp).
[[nodiscard]] ModelFamily ensemble_family();

}  // namespace kiln::nn
