// Parallel-coordinates plots and tables.
#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "kiln/core/error.h"
#include "kiln/report/figures.h"
#include "kiln/report/page.h"
#include "svg.h"

namespace kiln::report {

Figure parallel_coordinates(const ParallelCoordinates& p) {
  const std::size_t lines = p.color_values.size();
  for (const auto& a : p.axes) {
    if (a.values.size() != lines) {
      throw Error("figure " + p.id + ": axis '" + a.name + "' has " + std::to_string(a.values.size()) +
                  " values for " + std::to_string(lines) + " lines");
    }
  }
  const std::size_t k = p.axes.size();
  const double left = 60, right = 90, top = 40, bottom = 40;
  const double W = p.width, H = p.height;
  svg::Builder b(p.width, p.height, p.title);
  std::vector<svg::Scale> scales;
  std::vector<double> xs;
  for (std::size_t a = 0; a < k; ++a) {
    const auto& ax = p.axes[a];
    const double x = k == 1 ? (left + W - right) / 2 : left + (W - left - right) * static_cast<double>(a) / (k - 1);
    xs.push_back(x);
    double lo = std::numeric_limits<double>::infinity(), hi = -lo;
    if (!ax.categories.empty()) {
      lo = -0.5;
      hi = static_cast<double>(ax.categories.size()) - 0.5;
    } else {
      for (double v : ax.values)
        if (std::isfinite(v) && !(ax.log && v <= 0)) {
          lo = std::min(lo, v);
          hi = std::max(hi, v);
        }
      if (!std::isfinite(lo)) {
        lo = 0;
        hi = 1;
      }
      if (hi == lo) {
        lo -= ax.log ? lo / 2 : 0.5;
        hi += ax.log ? hi : 0.5;
      }
    }
    scales.push_back(svg::Scale{lo, hi, H - bottom, top, ax.log && ax.categories.empty()});
    b.line(x, top, x, H - bottom, "ax");
    b.text(x, top - 14, ax.name, "at", a == 0 ? "start" : a + 1 == k ? "end" : "middle");
    if (!ax.categories.empty()) {
      for (std::size_t c = 0; c < ax.categories.size(); ++c)
        b.text(x + 4, scales.back()(static_cast<double>(c)) + 4, ax.categories[c], "tk", "start");
    } else {
      b.text(x + 4, H - bottom + 14, format_value(lo, 4), "tk", "start");
      b.text(x + 4, top + 10, format_value(hi, 4), "tk", "start");
    }
  }
  // Colour by quintile of color_values (q4 = highest).
  std::vector<double> sorted;
  for (double v : p.color_values)
    if (std::isfinite(v)) sorted.push_back(v);
  std::sort(sorted.begin(), sorted.end());
  auto quintile = [&](double v) {
    if (!std::isfinite(v) || sorted.empty()) return -1;
    const auto r = static_cast<double>(std::lower_bound(sorted.begin(), sorted.end(), v) - sorted.begin());
    return std::min(4, static_cast<int>(5 * r / static_cast<double>(sorted.size())));
  };
  // Best lines last so they are drawn on top.
  std::vector<std::size_t> order(lines);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t c) { return quintile(p.color_values[a]) < quintile(p.color_values[c]); });
  for (std::size_t i : order) {
    std::vector<std::pair<double, double>> run;
    const int q = quintile(p.color_values[i]);
    const std::string cls = q < 0 ? "pc qn" : "pc q" + std::to_string(q);
    for (std::size_t a = 0; a < k; ++a) {
      const double v = p.axes[a].values[i];
      if (!std::isfinite(v) || (scales[a].log && v <= 0)) {
        b.polyline(run, cls);
        run.clear();
        continue;
      }
      run.emplace_back(xs[a], scales[a](v));
    }
    b.polyline(run, cls);
  }
  b.text(left, H - 8, "colour: " + p.color_label + " quintile (darkest = highest)", "lg");
  nlohmann::json axes = nlohmann::json::array();
  for (const auto& a : p.axes) {
    nlohmann::json j = {{"name", a.name}, {"log", a.log}, {"values", a.values}};
    if (!a.categories.empty()) j["categories"] = a.categories;
    axes.push_back(std::move(j));
  }
  Figure f;
  f.id = p.id;
  f.title = p.title;
  f.kind = "parallel";
  f.body = b.finish();
  f.note = p.note;
  f.data = {{"axes", std::move(axes)}, {"color_label", p.color_label}, {"color_values", p.color_values}};
  return f;
}

Figure table(const Table& t) {
  std::string h = "<div class=\"tw\"><table><thead><tr>";
  for (std::size_t c = 0; c < t.header.size(); ++c) {
    const bool num = c < t.numeric.size() && t.numeric[c];
    h += num ? "<th class=\"n\">" : "<th>";
    h += escape_html(t.header[c]) + "</th>";
  }
  h += "</tr></thead><tbody>";
  for (std::size_t r = 0; r < t.rows.size(); ++r) {
    const auto& row = t.rows[r];
    if (row.size() != t.header.size()) {
      throw Error("table " + t.id + ": row " + std::to_string(r) + " has " + std::to_string(row.size()) +
                  " cells for " + std::to_string(t.header.size()) + " columns");
    }
    const bool hl = r < t.highlight_rows.size() && t.highlight_rows[r];
    h += hl ? "<tr class=\"hi\">" : "<tr>";
    for (std::size_t c = 0; c < row.size(); ++c) {
      const bool num = c < t.numeric.size() && t.numeric[c];
      h += num ? "<td class=\"n\">" : "<td>";
      h += escape_html(row[c]) + "</td>";
    }
    h += "</tr>";
  }
  h += "</tbody></table></div>";
  Figure f;
  f.id = t.id;
  f.title = t.title;
  f.kind = "table";
  f.body = std::move(h);
  f.note = t.note;
  f.data = t.data.is_null() ? nlohmann::json{{"header", t.header}, {"rows", t.rows}} : t.data;
  return f;
}

}  // namespace kiln::report
