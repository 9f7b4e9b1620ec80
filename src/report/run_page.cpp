// The training-run page.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>
#include <map>
#include <set>

#include "kiln/report/figures.h"
#include "kiln/report/page.h"
#include "kiln/report/run_report.h"
#include "run_page_parts.h"

namespace kiln::report {

using namespace detail;

namespace detail {

void add_data_section(Page& page, const RunFiles& run, const std::set<std::string>& tail) {
  page.section("Data");
  const auto& dr = run.data_report;
  const auto& profile = jobj(run.manifest, "data_profile");
  if (dr.is_object()) {
    std::vector<std::pair<std::string, std::string>> kv = {
        {"input", jstr(dr, "input")},
        {"rows read", format_value(jnum(dr, "rows_read"), 12)},
        {"rows kept", format_value(jnum(dr, "rows_kept"), 12)},
        {"imbalance (largest / smallest class)", format_value(jnum(dr, "imbalance_ratio"), 4)},
        {"data report", run.data_report_path}};
    page.key_values(kv);
    // Drop reasons.
    BarChart drops;
    drops.id = "drop-reasons";
    drops.title = "Rows dropped by cleaning, by reason";
    drops.value = Axis("rows dropped", "rows", false, std::nullopt, std::nullopt);
    for (const auto& [reason, n] : jobj(dr, "dropped").items()) drops.bars.push_back(Bar(reason, n.is_number() ? n.get<double>() : 0));
    drops.note = "Every reason that applies to this load is listed, with 0 when it dropped nothing.";
    page.add(bar_chart(drops));
    // Class distribution before / after cleaning, per split.
    const auto& before = jobj(dr, "class_counts_before");
    const auto& after = jobj(dr, "class_counts_after");
    const auto& splits = jobj(dr, "splits");
    std::vector<std::string> split_names;
    for (const char* s : {"train", "val", "test"})
      if (jobj(splits, s).contains("class_counts")) split_names.push_back(s);
    Table t;
    t.id = "class-counts";
    t.title = "Class counts before and after cleaning, and per split";
    t.header = {"class", "before cleaning", "after cleaning"};
    for (const auto& s : split_names) t.header.push_back(s);
    t.numeric.assign(t.header.size(), true);
    t.numeric[0] = false;
    std::set<std::string> classes;
    for (const auto& [k, v] : before.items()) classes.insert(k);
    for (const auto& [k, v] : after.items()) classes.insert(k);
    std::map<std::string, double> totals;
    nlohmann::json tdata = nlohmann::json::object();
    for (const auto& c : classes) {
      std::vector<std::string> row = {c, format_value(jnum(before, c.c_str()), 12), format_value(jnum(after, c.c_str()), 12)};
      nlohmann::json cd = {{"before", before.value(c, nlohmann::json())}, {"after", after.value(c, nlohmann::json())}};
      for (const auto& s : split_names) {
        const double n = jnum(jobj(jobj(splits, s.c_str()), "class_counts"), c.c_str());
        row.push_back(format_value(std::isfinite(n) ? n : 0, 12));
        totals[s] += std::isfinite(n) ? n : 0;
        cd[s] = std::isfinite(n) ? n : 0;
      }
      t.rows.push_back(std::move(row));
      t.highlight_rows.push_back(tail.count(c) > 0);
      tdata[c] = std::move(cd);
    }
    std::vector<std::string> total_row = {"total", format_value(jnum(dr, "rows_read"), 12), format_value(jnum(dr, "rows_kept"), 12)};
    for (const auto& s : split_names) total_row.push_back(format_value(totals[s], 12));
    t.rows.push_back(std::move(total_row));
    t.data = {{"classes", tdata}, {"split_rows", totals}};
    if (!tail.empty()) t.note = "Highlighted rows: tail classes.";
    page.add(table(t));
    BarChart dist;
    dist.id = "class-distribution";
    dist.title = "Class distribution after cleaning";
    dist.value = Axis("examples", "rows", false, std::nullopt, std::nullopt);
    for (const auto& c : classes) {
      dist.bars.push_back(Bar{c, jnum(after, c.c_str()), tail.count(c) > 0,
                              "before cleaning " + format_value(jnum(before, c.c_str()), 12)});
    }
    if (!tail.empty()) dist.highlight_legend = "tail classes";
    page.add(bar_chart(dist));
  } else if (profile.contains("label_distribution")) {
    page.paragraph("No data report in the run directory (kiln run writes data_report.json; kiln train finds "
                   "kiln prepare's report.json next to its --train file): showing the training set's profile "
                   "from the artifact.");
    BarChart dist;
    dist.id = "class-distribution";
    dist.title = "Class distribution of the training set";
    dist.value = Axis("share of training examples", "", false, std::nullopt, std::nullopt);
    for (const auto& [k, v] : profile["label_distribution"].items())
      dist.bars.push_back(Bar(k, v.is_number() ? v.get<double>() : 0, tail.count(k) > 0));
    if (!tail.empty()) dist.highlight_legend = "tail classes";
    page.add(bar_chart(dist));
  } else {
    page.paragraph("No data report and no data profile in this run.");
  }
  const auto& tl = jobj(profile, "text_length");
  if (tl.contains("edges") && tl.contains("shares")) {
    Histogram h;
    h.id = "text-length";
    h.title = "Text length of the training set";
    h.x = Axis("text length", "code points", false, std::nullopt, std::nullopt);
    h.y = Axis("share of training examples", "", false, std::nullopt, std::nullopt);
    for (const auto& e : tl["edges"]) h.edges.push_back(e.is_number() ? e.get<double>() : 0);
    for (const auto& s : tl["shares"]) h.values.push_back(s.is_number() ? s.get<double>() : 0);
    h.open_last = h.values.size() == h.edges.size();
    h.note = "Mean " + format_value(jnum(tl, "mean"), 4) + " code points over " + format_value(jnum(profile, "n"), 12) +
             " training examples (the artifact's data profile, which the server compares traffic against).";
    if (h.values.size() == h.edges.size() || h.values.size() + 1 == h.edges.size()) page.add(histogram(h));
  }
}

std::set<std::string> run_tail_classes(const RunFiles& run, double fraction) {
  std::map<std::string, double> train_counts;
  const auto& tr_counts = jobj(jobj(jobj(run.data_report, "splits"), "train"), "class_counts");
  for (const auto& [k, v] : tr_counts.items()) train_counts[k] = v.is_number() ? v.get<double>() : 0;
  if (train_counts.empty()) {
    for (const auto& [k, v] : jobj(jobj(run.manifest, "data_profile"), "label_distribution").items())
      train_counts[k] = v.is_number() ? v.get<double>() : 0;
  }
  return tail_classes(train_counts, fraction);
}

std::vector<std::pair<std::string, std::string>> summary_rows(const RunFiles& run) {
  const auto& m = run.manifest;
  const auto& training = jobj(m, "training");
  const auto [split, metrics] = final_metrics(m);
  std::vector<std::pair<std::string, std::string>> kv;
  if (m.is_object()) {
    kv.push_back({"task", jstr(m, "task")});
    kv.push_back({"model family", jstr(jobj(m, "model"), "family")});
    kv.push_back({"features", jstr(jobj(training, "featurizer"), "type")});
    kv.push_back({"training rows", format_value(jnum(training, "train_rows"), 12)});
    kv.push_back({"epochs run", format_value(jnum(training, "epochs_run"), 6)});
    kv.push_back({"best epoch", format_value(jnum(training, "best_epoch"), 6)});
    kv.push_back({"training time", format_value(jnum(training, "train_seconds"), 4) + " s (+ " +
                                         format_value(jnum(training, "featurize_seconds"), 3) + " s featurizing)"});
    if (metrics) {
      kv.push_back({split + " accuracy", format_value(jnum(*metrics, "accuracy"), 4)});
      kv.push_back({split + " macro-F1", format_value(jnum(*metrics, "macro_f1"), 4)});
      kv.push_back({split + " ECE", format_value(jnum(*metrics, "ece"), 4)});
    }
    const auto& cal = jobj(m, "calibration");
    if (jstr(cal, "method") == "temperature") {
      kv.push_back({"calibration", "temperature " + format_value(jnum(cal, "temperature"), 4) + " (validation ECE " +
                                       format_value(jnum(cal, "ece_before"), 4) + " → " + format_value(jnum(cal, "ece_after"), 4) + ")"});
    } else if (cal.contains("reason")) {
      kv.push_back({"calibration", "none (" + jstr(cal, "reason") + ")"});
    }
    kv.push_back({"artifact", run.manifest_path});
  } else {
    kv.push_back({"artifact", "none yet (no model/kiln.json): the run has not finished, or failed"});
  }
  kv.push_back({"training log", run.metrics_path.empty() ? "none" : run.metrics_path});
  return kv;
}

void add_config_section(Page& page, const RunFiles& run, const std::string& generator) {
  const auto& m = run.manifest;
  if (!m.is_object()) return;
  const auto& training = jobj(m, "training");
  page.section("Config and versions");
  page.key_values({{"kiln version", jstr(m, "kiln_version")},
                   {"artifact format", jstr(m, "format_version")},
                   {"created at", jstr(m, "created_at")},
                   {"report generated by", generator}});
  page.details("Training config (kiln.json \"training\")", training.dump(2));
  page.details("Model and preprocessors", nlohmann::json{{"model", m.value("model", nlohmann::json())},
                                                         {"preprocessors", m.value("preprocessors", nlohmann::json())},
                                                         {"inputs", m.value("inputs", nlohmann::json())}}.dump(2));
  page.data("config", training);
}

std::string artifact_dir_of(const RunFiles& run) {
  if (run.manifest_path.empty()) return run.dir;
  const std::string parent = std::filesystem::path(run.manifest_path).parent_path().string();
  return parent.empty() ? "." : parent;
}

}  // namespace detail

namespace {

void add_training_section(Page& page, const RunFiles& run, const RunPageOptions& o) {
  page.section("Training");
  const auto& training = jobj(run.manifest, "training");
  const double best = jnum(training, "best_epoch");
  if (run.epochs.empty() && run.steps.empty()) {
    page.paragraph(run.metrics_path.empty() ? "No metrics.jsonl in this run directory: no training curves."
                                            : "metrics.jsonl holds no records yet.");
    return;
  }
  // The last step of each epoch: where epoch-level marks sit on step axes.
  std::map<int, long long> last_step;
  for (const auto& s : run.steps) last_step[s.epoch] = std::max(last_step[s.epoch], s.step);
  std::vector<Marker> best_marker;
  if (std::isfinite(best) && best > 0) best_marker.push_back(Marker(best, "best epoch " + format_value(best, 6)));
  if (!run.steps.empty()) {
    XYChart c;
    c.id = "loss-per-step";
    c.title = "Training loss per step, with the learning-rate schedule";
    c.x = Axis("optimizer step");
    c.x.integer = true;
    c.y = Axis("training loss", "per example", false, std::nullopt, std::nullopt);
    c.y2 = Axis("learning rate", "", false, 0.0, std::nullopt);
    c.max_points = o.max_points;
    Series loss("loss"), lr("learning rate");
    lr.right_axis = true;
    lr.dashed = true;
    lr.color = 4;
    for (const auto& s : run.steps) {
      loss.x.push_back(static_cast<double>(s.step));
      loss.y.push_back(s.loss);
      lr.x.push_back(static_cast<double>(s.step));
      lr.y.push_back(s.lr);
    }
    c.series = {loss, lr};
    if (std::isfinite(best) && last_step.count(static_cast<int>(best))) {
      c.markers.push_back(Marker(static_cast<double>(last_step[static_cast<int>(best)]), "end of best epoch " + format_value(best, 6)));
    }
    c.note = std::to_string(run.steps.size()) + " steps" +
             (run.steps.size() > o.max_points ? ", drawn as the minimum and maximum of each of " +
                                                    std::to_string((o.max_points - 2) / 2) + " buckets (nothing dropped from the extremes)"
                                              : "") + ".";
    page.add(xy_chart(c));
  }
  if (!run.epochs.empty()) {
    XYChart c;
    c.id = "loss-per-epoch";
    c.title = "Loss per epoch, with the learning rate at each epoch's end";
    c.x = Axis("epoch");
    c.x.integer = true;
    c.y = Axis("loss", "per example", false, std::nullopt, std::nullopt);
    c.y2 = Axis("learning rate", "", false, 0.0, std::nullopt);
    Series tr("training loss"), vl("validation loss"), lr("learning rate");
    tr.mark = vl.mark = Mark::kLineAndPoints;
    vl.color = 1;
    lr.right_axis = true;
    lr.dashed = true;
    lr.color = 4;
    bool any_val = false;
    for (const auto& e : run.epochs) {
      tr.x.push_back(e.epoch);
      tr.y.push_back(e.train_loss);
      vl.x.push_back(e.epoch);
      vl.y.push_back(e.val_loss);
      lr.x.push_back(e.epoch);
      lr.y.push_back(e.lr);
      any_val = any_val || std::isfinite(e.val_loss);
    }
    c.series = {tr};
    if (any_val) c.series.push_back(vl);
    c.series.push_back(lr);
    c.markers = best_marker;
    page.add(xy_chart(c));
    if (any_val) {
      XYChart v;
      v.id = "validation-metrics";
      v.title = "Validation metrics per epoch, with the learning rate";
      v.x = c.x;
      v.y = Axis("validation metric", "", false, std::nullopt, std::nullopt);
      v.y2 = c.y2;
      Series f1("macro-F1"), acc("accuracy");
      f1.mark = acc.mark = Mark::kLineAndPoints;
      acc.color = 2;
      for (const auto& e : run.epochs) {
        f1.x.push_back(e.epoch);
        f1.y.push_back(e.val_macro_f1);
        acc.x.push_back(e.epoch);
        acc.y.push_back(e.val_accuracy);
      }
      v.series = {f1, acc, lr};
      v.markers = best_marker;
      v.note = "The best epoch (highest validation macro-F1) is the one whose weights the artifact holds.";
      page.add(xy_chart(v));
    } else {
      page.paragraph("No validation set: no validation curves, and the last epoch's weights were kept.");
    }
  }
  // Gradient norms: the trainer logs the global norm (before clipping) per step and its epoch mean.
  XYChart g;
  g.id = "gradient-norm";
  g.title = "Gradient norm (all parameters, before clipping)";
  g.x = Axis("optimizer step");
  g.x.integer = true;
  g.y = Axis("gradient L2 norm", "", true, std::nullopt, std::nullopt);
  g.max_points = o.max_points;
  Series gs("per step");
  for (const auto& s : run.steps) {
    gs.x.push_back(static_cast<double>(s.step));
    gs.y.push_back(s.grad_norm);
  }
  Series ge("epoch mean");
  ge.mark = Mark::kLineAndPoints;
  ge.color = 3;
  for (const auto& e : run.epochs) {
    if (!last_step.count(e.epoch)) continue;
    ge.x.push_back(static_cast<double>(last_step[e.epoch]));
    ge.y.push_back(e.grad_norm);
  }
  bool any = false;
  for (double v : gs.y) any = any || (std::isfinite(v) && v > 0);
  if (any) {
    g.series = {gs};
    if (!ge.x.empty()) g.series.push_back(ge);
    long long skipped = 0;
    for (const auto& e : run.epochs) skipped += e.skipped_steps;
    g.note = "Log scale. A norm falling towards 0 flags vanishing gradients, spikes flag instability. "
             "Non-finite steps skipped: " + std::to_string(skipped) + ".";
    page.add(xy_chart(g));
  }
  // Per-parameter gradient norms, logged every 50th step and at each epoch's end.
  std::map<std::string, Series> layers;
  const StepRecord* last_logged = nullptr;
  for (const auto& s : run.steps) {
    if (s.layer_grad_norms.empty()) continue;
    last_logged = &s;
    for (const auto& [name, v] : s.layer_grad_norms) {
      auto& se = layers.try_emplace(name, Series(name)).first->second;
      se.x.push_back(static_cast<double>(s.step));
      se.y.push_back(v);
    }
  }
  if (!layers.empty()) {
    std::set<std::string> flagged;
    for (const auto& w : run.warnings)
      for (const auto& [name, se] : layers)
        if (w.message.find("'" + name + "'") != std::string::npos) flagged.insert(name);
    XYChart l;
    l.id = "layer-gradient-norms";
    l.title = "Gradient norm per parameter tensor";
    l.x = Axis("optimizer step");
    l.x.integer = true;
    l.y = Axis("gradient L2 norm", "", true);
    l.max_points = o.max_points;
    const bool legend = layers.size() <= 10;
    int i = 0;
    for (auto& [name, se] : layers) {
      se.mark = Mark::kLineAndPoints;
      se.legend = legend;
      se.color = i++ % 8;
      l.series.push_back(se);
    }
    l.note = "Logged every 50th step and at the end of each epoch (" + std::to_string(layers.size()) + " tensors" +
             (legend ? "" : "; hover a point for its tensor, or see the bars below") + ").";
    page.add(xy_chart(l));
    BarChart b;
    b.id = "layer-gradient-norms-last";
    b.title = "Gradient norm per parameter tensor at step " + std::to_string(last_logged->step);
    b.value = Axis("gradient L2 norm");
    for (const auto& [name, v] : last_logged->layer_grad_norms) b.bars.push_back(Bar(name, v, flagged.count(name) > 0));
    if (!flagged.empty()) b.highlight_legend = "named in a vanishing-gradient warning";
    page.add(bar_chart(b));
  }
  if (!run.warnings.empty()) {
    Table t;
    t.id = "training-warnings";
    t.title = "Warnings the trainer logged";
    t.header = {"step", "warning"};
    t.numeric = {true, false};
    nlohmann::json d = nlohmann::json::array();
    for (const auto& w : run.warnings) {
      t.rows.push_back({std::to_string(w.step), w.message});
      d.push_back({{"step", w.step}, {"message", w.message}});
    }
    t.data = d;
    page.add(table(t));
  }
}

void add_selection_section(Page& page, const RunFiles& run) {
  const auto& sel = jobj(jobj(run.manifest, "training"), "selection");
  if (!sel.contains("candidates")) return;
  page.section("Model selection");
  page.key_values({{"metric", jstr(sel, "metric")},
                   {"validation", jstr(sel, "validation")},
                   {"chosen", jstr(sel, "chosen")},
                   {"budget (passes over the training set)", format_value(jnum(sel, "budget_passes"), 4)},
                   {"work done (passes)", format_value(jnum(sel, "work_passes"), 4)}});
  Table t;
  t.id = "selection";
  t.title = "Candidates";
  t.header = {"candidate", "status", "epochs", "best epoch", "val macro-F1", "work (passes)", "seconds"};
  t.numeric = {false, false, true, true, true, true, true};
  for (const auto& c : sel["candidates"]) {
    t.rows.push_back({jstr(c, "name"), jstr(c, "status"), format_value(jnum(c, "epochs"), 6),
                      format_value(jnum(c, "best_epoch"), 6), format_value(jnum(c, "val_macro_f1"), 4),
                      format_value(jnum(c, "work_passes"), 3), format_value(jnum(c, "seconds"), 3)});
    t.highlight_rows.push_back(jstr(c, "name") == jstr(sel, "chosen"));
  }
  nlohmann::json d = sel["candidates"];
  for (auto& c : d) c.erase("config");
  t.data = d;
  t.note = "Highlighted: the chosen candidate, trained into this artifact.";
  page.add(table(t));
  if (!run.selected_config.empty()) page.details("The chosen recipe (selected_config.yaml)", run.selected_config);
}

}  // namespace

std::string run_page(const RunFiles& run, const RunPageOptions& o) {
  const auto& m = run.manifest;
  const auto [split, metrics] = final_metrics(m);
  std::string subtitle = run.dir;
  if (m.is_object()) {
    subtitle += " · " + jstr(jobj(m, "model"), "family") + " model · " + std::to_string(m.value("labels", nlohmann::json::array()).size()) +
                " classes · created " + jstr(m, "created_at");
  }
  Page page("Kiln training run: " + run.dir, subtitle);
  const auto tail = run_tail_classes(run, o.tail_fraction);

  page.section("Summary");
  page.key_values(summary_rows(run));

  add_data_section(page, run, tail);
  add_training_section(page, run, o);
  if (metrics) {
    page.section(split == "test" ? "Test set" : "Validation set");
    if (split != "test") page.paragraph("No test set was given: these are the validation metrics.");
    add_classification(page, *metrics, metric_labels(*metrics, m), tail, split, "");
  }
  if (m.is_object()) add_importance(page, run, artifact_dir_of(run));
  add_selection_section(page, run);
  add_config_section(page, run, o.generator);
  return page.render(o.generator);
}

}  // namespace kiln::report
