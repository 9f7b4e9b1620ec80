// The figure half of the report kit: charts drawn at generation time as inline SVG (readable with
// no JavaScript), each with a title, axis labels and units, colours taken from the page's CSS
// variables (so one figure suits light, dark and print), hover text through SVG <title> elements,
// and every string escaped. Each figure also returns the numbers it is drawn from, which the page
// embeds as JSON. Pure functions of their inputs: thread-safe, no I/O.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace kiln::report {

/// A drawn figure: markup for the page and the numbers behind it.
struct Figure {
  /// Element id, unique within a page: lowercase letters, digits and '-'.
  std::string id;
  std::string title;
  /// "line", "bar", "histogram", "heatmap", "reliability", "parallel", "table" (data-kind attribute).
  std::string kind;
  /// The figure's markup: one <svg> element, or a <table> for kind "table".
  std::string body;
  /// The numbers the figure is drawn from (embedded under `id`).
  nlohmann::json data;
  /// A sentence under the figure (plain text; may be empty).
  std::string note;
};

/// An axis: its label, its unit (shown in parentheses; may be empty), its scale and optional bounds.
struct Axis {
  Axis() = default;
  Axis(std::string label_, std::string unit_ = "", bool log_ = false, std::optional<double> min_ = std::nullopt,
       std::optional<double> max_ = std::nullopt)
      : label(std::move(label_)), unit(std::move(unit_)), log(log_), min(min_), max(max_) {}
  std::string label;
  std::string unit;
  bool log = false;  ///< log10 scale; values <= 0 are not drawn
  std::optional<double> min, max;
  bool integer = false;  ///< ticks at whole numbers only (epochs, trial numbers)
};

enum class Mark { kLine, kPoints, kLineAndPoints };

/// One series of an XY chart. NaN or infinite y values are gaps.
struct Series {
  Series() = default;
  explicit Series(std::string name_) : name(std::move(name_)) {}
  std::string name;
  std::vector<double> x, y;  ///< same length
  Mark mark = Mark::kLine;
  bool right_axis = false;   ///< drawn against the second y axis
  bool dashed = false;
  int color = -1;            ///< palette index 0..7; -1 picks by position
  bool legend = true;        ///< listed in the legend (off for many look-alike series)
  /// Hover text per point (optional; empty or same length as x).
  std::vector<std::string> point_titles;
};

/// A vertical marker line at x (the best epoch, a pruning step).
struct Marker {
  Marker() = default;
  Marker(double x_, std::string label_) : x(x_), label(std::move(label_)) {}
  double x = 0;
  std::string label;
};

struct XYChart {
  std::string id, title, note;
  Axis x, y, y2;  ///< y2 is drawn only when a series has right_axis
  std::vector<Series> series;
  std::vector<Marker> markers;
  int width = 760, height = 340;  ///< pixels
  /// A series longer than this is downsampled to at most this many points (min and max per
  /// bucket, first and last kept); the embedded data holds the points drawn.
  std::size_t max_points = 1000;
};
/// Throws Error when a series' x and y (or point_titles) differ in length.
[[nodiscard]] Figure xy_chart(const XYChart& chart);

/// Indices of the points a series of (x ascending) y values keeps when drawn with at most
/// `max_points` points (>= 4): all of them when it fits, else the first and last and, per bucket of
/// equal index width, the minimum and maximum y (NaN values are kept as gaps only where a bucket is
/// all NaN). Ascending.
[[nodiscard]] std::vector<std::size_t> downsample_min_max(const std::vector<double>& y, std::size_t max_points);

struct Bar {
  Bar() = default;
  Bar(std::string label_, double value_, bool highlight_ = false, std::string hover_ = "")
      : label(std::move(label_)), value(value_), highlight(highlight_), hover(std::move(hover_)) {}
  std::string label;
  double value = 0;
  bool highlight = false;
  std::string hover;  ///< extra hover text (optional)
};

/// Horizontal bars, one row per bar (labels readable for many classes).
struct BarChart {
  std::string id, title, note;
  Axis value;  ///< the value axis (bounds default to [min(0, lo), max(0, hi)])
  std::vector<Bar> bars;
  bool sort_descending = true;
  /// Legend text for highlighted bars (e.g. "tail classes"); empty: no legend.
  std::string highlight_legend;
  /// Legend text for the other bars, shown with highlight_legend.
  std::string other_legend = "other";
  int width = 760;
};
[[nodiscard]] Figure bar_chart(const BarChart& chart);

/// Binned counts or shares: bin i spans [edges[i], edges[i+1]); with open_last the last bin is
/// [edges.back(), inf) and values has edges.size() entries, else edges.size() - 1. Bins are drawn
/// at equal widths labelled with their ranges (edges may be log-spaced).
struct Histogram {
  std::string id, title, note;
  Axis x, y;
  std::vector<double> edges, values;
  bool open_last = false;
  int width = 760, height = 300;
};
/// Throws Error when the sizes do not match.
[[nodiscard]] Figure histogram(const Histogram& h);

/// A matrix of values, rows top to bottom, columns left to right.
struct HeatMap {
  std::string id, title, note;
  std::string row_axis, col_axis;  ///< axis labels
  std::vector<std::string> row_labels, col_labels;
  std::vector<std::vector<double>> values;
  /// Text for the colour scale ("share of the true class", "examples").
  std::string value_label;
  /// Print values in cells when cells are large enough (decimals: 2 for shares, 0 for counts).
  int decimals = 0;
};
/// Throws Error when the matrix's shape does not match the labels.
[[nodiscard]] Figure heat_map(const HeatMap& h);

struct ReliabilityBin {
  double mean_confidence = 0, accuracy = 0;
  int64_t count = 0;
};
/// Accuracy against confidence per confidence bin, with the diagonal of perfect calibration.
struct ReliabilityDiagram {
  std::string id, title, note;
  std::vector<ReliabilityBin> bins;  ///< bin i spans [i/n, (i+1)/n), n = bins.size()
  double ece = 0;
};
[[nodiscard]] Figure reliability_diagram(const ReliabilityDiagram& d);

/// One vertical axis of a parallel-coordinates plot. Numeric unless `categories` is given, when
/// values are category indices.
struct ParallelAxis {
  std::string name;
  std::vector<double> values;  ///< one per line; NaN: the line skips this axis
  bool log = false;
  std::vector<std::string> categories;
};
struct ParallelCoordinates {
  std::string id, title, note;
  std::vector<ParallelAxis> axes;  ///< the last is usually the objective
  /// Colours lines by this value (five quantile classes); same length as each axis' values.
  std::vector<double> color_values;
  std::string color_label;
  int width = 760, height = 340;
};
[[nodiscard]] Figure parallel_coordinates(const ParallelCoordinates& p);

/// A table of text cells. Numeric columns are right-aligned.
struct Table {
  std::string id, title, note;
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;
  std::vector<bool> numeric;          ///< per column (optional)
  std::vector<bool> highlight_rows;   ///< per row (optional)
  nlohmann::json data;                ///< numbers behind the table (optional)
};
/// Throws Error when a row's width differs from the header's.
[[nodiscard]] Figure table(const Table& t);

/// A number for people: up to `digits` significant digits, no trailing zeros ("0.3112", "1e-05").
[[nodiscard]] std::string format_value(double v, int digits = 4);

}  // namespace kiln::report
