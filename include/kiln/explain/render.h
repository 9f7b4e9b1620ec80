// How explanations read for people: a text block per example (the CLI) and a self-contained HTML
// page drawn with the report kit (words highlighted red for positive, blue for negative
// contributions). Formatting only: no I/O.
#pragma once

#include <string>
#include <vector>

#include "kiln/explain/explanation.h"

namespace kiln::explain {

/// The attribution indices in display order: by |value| descending, the `top` first (top >= 1).
[[nodiscard]] std::vector<std::size_t> top_attributions(const Explanation& e, std::size_t top);

/// "example N: label L (output ...), base ..., check base + Σφ = f(x): error ...", then the `top`
/// largest attributions with their spans.
[[nodiscard]] std::string render_text(const Explanation& e, std::size_t index, std::size_t top);

/// One page for all examples: per example, the text with its `top` largest word attributions
/// highlighted (hover shows the value), the additivity check, and a bar chart of those
/// attributions. texts[i] belongs to explanations[i] (empty for image inputs).
[[nodiscard]] std::string render_html(const std::vector<Explanation>& explanations, const std::vector<std::string>& texts,
                                      std::size_t top, const std::string& artifact, const std::string& generator);

}  // namespace kiln::explain
