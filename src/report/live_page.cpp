// The served model's page (GET / of kiln serve): the static report, the live panel's frames and
// the try-it box. The script that fills them is live_script.cpp.
#include "kiln/report/live_page.h"

#include <algorithm>

#include "kiln/core/error.h"
#include "kiln/report/figures.h"
#include "kiln/report/page.h"
#include "run_page_parts.h"
#include "svg.h"

namespace kiln::report {

namespace detail {
/// The live panel's and the try-it box's script (live_script.cpp).
extern const char* const kLiveScript;
}  // namespace detail

using namespace detail;

void LivePageOptions::validate() const {
  if (poll_ms < 250) throw ConfigError("live page poll_ms must be >= 250 (milliseconds), got " + std::to_string(poll_ms));
  if (top_k < 1) throw ConfigError("live page top_k must be >= 1, got " + std::to_string(top_k));
  for (const auto* p : {&metrics_path, &predict_path, &explain_path}) {
    if (p->empty() || (*p)[0] != '/' || p->find("//") != std::string::npos) {
      throw ConfigError("live page route '" + *p + "' must be a path on the server itself (\"/metrics\")");
    }
  }
}

namespace {

// A frame the script draws into: an empty plot with its title, so the page reads (and the figure
// exists) before the first /metrics answer and without JavaScript.
Figure live_frame(const std::string& id, const std::string& title, const std::string& kind, const std::string& note,
                  const std::string& metric, int height = 240) {
  svg::Builder b(760, height, title);
  b.rect(60, 16, 680, height - 60, "frame");
  b.text(400, height / 2.0, "waiting for " + metric + " (the live panel needs JavaScript)", "tk", "middle");
  Figure f;
  f.id = id;
  f.title = title;
  f.kind = kind;
  f.body = b.finish();
  f.note = note;
  f.data = {{"source", "metrics"}, {"metric", metric}, {"live", true}};
  return f;
}

std::string tile(const std::string& id, const std::string& caption) {
  return "<div class=\"tile\"><b id=\"" + id + "\">—</b><span>" + escape_html(caption) + "</span></div>";
}

void add_live_panel(Page& page, const LivePageOptions& o) {
  page.section("Live");
  page.html("<p class=\"status\" id=\"live-status\">Live numbers come from this server's " + escape_html(o.metrics_path) +
            ", read every " + format_value(o.poll_ms / 1000.0, 3) +
            " s while the page is open (with JavaScript on; the raw text is at <a href=\"" + escape_html(o.metrics_path) +
            "\">" + escape_html(o.metrics_path) + "</a>).</p>\n");
  page.html("<div class=\"tiles\">" + tile("live-requests", "predict requests since start") +
            tile("live-rate", "predict requests/s (last interval)") + tile("live-texts", "texts classified") +
            tile("live-errors", "requests refused or failed") + tile("live-p50", "p50 latency (ms)") +
            tile("live-p90", "p90 latency (ms)") + tile("live-p99", "p99 latency (ms)") +
            tile("live-drift-window", "texts in the drift window") + "</div>\n");
  page.add(live_frame("live-rate-chart", "Predict requests per second", "line",
                      "Counted from kiln_requests_total{route=\"" + o.predict_path + "\"} between two reads.",
                      "kiln_requests_total"));
  page.add(live_frame("live-latency-chart", "Latency of " + o.predict_path + " per interval (p50, p90, p99)", "line",
                      "Percentiles of the requests answered between two reads, interpolated within the buckets of "
                      "kiln_request_duration_seconds (as PromQL's histogram_quantile); gaps: no request in the interval.",
                      "kiln_request_duration_seconds"));
  page.add(live_frame("live-confidence", "Top-class probability of every prediction since start", "histogram",
                      "A shift to the left means the model is less sure of live inputs than of its test set.",
                      "kiln_prediction_confidence"));
  page.add(live_frame("live-labels", "Predictions per label since start", "bar", "The ten most predicted labels.",
                      "kiln_predictions_total", 280));
  Table drift;
  drift.id = "live-drift";
  drift.title = "Drift signals against the training profile";
  drift.header = {"signal", "value", "reading"};
  drift.numeric = {false, true, false};
  drift.rows = {{"waiting for kiln_drift_*", "—", "—"}};
  drift.data = {{"source", "metrics"}, {"metric", "kiln_drift_*"}, {"live", true}};
  drift.note = "PSI (population stability index) above 0.2 is commonly read as a large shift, 0.1 to 0.2 as a "
               "moderate one; the window holds the most recent texts the server saw.";
  page.add(table(drift));
}

void add_try_it(Page& page, const RunFiles& run, const LivePageOptions& o, bool has_text, bool has_image) {
  page.section("Try it");
  std::string h = "<form id=\"try-form\" hidden>";
  if (has_text) {
    h += "<label for=\"try-text\">Text</label><textarea id=\"try-text\" name=\"text\" "
         "placeholder=\"Type or paste a text to classify\"></textarea>";
  }
  if (has_image) {
    h += "<p><label for=\"try-image\">Image</label> <input type=\"file\" id=\"try-image\" accept=\"image/*\"> "
         "<img id=\"try-preview\" alt=\"the chosen image\" hidden style=\"max-height:96px;vertical-align:middle\"></p>";
  }
  h += "<div><button type=\"submit\" id=\"try-predict\">Predict</button>"
       "<button type=\"button\" id=\"try-explain\">Explain</button></div></form>\n"
       "<div id=\"try-answer\" class=\"answer\" aria-live=\"polite\"></div>\n";
  page.html(h);
  const std::string body = has_image ? std::string("{\"inputs\": [{") + (has_text ? "\"text\": \"...\", " : "") +
                                           "\"image\": \"<base64 of the file>\"}]}"
                                     : "{\"texts\": [\"...\"], \"top_k\": 3}";
  page.html("<noscript><p>The try-it box needs JavaScript; the same request from a shell:</p></noscript>\n");
  page.details("From the command line", "curl -s http://HOST:PORT" + o.predict_path +
                                            " -H 'Content-Type: application/json' -d '" + body + "'\n");
  const auto labels = run.manifest.is_object() ? run.manifest.value("labels", nlohmann::json::array()) : nlohmann::json::array();
  page.paragraph("Sends to " + o.predict_path + " on this server and shows the label and the top " +
                 std::to_string(std::min<std::size_t>(o.top_k, std::max<std::size_t>(1, labels.size()))) +
                 " probabilities; Explain asks " + o.explain_path +
                 (has_text ? std::string(" for each token's contribution") : std::string(" for each image patch's contribution, drawn over the image")) +
                 " (shown where the server has that route).");
}

}  // namespace

std::string server_page(const RunFiles& run, const std::string& model_name, const LivePageOptions& o) {
  o.validate();
  static const nlohmann::json kNone = nlohmann::json::object();
  const auto& m = run.manifest.is_object() ? run.manifest : kNone;
  const auto [split, metrics] = final_metrics(m);
  bool has_text = false, has_image = false;
  for (const auto& in : m.value("inputs", nlohmann::json::array())) {
    const std::string name = in.is_object() ? in.value("name", std::string()) : std::string();
    (name == "pixel_values" ? has_image : has_text) = true;
  }
  if (!has_image) has_text = true;
  const std::size_t classes = m.value("labels", nlohmann::json::array()).size();
  std::string subtitle = jstr(jobj(m, "model"), "family") + " model · " + std::to_string(classes) + " classes · " +
                         (has_image ? (has_text ? "text + image" : "image") : "text") + " input · created " +
                         jstr(m, "created_at");
  Page page("Kiln served model: " + model_name, subtitle);
  add_try_it(page, run, o, has_text, has_image);
  add_live_panel(page, o);

  page.section("Summary");
  auto kv = summary_rows(run);
  kv.insert(kv.begin(), {"served as", model_name});
  page.key_values(kv);
  const auto tail = run_tail_classes(run, 0.25);
  if (metrics) {
    page.section(split == "test" ? "Test set" : "Validation set");
    if (split != "test") page.paragraph("The artifact holds no test-set metrics: these are the validation metrics.");
    add_classification(page, *metrics, metric_labels(*metrics, m), tail, split, "");
  }
  if (run.manifest.is_object()) add_importance(page, run, artifact_dir_of(run));
  add_data_section(page, run, tail);
  add_config_section(page, run, o.generator);

  nlohmann::json live = {{"model", model_name},
                         {"poll_ms", o.poll_ms},
                         {"top_k", static_cast<int>(std::min<std::size_t>(o.top_k, std::max<std::size_t>(1, classes)))},
                         {"has_text", has_text},
                         {"has_image", has_image},
                         {"metrics_path", o.metrics_path},
                         {"predict_path", o.predict_path},
                         {"explain_path", o.explain_path}};
  page.data("live", live);
  page.script(kLiveScript);
  return page.render(o.generator);
}

std::string server_page(const std::string& artifact_dir, const std::string& model_name, const LivePageOptions& o) {
  std::string problem;
  try {
    return server_page(load_run(artifact_dir), model_name, o);
  } catch (const Error& e) {
    problem = e.what();
  }
  // The report part failed: keep what serves (the live panel and the try-it box) and say why.
  RunFiles bare;
  bare.dir = artifact_dir;
  std::string html = server_page(bare, model_name, o);
  const std::string note = "<p class=\"err\">The report part of this page is missing: " + escape_html(problem) + "</p>\n";
  const auto at = html.find("<main>\n");
  if (at != std::string::npos) html.insert(at + 7, note);
  return html;
}

}  // namespace kiln::report
