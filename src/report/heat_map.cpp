// Heat maps (confusion matrices) and reliability diagrams.
#include <algorithm>
#include <cmath>

#include "kiln/core/error.h"
#include "kiln/report/figures.h"
#include "svg.h"

namespace kiln::report {

Figure heat_map(const HeatMap& h) {
  const std::size_t rows = h.row_labels.size(), cols = h.col_labels.size();
  if (h.values.size() != rows) {
    throw Error("figure " + h.id + ": " + std::to_string(h.values.size()) + " rows of values for " +
                std::to_string(rows) + " row labels");
  }
  double vmax = 0;
  for (std::size_t r = 0; r < rows; ++r) {
    if (h.values[r].size() != cols) {
      throw Error("figure " + h.id + ": row " + std::to_string(r) + " ('" + h.row_labels[r] + "') has " +
                  std::to_string(h.values[r].size()) + " values for " + std::to_string(cols) + " column labels");
    }
    for (double v : h.values[r])
      if (std::isfinite(v)) vmax = std::max(vmax, v);
  }
  const std::size_t n = std::max<std::size_t>({rows, cols, 1});
  const double cell = std::clamp(620.0 / static_cast<double>(n), 7.0, 40.0);
  const bool small = cell < 15;
  std::size_t longest = 4;
  for (const auto& l : h.row_labels) longest = std::max(longest, l.size());
  for (const auto& l : h.col_labels) longest = std::max(longest, l.size());
  const double label_w = std::min(180.0, 10 + (small ? 5.6 : 6.4) * static_cast<double>(std::min<std::size_t>(longest, 28)));
  const double left = 26 + label_w, top = 44, bottom = 24 + label_w;
  const double W = std::max(420.0, left + cell * static_cast<double>(cols) + 60 +
                                       std::max(60.0, 6.5 * static_cast<double>(h.value_label.size())));
  const double H = top + cell * static_cast<double>(rows) + bottom;
  svg::Builder b(static_cast<int>(W), static_cast<int>(H), h.title);
  const std::string tk = small ? "tk small" : "tk";
  auto clip = [](const std::string& s) { return s.size() > 28 ? s.substr(0, 27) + "…" : s; };
  nlohmann::json values = nlohmann::json::array();
  // Zero cells are the background (no element each: a 100-class matrix is mostly zeros).
  b.rect(left, top, cell * static_cast<double>(cols), cell * static_cast<double>(rows), "hm0");
  for (std::size_t r = 0; r < rows; ++r) {
    const double y = top + cell * static_cast<double>(r);
    b.text(left - 5, y + cell * 0.5 + (small ? 3 : 4), clip(h.row_labels[r]), tk, "end");
    nlohmann::json row = nlohmann::json::array();
    for (std::size_t c = 0; c < cols; ++c) {
      const double v = h.values[r][c];
      row.push_back(v);
      const double x = left + cell * static_cast<double>(c);
      const double share = (vmax > 0 && std::isfinite(v)) ? v / vmax : 0;
      if (v == 0) continue;
      const std::string hover = h.row_axis + " " + h.row_labels[r] + ", " + h.col_axis + " " + h.col_labels[c] + ": " +
                                format_value(v, h.decimals > 0 ? 4 : 10);
      b.rect(x, y, cell, cell, "hm", hover, 0.08 + 0.92 * share);
      if (cell >= 26 && std::isfinite(v)) {
        b.text(x + cell / 2, y + cell / 2 + 4, format_value(v, h.decimals > 0 ? 2 : 6), share > 0.55 ? "hmt inv" : "hmt",
               "middle");
      }
    }
    values.push_back(std::move(row));
  }
  for (std::size_t c = 0; c < cols; ++c) {
    const double x = left + cell * static_cast<double>(c) + cell * 0.5 + (small ? 3 : 4);
    b.text(x, top + cell * static_cast<double>(rows) + 6, clip(h.col_labels[c]), tk, "end", -90);
  }
  b.raw("<rect x=\"" + svg::px(left) + "\" y=\"" + svg::px(top) + "\" width=\"" + svg::px(cell * cols) +
        "\" height=\"" + svg::px(cell * rows) + "\" class=\"frame\"/>");
  b.text(left + cell * static_cast<double>(cols) / 2, H - 6, h.col_axis, "at", "middle");
  b.text(12, top + cell * static_cast<double>(rows) / 2, h.row_axis, "at", "middle", -90);
  // Colour scale: ten steps from 0 to the largest value.
  const double lx = left + cell * static_cast<double>(cols) + 24;
  for (int i = 0; i < 10; ++i) {
    b.rect(lx, top + 14 * (9 - i), 16, 14, "hm", "", 0.08 + 0.92 * (i + 0.5) / 10);
  }
  b.text(lx + 20, top + 10, format_value(vmax, 3), "tk", "start");
  b.text(lx + 20, top + 140, "0", "tk", "start");
  b.text(lx, top - 8, h.value_label, "tk", "start");
  Figure f;
  f.id = h.id;
  f.title = h.title;
  f.kind = "heatmap";
  f.body = b.finish();
  f.note = h.note;
  f.data = {{"rows", h.row_labels}, {"cols", h.col_labels}, {"value_label", h.value_label}, {"values", std::move(values)}};
  return f;
}

Figure reliability_diagram(const ReliabilityDiagram& d) {
  const double left = 70, right = 150, top = 24, bottom = 50, side = 300;
  const double W = left + side + right, H = top + side + bottom;
  svg::Scale sx{0, 1, left, left + side, false}, sy{0, 1, top + side, top, false};
  svg::Builder b(static_cast<int>(W), static_cast<int>(H), d.title);
  for (double t : svg::nice_ticks(0, 1, 5)) {
    b.line(left, sy(t), left + side, sy(t), "g");
    b.text(left - 6, sy(t) + 4, svg::tick_label(t), "tk", "end");
    b.line(sx(t), top + side, sx(t), top + side + 4, "ax");
    b.text(sx(t), top + side + 17, svg::tick_label(t), "tk", "middle");
  }
  const std::size_t n = d.bins.size();
  int64_t total = 0;
  for (const auto& bin : d.bins) total += bin.count;
  nlohmann::json bins = nlohmann::json::array();
  std::vector<std::pair<double, double>> pts;
  for (std::size_t i = 0; i < n; ++i) {
    const auto& bin = d.bins[i];
    bins.push_back({{"mean_confidence", bin.mean_confidence}, {"accuracy", bin.accuracy}, {"count", bin.count}});
    if (bin.count == 0) continue;
    const double x0 = sx(static_cast<double>(i) / static_cast<double>(n));
    const double x1 = sx(static_cast<double>(i + 1) / static_cast<double>(n));
    const std::string hover = "confidence " + format_value(static_cast<double>(i) / n, 3) + "–" +
                              format_value(static_cast<double>(i + 1) / n, 3) + ": accuracy " +
                              format_value(bin.accuracy, 4) + ", mean confidence " + format_value(bin.mean_confidence, 4) +
                              ", " + std::to_string(bin.count) + " examples";
    b.rect(x0 + 0.5, sy(bin.accuracy), x1 - x0 - 1, sy(0) - sy(bin.accuracy), "bar", hover);
    pts.emplace_back(sx(bin.mean_confidence), sy(bin.accuracy));
    // Share of examples in the bin, as a strip under the axis' inside.
    const double share = total > 0 ? static_cast<double>(bin.count) / static_cast<double>(total) : 0;
    b.rect(x0 + 0.5, top + side - 6, x1 - x0 - 1, 6, "hm", "", 0.1 + 0.9 * share);
  }
  b.line(sx(0), sy(0), sx(1), sy(1), "l c1 dash");
  for (const auto& p : pts) b.circle(p.first, p.second, 3, "p c0");
  b.line(left, top + side, left + side, top + side, "ax");
  b.line(left, top, left, top + side, "ax");
  b.text(left + side / 2, H - 12, "confidence (top-class probability)", "at", "middle");
  b.text(16, top + side / 2, "accuracy (share correct)", "at", "middle", -90);
  b.rect(left + side + 16, top + 4, 14, 10, "bar");
  b.text(left + side + 34, top + 13, "accuracy per bin", "lg");
  b.line(left + side + 16, top + 28, left + side + 30, top + 28, "l c1 dash");
  b.text(left + side + 34, top + 32, "perfect calibration", "lg");
  b.circle(left + side + 23, top + 46, 3, "p c0");
  b.text(left + side + 34, top + 50, "mean confidence", "lg");
  b.text(left + side + 16, top + 76, "ECE " + format_value(d.ece, 4), "lg");
  b.text(left + side + 16, top + 94, std::to_string(total) + " examples", "lg");
  Figure f;
  f.id = d.id;
  f.title = d.title;
  f.kind = "reliability";
  f.body = b.finish();
  f.note = d.note;
  f.data = {{"ece", d.ece}, {"bins", std::move(bins)}};
  return f;
}

}  // namespace kiln::report
