#include "kiln/explain/render.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>

#include "kiln/report/figures.h"
#include "kiln/report/page.h"

namespace kiln::explain {
namespace {

std::string num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

// Byte offset of code point `cp` of `text`.
std::size_t byte_of(const std::string& text, int64_t cp) {
  int64_t n = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if ((static_cast<unsigned char>(text[i]) & 0xC0) == 0x80) continue;
    if (n == cp) return i;
    ++n;
  }
  return text.size();
}

}  // namespace

std::vector<std::size_t> top_attributions(const Explanation& e, std::size_t top) {
  std::vector<std::size_t> order(e.attributions.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    return std::abs(e.attributions[a].value) > std::abs(e.attributions[b].value);
  });
  if (order.size() > top) order.resize(top);
  return order;
}

std::string render_text(const Explanation& e, std::size_t index, std::size_t top) {
  std::string out = "example " + std::to_string(index + 1) + ": " + e.label + " (" + e.space + " " + num(e.output) +
                    ", method " + method_name(e.method) + ")\n";
  double sum = 0;
  for (const auto& a : e.attributions) sum += a.value;
  out += "  base " + num(e.base_value) + " + sum(phi) " + num(sum) + " = " + num(e.base_value + sum) + " vs f(x) " +
         num(e.output) + " (error " + num(e.additivity_error()) + ")";
  if (e.delta) out += "; integrated-gradients delta " + num(*e.delta);
  out += "\n";
  for (std::size_t k : top_attributions(e, top)) {
    const auto& a = e.attributions[k];
    char buf[48];
    std::snprintf(buf, sizeof buf, "  %+12.6f  ", a.value);
    out += buf + a.feature;
    for (const auto& [s, t] : a.spans) out += " [" + std::to_string(s) + "," + std::to_string(t) + ")";
    out += "\n";
  }
  return out;
}

std::string render_html(const std::vector<Explanation>& explanations, const std::vector<std::string>& texts,
                        std::size_t top, const std::string& artifact, const std::string& generator) {
  report::Page page("Explanations", artifact);
  page.paragraph("Red words push the explained class up, blue words push it down; the stronger the colour, the "
                 "larger the attribution. Hover a word for its value. Only the " + std::to_string(top) +
                 " largest attributions of each example are highlighted.");
  for (std::size_t i = 0; i < explanations.size(); ++i) {
    const Explanation& e = explanations[i];
    page.section("Example " + std::to_string(i + 1) + ": " + e.label);
    page.key_values({{"method", method_name(e.method)},
                     {"f(x) (" + e.space + ")", num(e.output)},
                     {"base value", num(e.base_value)},
                     {"|base + sum(phi) - f(x)|", num(e.additivity_error())}});
    const auto order = top_attributions(e, top);
    double scale = 0;
    for (std::size_t k : order) scale = std::max(scale, std::abs(e.attributions[k].value));
    const std::string& text = i < texts.size() ? texts[i] : std::string();
    if (!text.empty()) {
      // Highlighted spans, non-overlapping (a bigram inside a highlighted word is skipped).
      struct Mark { std::size_t begin, end; double value; std::string feature; };
      std::vector<Mark> marks;
      for (std::size_t k : order) {
        const auto& a = e.attributions[k];
        for (const auto& [s, t] : a.spans) marks.push_back({byte_of(text, s), byte_of(text, t), a.value, a.feature});
      }
      std::sort(marks.begin(), marks.end(), [](const Mark& a, const Mark& b) { return a.begin < b.begin; });
      std::string body = "<table><tr><td style=\"line-height:1.9\">";
      std::size_t at = 0;
      for (const auto& m : marks) {
        if (m.begin < at) continue;
        body += report::escape_html(text.substr(at, m.begin - at));
        const double alpha = scale > 0 ? 0.15 + 0.75 * std::abs(m.value) / scale : 0;
        const std::string rgb = m.value >= 0 ? "220,40,40" : "40,90,220";
        body += "<span style=\"background:rgba(" + rgb + "," + num(alpha) + ");border-radius:3px;padding:0 2px\" title=\"" +
                report::escape_html(m.feature + ": " + num(m.value)) + "\">" +
                report::escape_html(text.substr(m.begin, m.end - m.begin)) + "</span>";
        at = m.end;
      }
      body += report::escape_html(text.substr(at)) + "</td></tr></table>";
      report::Figure f;
      f.id = "text-" + std::to_string(i + 1);
      f.title = "Text";
      f.kind = "table";
      f.body = body;
      f.data = to_json(e);
      page.add(std::move(f));
    }
    report::BarChart chart;
    chart.id = "attributions-" + std::to_string(i + 1);
    chart.title = "Largest attributions (" + e.space + ")";
    chart.value = report::Axis("attribution", e.space);
    chart.sort_descending = false;
    for (std::size_t k : order) {
      const auto& a = e.attributions[k];
      chart.bars.emplace_back(a.feature, a.value, a.value >= 0);
    }
    if (!chart.bars.empty()) page.add(report::bar_chart(chart));
  }
  return page.render(generator);
}

}  // namespace kiln::explain
