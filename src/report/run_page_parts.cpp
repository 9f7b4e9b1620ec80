// Pieces shared by the run and comparison pages: JSON access and the classification figures.
#include <algorithm>
#include <cmath>
#include <limits>

#include "kiln/report/figures.h"
#include "run_page_parts.h"

namespace kiln::report {

namespace detail {

double jnum(const nlohmann::json& j, const char* key) {
  if (!j.is_object()) return std::numeric_limits<double>::quiet_NaN();
  const auto it = j.find(key);
  return (it != j.end() && it->is_number()) ? it->get<double>() : std::numeric_limits<double>::quiet_NaN();
}

std::string jstr(const nlohmann::json& j, const char* key) {
  if (!j.is_object()) return "";
  const auto it = j.find(key);
  if (it == j.end() || it->is_null()) return "";
  return it->is_string() ? it->get<std::string>() : it->dump();
}

const nlohmann::json& jobj(const nlohmann::json& j, const char* key) {
  static const nlohmann::json kEmpty = nlohmann::json::object();
  if (!j.is_object()) return kEmpty;
  const auto it = j.find(key);
  return (it != j.end() && it->is_object()) ? *it : kEmpty;
}

std::pair<std::string, const nlohmann::json*> final_metrics(const nlohmann::json& manifest) {
  const auto& m = jobj(manifest, "metrics");
  if (m.contains("test") && m["test"].is_object()) return {"test", &m["test"]};
  if (m.contains("validation") && m["validation"].is_object()) return {"validation", &m["validation"]};
  return {"", nullptr};
}

std::vector<std::string> metric_labels(const nlohmann::json& metrics, const nlohmann::json& manifest) {
  std::vector<std::string> labels;
  const auto& l = metrics.contains("labels") ? metrics["labels"] : manifest.value("labels", nlohmann::json::array());
  for (const auto& x : l)
    if (x.is_string()) labels.push_back(x.get<std::string>());
  return labels;
}

std::set<std::string> tail_classes(const std::map<std::string, double>& counts, double fraction) {
  std::set<std::string> tail;
  if (counts.empty()) return tail;
  std::vector<double> v;
  for (const auto& [k, c] : counts) v.push_back(c);
  std::sort(v.begin(), v.end());
  const std::size_t k = std::max<std::size_t>(1, static_cast<std::size_t>(std::floor(fraction * v.size())));
  const double cut = v[std::min(k, v.size()) - 1];
  for (const auto& [name, c] : counts)
    if (c <= cut) tail.insert(name);
  return tail;
}

void add_classification(Page& page, const nlohmann::json& m, const std::vector<std::string>& labels,
                        const std::set<std::string>& tail, const std::string& split, const std::string& prefix) {
  const auto& per = jobj(m, "per_class");
  // Classification report.
  Table t;
  t.id = prefix + "classification-report";
  t.title = "Classification report (" + split + " set, " + format_value(jnum(m, "n"), 10) + " examples)";
  t.header = {"class", "precision", "recall", "F1", "support"};
  t.numeric = {false, true, true, true, true};
  nlohmann::json rows_data = nlohmann::json::object();
  for (const auto& l : labels) {
    const auto& c = jobj(per, l.c_str());
    t.rows.push_back({l, format_value(jnum(c, "precision"), 4), format_value(jnum(c, "recall"), 4),
                      format_value(jnum(c, "f1"), 4), format_value(jnum(c, "support"), 10)});
    t.highlight_rows.push_back(tail.count(l) > 0);
    rows_data[l] = c;
  }
  for (const char* avg : {"macro", "weighted", "micro"}) {
    const std::string p = avg;
    t.rows.push_back({p + " avg", format_value(jnum(m, (p + "_precision").c_str()), 4),
                      format_value(jnum(m, (p + "_recall").c_str()), 4), format_value(jnum(m, (p + "_f1").c_str()), 4),
                      format_value(jnum(m, "n"), 10)});
    t.highlight_rows.push_back(false);
  }
  t.rows.push_back({"accuracy", "", "", format_value(jnum(m, "accuracy"), 4), format_value(jnum(m, "n"), 10)});
  t.rows.push_back({"log loss", "", "", format_value(jnum(m, "log_loss"), 4), ""});
  t.highlight_rows.push_back(false);
  t.highlight_rows.push_back(false);
  t.data = {{"per_class", rows_data},
            {"accuracy", m.value("accuracy", nlohmann::json())},
            {"macro_f1", m.value("macro_f1", nlohmann::json())},
            {"weighted_f1", m.value("weighted_f1", nlohmann::json())},
            {"log_loss", m.value("log_loss", nlohmann::json())},
            {"n", m.value("n", nlohmann::json())}};
  if (!tail.empty()) t.note = "Highlighted rows: tail classes (the fewest training examples).";
  page.add(table(t));

  // Per-class F1, sorted, tail highlighted.
  BarChart f1;
  f1.id = prefix + "per-class-f1";
  f1.title = "F1 per class (" + split + " set), best first";
  f1.value = Axis("F1", "", false, 0.0, 1.0);
  for (const auto& l : labels) {
    const auto& c = jobj(per, l.c_str());
    f1.bars.push_back(Bar(l, jnum(c, "f1"), tail.count(l) > 0, "support " + format_value(jnum(c, "support"), 10)));
  }
  if (!tail.empty()) f1.highlight_legend = "tail classes (fewest training examples)";
  page.add(bar_chart(f1));

  // Confusion matrix, counts and normalized by true class.
  const auto& cm = m.contains("confusion_matrix") ? m["confusion_matrix"] : nlohmann::json();
  if (cm.is_array() && cm.size() == labels.size()) {
    std::vector<std::vector<double>> counts, shares;
    for (const auto& row : cm) {
      std::vector<double> r;
      double sum = 0;
      for (const auto& v : row) {
        r.push_back(v.is_number() ? v.get<double>() : 0);
        sum += r.back();
      }
      std::vector<double> s(r.size(), 0);
      for (std::size_t i = 0; i < r.size(); ++i) s[i] = sum > 0 ? r[i] / sum : 0;
      counts.push_back(std::move(r));
      shares.push_back(std::move(s));
    }
    HeatMap norm;
    norm.id = prefix + "confusion-normalized";
    norm.title = "Confusion matrix, normalized by true class (" + split + " set)";
    norm.row_axis = "true class";
    norm.col_axis = "predicted class";
    norm.row_labels = labels;
    norm.col_labels = labels;
    norm.values = shares;
    norm.value_label = "share of the true class";
    norm.decimals = 2;
    norm.note = "Each row sums to 1: the diagonal is the class's recall. Hover a cell for its value.";
    page.add(heat_map(norm));
    HeatMap raw = norm;
    raw.id = prefix + "confusion-counts";
    raw.title = "Confusion matrix, counts (" + split + " set)";
    raw.values = counts;
    raw.value_label = "examples";
    raw.decimals = 0;
    raw.note = "Rows: true class; columns: predicted class.";
    page.add(heat_map(raw));
  } else {
    page.paragraph("No confusion matrix in the metrics.");
  }

  // Reliability diagram.
  const auto& rel = m.contains("reliability") ? m["reliability"] : nlohmann::json();
  if (rel.is_array() && !rel.empty()) {
    ReliabilityDiagram d;
    d.id = prefix + "reliability";
    d.ece = jnum(m, "ece");
    d.title = "Reliability diagram (" + split + " set), ECE " + format_value(d.ece, 4);
    for (const auto& b : rel) {
      d.bins.push_back(ReliabilityBin{jnum(b, "mean_confidence"), jnum(b, "accuracy"),
                                      static_cast<int64_t>(std::isfinite(jnum(b, "count")) ? jnum(b, "count") : 0)});
    }
    d.note = "Bars: accuracy of the examples whose top-class probability falls in the bin; the strip along the "
             "bottom shades each bin by its share of examples. ECE over " +
             format_value(jnum(m, "ece_bins"), 4) + " bins.";
    page.add(reliability_diagram(d));
  }
}

}  // namespace detail

}  // namespace kiln::report
