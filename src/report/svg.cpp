#include "svg.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "kiln/report/page.h"

namespace kiln::report::svg {

double Scale::operator()(double v) const {
  double a = d0, b = d1;
  if (log) {
    a = std::log10(a);
    b = std::log10(b);
    v = std::log10(v);
  }
  if (b == a) return (r0 + r1) / 2;
  return r0 + (v - a) / (b - a) * (r1 - r0);
}

namespace {
double nice_step(double span, int n) {
  const double raw = span / std::max(1, n);
  const double p = std::pow(10.0, std::floor(std::log10(raw)));
  const double f = raw / p;
  return (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * p;
}
}  // namespace

std::vector<double> nice_ticks(double lo, double hi, int n) {
  std::vector<double> t;
  if (!(hi > lo) || !std::isfinite(lo) || !std::isfinite(hi)) {
    if (std::isfinite(lo)) t.push_back(lo);
    return t;
  }
  const double step = nice_step(hi - lo, n);
  const double start = std::ceil(lo / step - 1e-9) * step;
  for (double v = start; v <= hi + step * 1e-9; v += step) {
    t.push_back(std::fabs(v) < step * 1e-9 ? 0.0 : v);
    if (t.size() > 50) break;
  }
  return t;
}

std::vector<double> log_ticks(double lo, double hi) {
  std::vector<double> t;
  if (!(lo > 0) || !(hi >= lo)) return t;
  const int a = static_cast<int>(std::floor(std::log10(lo) + 1e-9));
  const int b = static_cast<int>(std::ceil(std::log10(hi) - 1e-9));
  for (int e = a; e <= b; ++e) {
    const double v = std::pow(10.0, e);
    if (v >= lo * (1 - 1e-9) && v <= hi * (1 + 1e-9)) t.push_back(v);
  }
  if (t.size() < 3) {
    std::vector<double> more;
    for (int e = a; e <= b; ++e) {
      for (double m : {1.0, 2.0, 5.0}) {
        const double v = m * std::pow(10.0, e);
        if (v >= lo * (1 - 1e-9) && v <= hi * (1 + 1e-9)) more.push_back(v);
      }
    }
    t = more;
  }
  return t;
}

void nice_range(double& lo, double& hi, bool log) {
  if (!std::isfinite(lo) || !std::isfinite(hi)) {
    lo = log ? 1 : 0;
    hi = log ? 10 : 1;
    return;
  }
  if (log) {
    if (hi <= lo) {
      lo /= 2;
      hi *= 2;
    }
    lo = std::pow(10.0, std::floor(std::log10(lo) + 1e-9));
    hi = std::pow(10.0, std::ceil(std::log10(hi) - 1e-9));
    return;
  }
  if (hi <= lo) {
    const double m = lo == 0 ? 1 : std::fabs(lo) * 0.1;
    lo -= m;
    hi += m;
  }
  const double step = nice_step(hi - lo, 5);
  lo = std::floor(lo / step + 1e-9) * step;
  hi = std::ceil(hi / step - 1e-9) * step;
}

std::string px(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.1f", std::isfinite(v) ? v : 0.0);
  std::string s = b;
  if (s.size() > 2 && s.compare(s.size() - 2, 2, ".0") == 0) s.resize(s.size() - 2);
  if (s == "-0") s = "0";
  return s;
}

std::string tick_label(double v) { return format_value(std::fabs(v) < 1e-12 ? 0.0 : v, 6); }

std::string axis_title(const std::string& label, const std::string& unit) {
  return unit.empty() ? label : label + " (" + unit + ")";
}

Builder::Builder(int width, int height, const std::string& title) {
  out_ = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + std::to_string(width) + "\" height=\"" +
         std::to_string(height) + "\" viewBox=\"0 0 " + std::to_string(width) + " " + std::to_string(height) +
         "\" role=\"img\"><title>" + escape_html(title) + "</title>";
}

void Builder::line(double x1, double y1, double x2, double y2, std::string_view cls) {
  out_ += "<line x1=\"" + px(x1) + "\" y1=\"" + px(y1) + "\" x2=\"" + px(x2) + "\" y2=\"" + px(y2) + "\" class=\"";
  out_ += cls;
  out_ += "\"/>";
}

void Builder::rect(double x, double y, double w, double h, std::string_view cls, const std::string& hover,
                   double opacity) {
  out_ += "<rect x=\"" + px(x) + "\" y=\"" + px(y) + "\" width=\"" + px(std::max(0.0, w)) + "\" height=\"" +
          px(std::max(0.0, h)) + "\" class=\"";
  out_ += cls;
  out_ += "\"";
  if (opacity >= 0) {
    char b[32];
    std::snprintf(b, sizeof b, "%.3f", std::min(1.0, opacity));
    out_ += std::string(" fill-opacity=\"") + b + "\"";
  }
  if (hover.empty()) {
    out_ += "/>";
  } else {
    out_ += "><title>" + escape_html(hover) + "</title></rect>";
  }
}

void Builder::circle(double cx, double cy, double r, std::string_view cls, const std::string& hover) {
  out_ += "<circle cx=\"" + px(cx) + "\" cy=\"" + px(cy) + "\" r=\"" + px(r) + "\" class=\"";
  out_ += cls;
  out_ += "\"";
  if (hover.empty()) {
    out_ += "/>";
  } else {
    out_ += "><title>" + escape_html(hover) + "</title></circle>";
  }
}

void Builder::text(double x, double y, const std::string& s, std::string_view cls, std::string_view anchor,
                   double rotate) {
  out_ += "<text x=\"" + px(x) + "\" y=\"" + px(y) + "\" class=\"";
  out_ += cls;
  out_ += "\" text-anchor=\"";
  out_ += anchor;
  out_ += "\"";
  if (rotate != 0) out_ += " transform=\"rotate(" + px(rotate) + " " + px(x) + " " + px(y) + ")\"";
  out_ += ">" + escape_html(s) + "</text>";
}

void Builder::polyline(const std::vector<std::pair<double, double>>& pts, std::string_view cls) {
  if (pts.size() < 2) return;
  out_ += "<polyline class=\"";
  out_ += cls;
  out_ += "\" points=\"";
  for (std::size_t i = 0; i < pts.size(); ++i) {
    if (i) out_ += ' ';
    out_ += px(pts[i].first) + "," + px(pts[i].second);
  }
  out_ += "\"/>";
}

std::string Builder::finish() {
  out_ += "</svg>";
  return std::move(out_);
}

}  // namespace kiln::report::svg
