// XY charts (lines and points, two y axes, vertical markers) and their downsampling.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

#include "kiln/core/error.h"
#include "kiln/report/figures.h"
#include "svg.h"

namespace kiln::report {

std::string format_value(double v, int digits) {
  if (std::isnan(v)) return "n/a";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  char b[48];
  std::snprintf(b, sizeof b, "%.*g", std::max(1, digits), v);
  return b;
}

std::vector<std::size_t> downsample_min_max(const std::vector<double>& y, std::size_t max_points) {
  const std::size_t n = y.size();
  std::vector<std::size_t> keep;
  max_points = std::max<std::size_t>(max_points, 4);
  if (n <= max_points) {
    keep.resize(n);
    for (std::size_t i = 0; i < n; ++i) keep[i] = i;
    return keep;
  }
  const std::size_t buckets = (max_points - 2) / 2;
  keep.push_back(0);
  for (std::size_t b = 0; b < buckets; ++b) {
    // Interior points 1 .. n-2 split into `buckets` runs of near-equal length.
    const std::size_t lo = 1 + b * (n - 2) / buckets;
    const std::size_t hi = 1 + (b + 1) * (n - 2) / buckets;
    std::size_t imin = hi, imax = hi;
    for (std::size_t i = lo; i < hi; ++i) {
      if (!std::isfinite(y[i])) continue;
      if (imin == hi || y[i] < y[imin]) imin = i;
      if (imax == hi || y[i] > y[imax]) imax = i;
    }
    if (imin == hi) {  // all gaps: keep one to break the line
      if (lo < hi) keep.push_back(lo);
      continue;
    }
    keep.push_back(std::min(imin, imax));
    if (imax != imin) keep.push_back(std::max(imin, imax));
  }
  keep.push_back(n - 1);
  return keep;
}

namespace {


std::string color_class(int i) { return "c" + std::to_string(((i % 8) + 8) % 8); }

struct Range {
  double lo = std::numeric_limits<double>::infinity(), hi = -std::numeric_limits<double>::infinity();
  void add(double v, bool log) {
    if (!std::isfinite(v) || (log && v <= 0)) return;
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  }
};

void resolve(Range& r, const Axis& a) {
  if (!std::isfinite(r.lo)) {
    r.lo = a.log ? 1 : 0;
    r.hi = a.log ? 10 : 1;
  }
  double lo = a.min.value_or(r.lo), hi = a.max.value_or(r.hi);
  svg::nice_range(lo, hi, a.log);
  if (a.min) lo = *a.min;
  if (a.max) hi = *a.max;
  r.lo = lo;
  r.hi = hi;
}

std::vector<double> ticks_for(const Range& r, const Axis& a, int n) {
  if (a.log) return svg::log_ticks(r.lo, r.hi);
  std::vector<double> t = svg::nice_ticks(r.lo, r.hi, n);
  if (a.integer) {
    std::vector<double> whole;
    for (double v : t)
      if (std::fabs(v - std::round(v)) < 1e-9) whole.push_back(std::round(v));
    if (whole.empty()) whole.push_back(std::ceil(r.lo));
    return whole;
  }
  return t;
}

}  // namespace

Figure xy_chart(const XYChart& c) {
  bool has_y2 = false;
  Range xr, yr, y2r;
  struct Kept {
    std::vector<std::size_t> idx;
  };
  std::vector<Kept> kept(c.series.size());
  for (std::size_t s = 0; s < c.series.size(); ++s) {
    const auto& se = c.series[s];
    if (se.x.size() != se.y.size()) {
      throw Error("figure " + c.id + ": series '" + se.name + "' has " + std::to_string(se.x.size()) + " x values and " +
                  std::to_string(se.y.size()) + " y values; give one y per x");
    }
    if (!se.point_titles.empty() && se.point_titles.size() != se.x.size()) {
      throw Error("figure " + c.id + ": series '" + se.name + "' has " + std::to_string(se.point_titles.size()) +
                  " point titles for " + std::to_string(se.x.size()) + " points");
    }
    has_y2 = has_y2 || se.right_axis;
    kept[s].idx = downsample_min_max(se.y, c.max_points);
    for (std::size_t i : kept[s].idx) {
      xr.add(se.x[i], c.x.log);
      (se.right_axis ? y2r : yr).add(se.y[i], se.right_axis ? c.y2.log : c.y.log);
    }
  }
  for (const auto& m : c.markers) xr.add(m.x, c.x.log);
  resolve(xr, c.x);
  if (!c.x.min && !c.x.max && !c.x.log && !c.series.empty()) {
    // x is usually steps or epochs: keep the data's own ends rather than round numbers.
    Range raw;
    for (std::size_t s = 0; s < c.series.size(); ++s)
      for (std::size_t i : kept[s].idx) raw.add(c.series[s].x[i], false);
    for (const auto& m : c.markers) raw.add(m.x, false);
    if (std::isfinite(raw.lo) && raw.hi > raw.lo) {
      xr.lo = raw.lo;
      xr.hi = raw.hi;
    }
  }
  resolve(yr, c.y);
  if (has_y2) resolve(y2r, c.y2);

  const double left = 70, right = has_y2 ? 74 : 24, top = 34, bottom = 50;
  const double W = c.width, H = c.height;
  svg::Scale sx{xr.lo, xr.hi, left, W - right, c.x.log};
  svg::Scale sy{yr.lo, yr.hi, H - bottom, top, c.y.log};
  svg::Scale sy2{y2r.lo, y2r.hi, H - bottom, top, c.y2.log};
  svg::Builder b(c.width, c.height, c.title);

  for (double t : ticks_for(yr, c.y, 5)) {
    b.line(left, sy(t), W - right, sy(t), "g");
    b.text(left - 6, sy(t) + 4, svg::tick_label(t), "tk", "end");
  }
  for (double t : ticks_for(xr, c.x, 8)) {
    b.line(sx(t), H - bottom, sx(t), H - bottom + 4, "ax");
    b.text(sx(t), H - bottom + 17, svg::tick_label(t), "tk", "middle");
  }
  if (has_y2) {
    for (double t : ticks_for(y2r, c.y2, 5)) {
      b.line(W - right, sy2(t), W - right + 4, sy2(t), "ax");
      b.text(W - right + 7, sy2(t) + 4, svg::tick_label(t), "tk", "start");
    }
    b.line(W - right, top, W - right, H - bottom, "ax");
    b.text(W - 10, (top + H - bottom) / 2, svg::axis_title(c.y2.label, c.y2.unit), "at", "middle", 90);
  }
  b.line(left, H - bottom, W - right, H - bottom, "ax");
  b.line(left, top, left, H - bottom, "ax");
  b.text((left + W - right) / 2, H - 12, svg::axis_title(c.x.label, c.x.unit), "at", "middle");
  b.text(16, (top + H - bottom) / 2, svg::axis_title(c.y.label, c.y.unit), "at", "middle", -90);

  for (const auto& m : c.markers) {
    if (!std::isfinite(m.x)) continue;
    b.line(sx(m.x), top, sx(m.x), H - bottom, "mk");
    const bool flip = sx(m.x) > left + 0.7 * (W - right - left);  // label left of a line near the right edge
    b.text(sx(m.x) + (flip ? -4 : 4), top + 12, m.label, "mkt", flip ? "end" : "start");
  }

  nlohmann::json series_data = nlohmann::json::array();
  double legend_x = left;
  for (std::size_t s = 0; s < c.series.size(); ++s) {
    const auto& se = c.series[s];
    const std::string col = color_class(se.color >= 0 ? se.color : static_cast<int>(s));
    const svg::Scale& ys = se.right_axis ? sy2 : sy;
    const bool ylog = se.right_axis ? c.y2.log : c.y.log;
    std::vector<std::pair<double, double>> run;
    const std::string line_cls = "l " + col + (se.dashed ? " dash" : "");
    nlohmann::json xs = nlohmann::json::array(), yv = nlohmann::json::array();
    for (std::size_t i : kept[s].idx) {
      const double x = se.x[i], y = se.y[i];
      xs.push_back(x);
      yv.push_back(y);
      const bool ok = std::isfinite(x) && std::isfinite(y) && !(ylog && y <= 0) && !(c.x.log && x <= 0);
      if (!ok) {
        if (se.mark != Mark::kPoints) b.polyline(run, line_cls);
        run.clear();
        continue;
      }
      const double X = sx(x), Y = std::clamp(ys(y), top - 2, H - bottom + 2);
      run.emplace_back(X, Y);
      if (se.mark != Mark::kLine) {
        std::string hover = se.point_titles.empty() ? se.name + ": " + format_value(y, 5) + " at " + format_value(x, 6)
                                                    : se.point_titles[i];
        b.circle(X, Y, 3.2, "p " + col, hover);
      }
    }
    if (se.mark != Mark::kPoints) b.polyline(run, line_cls);
    if (se.legend) {
      b.rect(legend_x, 10, 14, 4, "sw " + col);
      b.text(legend_x + 18, 16, se.name + (se.right_axis ? " (right axis)" : ""), "lg");
      legend_x += 30 + 6.5 * static_cast<double>(se.name.size() + (se.right_axis ? 13 : 0));
    }
    series_data.push_back({{"name", se.name},
                           {"axis", se.right_axis ? "right" : "left"},
                           {"points", se.x.size()},
                           {"drawn", kept[s].idx.size()},
                           {"x", std::move(xs)},
                           {"y", std::move(yv)}});
  }
  nlohmann::json markers = nlohmann::json::array();
  for (const auto& m : c.markers) markers.push_back({{"x", m.x}, {"label", m.label}});

  Figure f;
  f.id = c.id;
  f.title = c.title;
  f.kind = "line";
  f.body = b.finish();
  f.note = c.note;
  f.data = {{"x_label", svg::axis_title(c.x.label, c.x.unit)},
            {"y_label", svg::axis_title(c.y.label, c.y.unit)},
            {"series", std::move(series_data)},
            {"markers", std::move(markers)}};
  if (has_y2) f.data["y2_label"] = svg::axis_title(c.y2.label, c.y2.unit);
  return f;
}

}  // namespace kiln::report
