// The tuning-study page (`kiln report --study NAME --storage URL`): optimization history with the
// running best, parameter importances, parallel coordinates, one slice plot per parameter, the
// intermediate values with pruned trials marked at their last step, and the trial table.
#pragma once

#include <string>
#include <vector>

#include "kiln/tune/study.h"

namespace kiln::report {

struct StudyPageOptions {
  std::string generator = "kiln";  ///< "kiln VERSION", shown in the footer
  std::string storage;             ///< the storage URL as shown (password masked)
};

/// The page for `study` with its `trials` (any states) over `space` (the study's stored space;
/// parameters found only in trials are drawn too). Formatting only.
[[nodiscard]] std::string study_page(const tune::StudyInfo& study, const std::vector<tune::Trial>& trials,
                                     const tune::SearchSpace& space, const StudyPageOptions& options = {});

}  // namespace kiln::report
