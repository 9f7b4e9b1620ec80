// Several runs side by side.
#include <cmath>
#include <set>

#include "kiln/core/error.h"
#include "kiln/report/figures.h"
#include "kiln/report/page.h"
#include "kiln/report/run_report.h"
#include "run_page_parts.h"

namespace kiln::report {

using namespace detail;

namespace {

// Flattens a JSON object into "a.b.c" -> value text.
void flatten(const nlohmann::json& j, const std::string& prefix, std::map<std::string, std::string>& out) {
  if (j.is_object()) {
    for (const auto& [k, v] : j.items()) flatten(v, prefix.empty() ? k : prefix + "." + k, out);
  } else {
    out[prefix] = j.is_string() ? j.get<std::string>() : j.dump();
  }
}

}  // namespace

std::string comparison_page(const std::vector<RunFiles>& runs, const RunPageOptions& o) {
  if (runs.size() < 2) throw ConfigError("a comparison needs at least two run directories, got " + std::to_string(runs.size()));
  std::vector<const nlohmann::json*> ms;
  std::string split;
  for (const auto& r : runs) {
    if (!r.manifest.is_object()) {
      throw DataError(r.dir + ": no artifact (model/kiln.json) to compare; give finished runs of kiln train/run");
    }
    const auto [s, m] = final_metrics(r.manifest);
    if (!m) throw DataError(r.dir + ": its kiln.json has no test or validation metrics to compare");
    if (split.empty()) split = s;
    if (s != split) {
      throw DataError(r.dir + ": has " + s + " metrics while " + runs.front().dir + " has " + split +
                      " metrics; compare runs evaluated on the same kind of split");
    }
    ms.push_back(m);
  }
  std::string names;
  for (std::size_t i = 0; i < runs.size(); ++i) names += (i ? " · " : "") + std::string(1, static_cast<char>('A' + i % 26)) + " = " + runs[i].dir;
  Page page("Kiln model comparison (" + std::to_string(runs.size()) + " runs)", names);

  page.section("Metrics");
  Table t;
  t.id = "metrics";
  t.title = "Metrics on the " + split + " set, side by side (deltas against " + runs.front().dir + ")";
  t.header = {"metric"};
  for (const auto& r : runs) t.header.push_back(r.dir);
  for (std::size_t i = 1; i < runs.size(); ++i) t.header.push_back("Δ " + runs[i].dir);
  t.numeric.assign(t.header.size(), true);
  t.numeric[0] = false;
  nlohmann::json tdata = nlohmann::json::object();
  for (const char* key : {"accuracy", "macro_f1", "weighted_f1", "micro_f1", "macro_precision", "macro_recall", "log_loss",
                          "ece", "n"}) {
    std::vector<std::string> row = {key};
    nlohmann::json vals = nlohmann::json::array();
    for (const auto* m : ms) {
      row.push_back(format_value(jnum(*m, key), key == std::string("n") ? 12 : 4));
      vals.push_back(jnum(*m, key));
    }
    for (std::size_t i = 1; i < ms.size(); ++i) {
      const double d = jnum(*ms[i], key) - jnum(*ms[0], key);
      row.push_back((d > 0 ? "+" : "") + format_value(d, 3));
    }
    t.rows.push_back(std::move(row));
    tdata[key] = std::move(vals);
  }
  t.data = {{"runs", nlohmann::json::array()}, {"metrics", tdata}};
  for (const auto& r : runs) t.data["runs"].push_back(r.dir);
  page.add(table(t));

  // Per-class F1 and its deltas.
  std::vector<std::string> labels = metric_labels(*ms[0], runs[0].manifest);
  std::set<std::string> all(labels.begin(), labels.end());
  for (std::size_t i = 1; i < ms.size(); ++i)
    for (const auto& l : metric_labels(*ms[i], runs[i].manifest))
      if (!all.count(l)) {
        labels.push_back(l);
        all.insert(l);
      }
  page.section("Per class");
  Table pc;
  pc.id = "per-class-f1";
  pc.title = "F1 per class on the " + split + " set";
  pc.header = {"class"};
  for (const auto& r : runs) pc.header.push_back(r.dir);
  for (std::size_t i = 1; i < runs.size(); ++i) pc.header.push_back("Δ " + runs[i].dir);
  pc.header.push_back("support");
  pc.numeric.assign(pc.header.size(), true);
  pc.numeric[0] = false;
  nlohmann::json pcd = nlohmann::json::object();
  for (const auto& l : labels) {
    std::vector<std::string> row = {l};
    nlohmann::json vals = nlohmann::json::array();
    for (const auto* m : ms) {
      const double f = jnum(jobj(jobj(*m, "per_class"), l.c_str()), "f1");
      row.push_back(format_value(f, 4));
      vals.push_back(f);
    }
    for (std::size_t i = 1; i < ms.size(); ++i) {
      const double d = jnum(jobj(jobj(*ms[i], "per_class"), l.c_str()), "f1") - jnum(jobj(jobj(*ms[0], "per_class"), l.c_str()), "f1");
      row.push_back((d > 0 ? "+" : "") + format_value(d, 3));
    }
    row.push_back(format_value(jnum(jobj(jobj(*ms[0], "per_class"), l.c_str()), "support"), 12));
    pc.rows.push_back(std::move(row));
    pcd[l] = std::move(vals);
  }
  pc.data = {{"runs", t.data["runs"]}, {"f1", pcd}};
  page.add(table(pc));
  for (std::size_t i = 1; i < ms.size(); ++i) {
    BarChart d;
    d.id = "f1-delta-" + std::to_string(i);
    d.title = "Change in F1 per class: " + runs[i].dir + " minus " + runs[0].dir;
    d.value = Axis("Δ F1", "", false, std::nullopt, std::nullopt);
    for (const auto& l : labels) {
      const double a = jnum(jobj(jobj(*ms[0], "per_class"), l.c_str()), "f1");
      const double b = jnum(jobj(jobj(*ms[i], "per_class"), l.c_str()), "f1");
      d.bars.push_back(Bar(l, b - a, b - a < 0, "F1 " + format_value(a, 4) + " → " + format_value(b, 4)));
    }
    d.highlight_legend = "worse";
    d.other_legend = "better or equal";
    d.note = "Sorted from the largest gain to the largest loss.";
    page.add(bar_chart(d));
  }

  page.section("Configs that differ");
  std::vector<std::map<std::string, std::string>> flat(runs.size());
  std::set<std::string> keys;
  for (std::size_t i = 0; i < runs.size(); ++i) {
    flatten(jobj(runs[i].manifest, "training"), "", flat[i]);
    flat[i]["model.family"] = jstr(jobj(runs[i].manifest, "model"), "family");
    flat[i]["kiln_version"] = jstr(runs[i].manifest, "kiln_version");
    for (const auto& [k, v] : flat[i]) keys.insert(k);
  }
  Table cfg;
  cfg.id = "config-diff";
  cfg.title = "Settings whose values differ between the runs";
  cfg.header = {"setting"};
  for (const auto& r : runs) cfg.header.push_back(r.dir);
  for (const auto& k : keys) {
    if (k.find("seconds") != std::string::npos || k.rfind("selection.", 0) == 0) continue;
    bool same = true;
    for (std::size_t i = 1; i < runs.size(); ++i) same = same && flat[i][k] == flat[0][k];
    if (same) continue;
    std::vector<std::string> row = {k};
    for (std::size_t i = 0; i < runs.size(); ++i) row.push_back(flat[i].count(k) ? flat[i][k] : "—");
    cfg.rows.push_back(std::move(row));
  }
  cfg.note = cfg.rows.empty() ? "The runs' training configs are the same (timings aside)." : "Timings are left out.";
  page.add(table(cfg));
  return page.render(o.generator);
}

}  // namespace kiln::report
