// Growing a classifier for new classes (`kiln learn --allow-new-labels`): the labels gain the new
// ones at the end (ids of the old classes never change), the model is rebuilt for the larger label
// set — every tensor whose size follows the number of classes gets new rows initialised as the
// family initialises a fresh model (seeded), the old rows and every other weight copied unchanged.
// Works for any family whose class dimension is the only one that changes (linear, mlp, embedbag,
// bert, cnn, multimodal heads).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "kiln/artifact/artifact.h"

namespace kiln::learn {

/// A copy of `artifact` (its own model; preprocessors shared) whose labels are its own followed by
/// `new_labels` (in that order). Throws ConfigError for a label it already has or an empty one, and
/// ArtifactError when a weight changes in more than its class dimension (a family this cannot grow).
[[nodiscard]] artifact::Artifact grow_labels(const artifact::Artifact& artifact, const std::vector<std::string>& new_labels,
                                             uint64_t seed);

/// A deep copy of the artifact's model (same family, same weights), so it can be trained while the
/// original serves.
[[nodiscard]] artifact::Artifact copy_artifact(const artifact::Artifact& artifact);

}  // namespace kiln::learn
