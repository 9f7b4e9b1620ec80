// The preprocessor of an ensemble of models: each member model's own preprocessor, its tensors
// renamed "member<i>/<name>" so that members reading the same kind of tensor (two bags) do not
// collide in one Batch. Persisted as {"type": "ensemble", "members": [spec, ...]}, each member's
// state files as "member<i>-<role>".
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "kiln/prep/preprocessor.h"

namespace kiln::prep {

/// The prefix of member `i`'s tensors: "member<i>/" (nn::ensemble_member_prefix, which the
/// ensemble model reads).
[[nodiscard]] std::string ensemble_member_prefix(std::size_t i);

/// An ensemble preprocessor over fitted member preprocessors (one each; a member with several
/// preprocessors is not supported). Throws ConfigError for fewer than two members or a null one.
[[nodiscard]] std::shared_ptr<const Preprocessor> make_ensemble_preprocessor(
    std::vector<std::shared_ptr<const Preprocessor>> members);

/// The name under which `spec` holds tensor `name`: `name` itself, else member 0's ("member0/<name>")
/// when `spec` is an ensemble's, else `name`. The data profile and the server's drift window track
/// member 0's features in an ensemble.
[[nodiscard]] std::string primary_tensor_name(const nn::InputSpec& spec, const std::string& name);

/// Registered on first use of the registry (registry.cpp).
[[nodiscard]] PreprocessorType ensemble_type();

}  // namespace kiln::prep
