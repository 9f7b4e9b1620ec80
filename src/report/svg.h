// Private drawing helpers of the figure kit: linear/log scales, tick choice, and an SVG string
// builder whose every text goes through escape_html.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace kiln::report::svg {

/// Maps a data interval onto a pixel interval, linearly or on log10.
struct Scale {
  double d0 = 0, d1 = 1, r0 = 0, r1 = 1;
  bool log = false;
  [[nodiscard]] double operator()(double v) const;
};

/// About `n` round tick values (1, 2, 5 times a power of ten) covering [lo, hi].
[[nodiscard]] std::vector<double> nice_ticks(double lo, double hi, int n);
/// Powers of ten in [lo, hi] (lo > 0), with 2 and 5 multiples when fewer than three.
[[nodiscard]] std::vector<double> log_ticks(double lo, double hi);
/// Widens [lo, hi] to round numbers (nice_ticks' ends); equal ends get a margin.
void nice_range(double& lo, double& hi, bool log);

/// Pixel coordinate text: one decimal, no trailing ".0".
[[nodiscard]] std::string px(double v);
/// Tick label: short form of v ("0.001", "2e+04", "150").
[[nodiscard]] std::string tick_label(double v);
/// "label (unit)" or "label".
[[nodiscard]] std::string axis_title(const std::string& label, const std::string& unit);

/// Builds one <svg> element.
class Builder {
 public:
  /// `title` becomes the SVG's accessible <title>.
  Builder(int width, int height, const std::string& title);
  void line(double x1, double y1, double x2, double y2, std::string_view cls);
  void rect(double x, double y, double w, double h, std::string_view cls, const std::string& hover = "",
            double opacity = -1);
  void circle(double cx, double cy, double r, std::string_view cls, const std::string& hover = "");
  /// anchor: "start", "middle", "end"; rotate: degrees about (x, y).
  void text(double x, double y, const std::string& s, std::string_view cls, std::string_view anchor = "start",
            double rotate = 0);
  void polyline(const std::vector<std::pair<double, double>>& pts, std::string_view cls);
  /// Raw markup from the kit itself (never user text).
  void raw(std::string_view markup) { out_ += markup; }
  [[nodiscard]] std::string finish();

 private:
  std::string out_;
};

}  // namespace kiln::report::svg
