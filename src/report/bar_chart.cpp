// Horizontal bar charts and histograms.
#include <algorithm>
#include <cmath>
#include <numeric>

#include "kiln/core/error.h"
#include "kiln/report/figures.h"
#include "svg.h"

namespace kiln::report {

Figure bar_chart(const BarChart& c) {
  std::vector<std::size_t> order(c.bars.size());
  std::iota(order.begin(), order.end(), 0);
  if (c.sort_descending) {
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
      const double va = std::isfinite(c.bars[a].value) ? c.bars[a].value : -INFINITY;
      const double vb = std::isfinite(c.bars[b].value) ? c.bars[b].value : -INFINITY;
      return va > vb;
    });
  }
  std::size_t longest = 4;
  double lo = 0, hi = 0;
  for (const auto& bar : c.bars) {
    longest = std::max(longest, bar.label.size());
    if (std::isfinite(bar.value)) {
      lo = std::min(lo, bar.value);
      hi = std::max(hi, bar.value);
    }
  }
  if (hi == lo) hi = lo + 1;
  if (!c.value.min && !c.value.max) svg::nice_range(lo, hi, false);
  lo = c.value.min.value_or(lo);
  hi = c.value.max.value_or(hi);

  const double row = c.bars.size() > 60 ? 13 : 18;
  const double left = std::min(260.0, 14 + 6.4 * static_cast<double>(longest)), right = 64, top = 34, bottom = 46;
  const double W = c.width, H = top + bottom + row * static_cast<double>(std::max<std::size_t>(1, c.bars.size()));
  svg::Scale sx{lo, hi, left, W - right, false};
  svg::Builder b(c.width, static_cast<int>(H), c.title);
  for (double t : svg::nice_ticks(lo, hi, 6)) {
    b.line(sx(t), top, sx(t), H - bottom, "g");
    b.text(sx(t), H - bottom + 16, svg::tick_label(t), "tk", "middle");
  }
  b.line(left, H - bottom, W - right, H - bottom, "ax");
  b.text((left + W - right) / 2, H - 10, svg::axis_title(c.value.label, c.value.unit), "at", "middle");
  if (!c.highlight_legend.empty()) {
    const double gap = 34 + 6.5 * static_cast<double>(c.other_legend.size());
    b.rect(left, 10, 12, 10, "bar");
    b.text(left + 16, 19, c.other_legend, "lg");
    b.rect(left + gap, 10, 12, 10, "bar hi");
    b.text(left + gap + 16, 19, c.highlight_legend, "lg");
  }
  nlohmann::json labels = nlohmann::json::array(), values = nlohmann::json::array(), hl = nlohmann::json::array();
  const double zero = sx(std::clamp(0.0, lo, hi));
  for (std::size_t r = 0; r < order.size(); ++r) {
    const Bar& bar = c.bars[order[r]];
    const double y = top + row * static_cast<double>(r);
    const std::string label = bar.label.size() > 40 ? bar.label.substr(0, 39) + "…" : bar.label;
    b.text(left - 6, y + row * 0.72, label, bar.highlight ? "tk hit" : "tk", "end");
    labels.push_back(bar.label);
    values.push_back(bar.value);
    hl.push_back(bar.highlight);
    if (!std::isfinite(bar.value)) {
      b.text(left + 4, y + row * 0.72, "n/a", "tk", "start");
      continue;
    }
    const double x = sx(std::clamp(bar.value, lo, hi));
    std::string hover = bar.label + ": " + format_value(bar.value, 4);
    if (!bar.hover.empty()) hover += " (" + bar.hover + ")";
    b.rect(std::min(x, zero), y + 2, std::fabs(x - zero), row - 4, bar.highlight ? "bar hi" : "bar", hover);
    b.text(std::max(x, zero) + 4, y + row * 0.72, format_value(bar.value, 3), "tk", "start");
  }
  if (lo < 0) b.line(zero, top, zero, H - bottom, "ax");
  Figure f;
  f.id = c.id;
  f.title = c.title;
  f.kind = "bar";
  f.body = b.finish();
  f.note = c.note;
  f.data = {{"value_label", svg::axis_title(c.value.label, c.value.unit)},
            {"labels", std::move(labels)},
            {"values", std::move(values)},
            {"highlight", std::move(hl)}};
  return f;
}

Figure histogram(const Histogram& h) {
  const std::size_t bins = h.open_last ? h.edges.size() : (h.edges.empty() ? 0 : h.edges.size() - 1);
  if (h.values.size() != bins) {
    throw Error("figure " + h.id + ": " + std::to_string(h.edges.size()) + " bin edges" +
                (h.open_last ? " (last bin open)" : "") + " need " + std::to_string(bins) + " values, got " +
                std::to_string(h.values.size()));
  }
  double hi = 0;
  for (double v : h.values)
    if (std::isfinite(v)) hi = std::max(hi, v);
  double lo = 0;
  if (hi == 0) hi = 1;
  svg::nice_range(lo, hi, false);
  if (h.y.max) hi = *h.y.max;
  const double left = 70, right = 20, top = 24, bottom = 62;
  const double W = h.width, H = h.height;
  svg::Scale sy{lo, hi, H - bottom, top, false};
  svg::Builder b(h.width, h.height, h.title);
  for (double t : svg::nice_ticks(lo, hi, 5)) {
    b.line(left, sy(t), W - right, sy(t), "g");
    b.text(left - 6, sy(t) + 4, svg::tick_label(t), "tk", "end");
  }
  const double bw = (W - left - right) / static_cast<double>(std::max<std::size_t>(1, bins));
  nlohmann::json edges = nlohmann::json::array(), values = nlohmann::json::array();
  for (double e : h.edges) edges.push_back(e);
  for (std::size_t i = 0; i < bins; ++i) {
    const double x = left + bw * static_cast<double>(i);
    const std::string range = (i + 1 < h.edges.size()) ? svg::tick_label(h.edges[i]) + "–" + svg::tick_label(h.edges[i + 1])
                                                       : "≥ " + svg::tick_label(h.edges[i]);
    values.push_back(h.values[i]);
    if (std::isfinite(h.values[i])) {
      b.rect(x + 1, sy(h.values[i]), bw - 2, sy(lo) - sy(h.values[i]), "bar", range + ": " + format_value(h.values[i], 4));
    }
    const bool rotate = bw < 6.5 * static_cast<double>(range.size()) + 8;
    b.text(x + bw / 2, H - bottom + 14, range, "tk", rotate ? "end" : "middle", rotate ? -35 : 0);
  }
  b.line(left, H - bottom, W - right, H - bottom, "ax");
  b.line(left, top, left, H - bottom, "ax");
  b.text((left + W - right) / 2, H - 6, svg::axis_title(h.x.label, h.x.unit), "at", "middle");
  b.text(16, (top + H - bottom) / 2, svg::axis_title(h.y.label, h.y.unit), "at", "middle", -90);
  Figure f;
  f.id = h.id;
  f.title = h.title;
  f.kind = "histogram";
  f.body = b.finish();
  f.note = h.note;
  f.data = {{"x_label", svg::axis_title(h.x.label, h.x.unit)},
            {"y_label", svg::axis_title(h.y.label, h.y.unit)},
            {"edges", std::move(edges)},
            {"open_last", h.open_last},
            {"values", std::move(values)}};
  return f;
}

}  // namespace kiln::report
