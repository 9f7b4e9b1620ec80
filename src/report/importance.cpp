// importance.json (global feature importances from `kiln explain --global`) and its page section.
#include <algorithm>
#include <cmath>

#include "kiln/core/error.h"
#include "kiln/report/figures.h"
#include "kiln/report/page.h"
#include "kiln/report/run_report.h"
#include "run_page_parts.h"

namespace kiln::report {

namespace {

constexpr const char* kFix = "; regenerate it with `kiln explain ARTIFACT --global`";

std::vector<FeatureWeight> parse_features(const nlohmann::json& j, const std::string& where) {
  if (!j.is_array()) throw DataError(where + " must be an array of {\"feature\", \"mean_abs\"}, got " + j.dump().substr(0, 60) + kFix);
  std::vector<FeatureWeight> out;
  for (std::size_t i = 0; i < j.size(); ++i) {
    const auto& f = j[i];
    const std::string at = where + "[" + std::to_string(i) + "]";
    if (!f.is_object() || !f.contains("feature") || !f["feature"].is_string()) {
      throw DataError(at + " must be {\"feature\": string, \"mean_abs\": number}, got " + f.dump().substr(0, 60) + kFix);
    }
    if (!f.contains("mean_abs") || !f["mean_abs"].is_number() || !std::isfinite(f["mean_abs"].get<double>()) ||
        f["mean_abs"].get<double>() < 0) {
      throw DataError(at + ".mean_abs must be a finite number >= 0 (a mean absolute attribution), got " +
                      (f.contains("mean_abs") ? f["mean_abs"].dump() : std::string("nothing")) + kFix);
    }
    out.push_back(FeatureWeight{f["feature"].get<std::string>(), f["mean_abs"].get<double>()});
  }
  std::stable_sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.mean_abs > b.mean_abs; });
  return out;
}

}  // namespace

GlobalImportance parse_importance(const std::string& text, const std::string& path) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    throw DataError(path + ": not valid JSON (" + std::string(e.what()) + ")" + kFix);
  }
  if (!j.is_object()) throw DataError(path + ": expected a JSON object with \"method\", \"space\", \"rows\" and \"classes\"" + kFix);
  GlobalImportance g;
  auto text_field = [&](const char* key) {
    if (!j.contains(key) || !j[key].is_string()) {
      throw DataError(path + ": \"" + key + "\" must be a string, got " + (j.contains(key) ? j[key].dump() : "nothing") + kFix);
    }
    return j[key].get<std::string>();
  };
  g.method = text_field("method");
  g.space = text_field("space");
  if (g.space != "logit" && g.space != "probability") {
    throw DataError(path + ": \"space\" must be \"logit\" or \"probability\", got \"" + g.space + "\"" + kFix);
  }
  if (!j.contains("rows") || !j["rows"].is_number_integer() || j["rows"].get<long long>() < 0) {
    throw DataError(path + ": \"rows\" must be a whole number >= 0 (examples explained), got " +
                    (j.contains("rows") ? j["rows"].dump() : std::string("nothing")) + kFix);
  }
  g.rows = j["rows"].get<long long>();
  if (!j.contains("classes") || !j["classes"].is_array()) {
    throw DataError(path + ": \"classes\" must be an array of {\"label\", \"features\"}, got " +
                    (j.contains("classes") ? j["classes"].dump().substr(0, 60) : std::string("nothing")) + kFix);
  }
  for (std::size_t i = 0; i < j["classes"].size(); ++i) {
    const auto& c = j["classes"][i];
    const std::string at = path + ": classes[" + std::to_string(i) + "]";
    if (!c.is_object() || !c.contains("label") || !c["label"].is_string()) {
      throw DataError(at + " must be {\"label\": string, \"features\": [...]}, got " + c.dump().substr(0, 60) + kFix);
    }
    g.classes.push_back(ClassImportance{c["label"].get<std::string>(),
                                        parse_features(c.value("features", nlohmann::json()), at + ".features")});
  }
  if (j.contains("overall") && !j["overall"].is_null()) g.overall = parse_features(j["overall"], path + ": overall");
  return g;
}

namespace detail {

namespace {

BarChart importance_bars(const std::vector<FeatureWeight>& features, const std::string& id, const std::string& title,
                         const std::string& space, std::size_t top) {
  BarChart b;
  b.id = id;
  b.title = title;
  b.value = Axis("mean |attribution|", space);
  for (std::size_t i = 0; i < std::min(top, features.size()); ++i) b.bars.push_back(Bar(features[i].feature, features[i].mean_abs));
  if (features.size() > top) b.note = "Top " + std::to_string(top) + " of " + std::to_string(features.size()) + " features.";
  return b;
}

}  // namespace

void add_importance(Page& page, const RunFiles& run, const std::string& artifact, std::size_t top) {
  page.section("Top features per class");
  const std::string how = "run `kiln explain " + artifact +
                          " --global` to compute each feature's mean absolute attribution per class (it writes "
                          "importance.json next to kiln.json); the page shows it when it is generated next";
  if (!run.importance_error.empty()) {
    page.paragraph("Skipped: " + run.importance_error + ".");
    return;
  }
  if (!run.importance) {
    page.paragraph("No global feature importances: " + artifact + " holds no importance.json. To see them, " + how + ".");
    return;
  }
  const auto& g = *run.importance;
  page.key_values({{"method", g.method},
                   {"attributions add up to", g.space},
                   {"examples explained", std::to_string(g.rows)},
                   {"classes", std::to_string(g.classes.size())},
                   {"file", run.importance_path}});
  if (!g.overall.empty()) {
    page.add(bar_chart(importance_bars(g.overall, "importance-overall", "Top features over all classes", g.space, top)));
  }
  if (g.classes.empty()) {
    page.paragraph(run.importance_path + " lists no classes.");
    return;
  }
  page.paragraph("One section per class (open a class to see its top " + std::to_string(top) +
                 " features). Bars: the mean absolute attribution of each feature to the class's " + g.space + ".");
  for (std::size_t i = 0; i < g.classes.size(); ++i) {
    const auto& c = g.classes[i];
    std::string preview;
    for (std::size_t k = 0; k < std::min<std::size_t>(3, c.features.size()); ++k) preview += (k ? ", " : "") + c.features[k].feature;
    page.html(std::string("<details class=\"imp\"") + (i == 0 ? " open" : "") + "><summary>" + escape_html(c.label) +
              (preview.empty() ? "" : " — " + escape_html(preview)) + "</summary>\n");
    if (c.features.empty()) {
      page.paragraph("No features for this class.");
    } else {
      page.add(bar_chart(importance_bars(c.features, "importance-class-" + std::to_string(i),
                                         "Top features for class " + c.label, g.space, top)));
    }
    page.html("</details>\n");
  }
}

}  // namespace detail

}  // namespace kiln::report
