// kiln explain's flags: their definitions, the ExplainOptions they fill, and the checks of flags
// that only apply to some methods (made once the explainer has chosen its method).
#pragma once

#include <CLI/CLI.hpp>

#include <cstdint>
#include <string>

#include "kiln/artifact/predictor.h"
#include "kiln/data/dataset.h"
#include "kiln/explain/explainer.h"

namespace kiln::cli {

struct ExplainFlags {
  std::string artifact, data, background, html, json, method = "auto", space = "logit", format = "auto";
  std::string ig_baseline = "pad", l1 = "none";
  std::string text_col = "text", image_col;
  int64_t top = 10, nsamples = 0, steps = 50, background_k = 0;
  uint64_t seed = 0;
  bool global = false;
};

void add_explain_flags(CLI::App& cmd, ExplainFlags& f);

/// The texts (and images) of `path` in columns `text_col` / `image_col` ("" = none); `flag` names
/// the file in messages. Throws DataError for a file without rows.
[[nodiscard]] data::Examples read_examples(const std::string& path, const ExplainFlags& f, const std::string& text_col,
                                           const std::string& image_col, const char* flag);

/// The options the flags ask for, the background read from --background. Throws ConfigError
/// naming the flag for a bad value.
[[nodiscard]] explain::ExplainOptions explain_options(const ExplainFlags& f, const std::string& text_col,
                                                      const std::string& image_col);

/// Throws ConfigError when a flag given on `cmd` does not apply to the method `explainer` chose
/// (--ig-baseline without IG on tokens, --l1 without Kernel SHAP).
void check_method_flags(const CLI::App& cmd, const artifact::Predictor& predictor, const explain::Explainer& explainer);

}  // namespace kiln::cli
