// `kiln plan --model ARTIFACT --data FILE`: what a training job on FILE holds and feeds, measured by
// doing what `kiln train` does before its first step — read the file with the artifact's columns,
// fit the artifact's preprocessors afresh and encode the rows — at the threads one rank gets.
#pragma once

#include <nlohmann/json.hpp>

namespace kiln::pipeline {

/// request: {"artifact": DIR (holding kiln.json), "data": FILE, "batch": examples per device and
/// step, "threads": per rank}. Answers {"samples": rows kept, "peak_bytes": the resident memory
/// reading, fitting and encoding added (the process's high-water mark over its resident set before;
/// 0 where /proc/self/clear_refs cannot reset the mark), "kept_bytes" (the resident set's rise still
/// there with the rows and their encoding alive), "runtime_bytes" (the resident set before reading:
/// LibTorch loaded, no data), "source": how it was measured}, and for bag
/// inputs "seq_len" (mean non-zero features per row) and "rows_per_batch" (mean distinct features
/// of `batch` rows in shuffled order, seed 1). Throws DataError/ArtifactError naming the file.
[[nodiscard]] nlohmann::json profile_plan_data(const nlohmann::json& request);

}  // namespace kiln::pipeline
