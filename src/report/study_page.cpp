#include "kiln/report/study_report.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <set>

#include "kiln/report/figures.h"
#include "kiln/report/page.h"
#include "kiln/tune/importance.h"
#include "kiln/tune/study_table.h"

namespace kiln::report {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

std::string param_text(const tune::Trial& t) {
  std::string s;
  const nlohmann::json params = t.external_params();  // items() does not keep a temporary alive
  for (const auto& [k, v] : params.items()) s += (s.empty() ? "" : ", ") + k + "=" + (v.is_string() ? v.get<std::string>() : v.dump());
  return s;
}

// The value a trial is drawn at: its final value, or (pruned) its last finite intermediate value.
double drawn_value(const tune::Trial& t, long long* last_step) {
  if (t.value && std::isfinite(*t.value)) {
    if (last_step) *last_step = t.intermediate.empty() ? -1 : t.intermediate.rbegin()->first;
    return *t.value;
  }
  for (auto it = t.intermediate.rbegin(); it != t.intermediate.rend(); ++it) {
    if (std::isfinite(it->second)) {
      if (last_step) *last_step = it->first;
      return it->second;
    }
  }
  return kNaN;
}

}  // namespace

std::string study_page(const tune::StudyInfo& study, const std::vector<tune::Trial>& trials, const tune::SearchSpace& stored,
                       const StudyPageOptions& o) {
  const bool maximize = study.direction == tune::Direction::kMaximize;
  const auto attr = study.user_attrs.find("metric");
  const std::string metric = attr != study.user_attrs.end() && !attr->second.empty() ? attr->second : "objective";
  const auto counts = tune::count_states(trials);
  Page page("Kiln tuning study: " + study.name,
            std::string(maximize ? "maximize " : "minimize ") + metric + " · " + std::to_string(trials.size()) + " trials" +
                (o.storage.empty() ? "" : " · " + o.storage));

  // The space: stored first, then parameters seen only in trials.
  tune::SearchSpace space = stored;
  std::set<std::string> known;
  for (const auto& [n, d] : space) known.insert(n);
  for (const auto& t : trials)
    for (const auto& [n, d] : t.distributions)
      if (known.insert(n).second) space.emplace_back(n, d);

  std::optional<tune::Trial> best;
  for (const auto& t : trials) {
    if (t.state != tune::TrialState::kComplete || !t.value || !std::isfinite(*t.value)) continue;
    if (!best || (maximize ? *t.value > *best->value : *t.value < *best->value)) best = t;
  }

  page.section("Summary");
  page.key_values({{"direction", maximize ? "maximize" : "minimize"},
                   {"metric", metric},
                   {"trials", std::to_string(trials.size()) + " (" + std::to_string(counts.complete) + " complete, " +
                                  std::to_string(counts.pruned) + " pruned, " + std::to_string(counts.failed) + " failed, " +
                                  std::to_string(counts.running) + " running)"},
                   {"best", tune::best_line(best)},
                   {"storage", o.storage}});

  page.section("Optimization history");
  {
    XYChart c;
    c.id = "history";
    c.title = "Objective per trial, with the running best";
    c.x = Axis("trial number");
    c.x.integer = true;
    c.y = Axis(metric, "", false, std::nullopt, std::nullopt);
    c.max_points = std::max<std::size_t>(1000, trials.size() + 2);
    Series done("complete"), pruned("pruned (last reported value)"), run_best("running best");
    done.mark = pruned.mark = Mark::kPoints;
    pruned.color = 1;
    run_best.color = 2;
    double cur = kNaN;
    for (const auto& t : trials) {
      long long step = -1;
      const double v = drawn_value(t, &step);
      if (t.state == tune::TrialState::kComplete && std::isfinite(v)) {
        done.x.push_back(static_cast<double>(t.number));
        done.y.push_back(v);
        done.point_titles.push_back("trial " + std::to_string(t.number) + ": " + format_value(v, 6) + " (" + param_text(t) + ")");
        if (!std::isfinite(cur) || (maximize ? v > cur : v < cur)) cur = v;
      } else if (t.state == tune::TrialState::kPruned && std::isfinite(v)) {
        pruned.x.push_back(static_cast<double>(t.number));
        pruned.y.push_back(v);
        pruned.point_titles.push_back("trial " + std::to_string(t.number) + " pruned at step " + std::to_string(step) +
                                      ": " + format_value(v, 6) + " (" + param_text(t) + ")");
      }
      if (std::isfinite(cur)) {
        run_best.x.push_back(static_cast<double>(t.number));
        run_best.y.push_back(cur);
      }
    }
    c.series = {done, pruned, run_best};
    c.note = "Pruned trials are drawn at the last value they reported (hover for the step); failed and running "
             "trials are not drawn.";
    page.add(xy_chart(c));
  }

  // Intermediate values per trial: learning curves, pruned ones ending in a mark.
  {
    XYChart c;
    c.id = "intermediate";
    c.title = "Intermediate values per trial (pruned trials end in a mark at their last step)";
    c.x = Axis("step", "epoch");
    c.x.integer = true;
    c.y = Axis(metric, "", false, std::nullopt, std::nullopt);
    Series ends("pruned: last step");
    ends.mark = Mark::kPoints;
    ends.color = 1;
    bool any = false;
    for (const auto& t : trials) {
      if (t.intermediate.empty()) continue;
      Series s{"trial " + std::to_string(t.number)};
      s.legend = false;
      s.color = t.state == tune::TrialState::kPruned ? 1 : 0;
      s.dashed = t.state == tune::TrialState::kPruned;
      for (const auto& [step, v] : t.intermediate) {
        s.x.push_back(static_cast<double>(step));
        s.y.push_back(v);
      }
      if (t.state == tune::TrialState::kPruned) {
        long long step = -1;
        const double v = drawn_value(t, &step);
        if (std::isfinite(v)) {
          ends.x.push_back(static_cast<double>(step));
          ends.y.push_back(v);
          ends.point_titles.push_back("trial " + std::to_string(t.number) + " pruned at step " + std::to_string(step));
        }
      }
      c.series.push_back(std::move(s));
      any = true;
    }
    if (any) {
      Series key_done("complete / other"), key_pruned("pruned");
      key_done.color = 0;
      key_pruned.color = 1;
      key_pruned.dashed = true;
      c.series.push_back(key_done);
      c.series.push_back(key_pruned);
      c.series.push_back(ends);
      page.add(xy_chart(c));
    } else {
      page.paragraph("No trial reported intermediate values.");
    }
  }

  page.section("Parameters");
  const auto importances = tune::param_importances(trials, space);
  if (!importances.empty()) {
    BarChart b;
    b.id = "importance";
    b.title = "Parameter importance";
    b.value = Axis("share of the objective's variance explained", "", false, 0.0, 1.0);
    for (const auto& i : importances) b.bars.push_back(Bar(i.name, i.importance));
    b.note = "Variance of each parameter's marginal means over the complete trials (one parameter at a time; "
             "interactions are credited to no one). The shares sum to 1.";
    page.add(bar_chart(b));
  } else {
    page.paragraph("Parameter importances need at least 3 complete trials.");
  }

  std::vector<const tune::Trial*> complete;
  for (const auto& t : trials)
    if (t.state == tune::TrialState::kComplete && t.value && std::isfinite(*t.value)) complete.push_back(&t);
  if (!complete.empty() && !space.empty()) {
    ParallelCoordinates p;
    p.id = "parallel";
    p.title = "Parallel coordinates of the complete trials";
    p.color_label = metric;
    for (const auto& [name, d] : space) {
      ParallelAxis a;
      a.name = name;
      a.log = d.log;
      if (d.kind == tune::Distribution::Kind::kCategorical) {
        for (const auto& c : d.choices) a.categories.push_back(c.is_string() ? c.get<std::string>() : c.dump());
      }
      for (const auto* t : complete) {
        const auto it = t->params.find(name);
        a.values.push_back(it == t->params.end() ? kNaN : it->second);
      }
      p.axes.push_back(std::move(a));
    }
    ParallelAxis obj;
    obj.name = metric;
    for (const auto* t : complete) {
      obj.values.push_back(*t->value);
      p.color_values.push_back(maximize ? *t->value : -*t->value);
    }
    p.axes.push_back(std::move(obj));
    p.note = std::string("One line per complete trial; darker lines are better trials") +
             (maximize ? "." : " (lower " + metric + ").");
    page.add(parallel_coordinates(p));

    int i = 0;
    for (const auto& [name, d] : space) {
      XYChart s;
      s.id = "slice-" + std::to_string(i++);
      s.title = "Slice: " + metric + " against " + name;
      const bool cat = d.kind == tune::Distribution::Kind::kCategorical;
      s.x = Axis(name, cat ? "choice index" : "", d.log && !cat, std::nullopt, std::nullopt);
      s.y = Axis(metric, "", false, std::nullopt, std::nullopt);
      s.height = 280;
      Series pts("complete trial");
      pts.mark = Mark::kPoints;
      for (const auto* t : complete) {
        const auto it = t->params.find(name);
        if (it == t->params.end()) continue;
        pts.x.push_back(it->second);
        pts.y.push_back(*t->value);
        pts.point_titles.push_back("trial " + std::to_string(t->number) + ": " + name + "=" + d.to_external(it->second).dump() +
                                   ", " + format_value(*t->value, 6));
      }
      s.series = {pts};
      if (cat) {
        std::string m;
        for (std::size_t c = 0; c < d.choices.size(); ++c)
          m += (c ? ", " : "") + std::to_string(c) + " = " + (d.choices[c].is_string() ? d.choices[c].get<std::string>() : d.choices[c].dump());
        s.note = "Choices: " + m + ".";
      }
      page.add(xy_chart(s));
    }
  }

  page.section("Trials");
  Table t;
  t.id = "trials";
  t.title = "Every trial";
  t.header = {"trial", "state", metric, "last step", "seconds", "parameters"};
  t.numeric = {true, false, true, true, true, false};
  nlohmann::json td = nlohmann::json::array();
  for (const auto& tr : trials) {
    long long step = -1;
    const double v = drawn_value(tr, &step);
    const double secs = tr.datetime_complete ? *tr.datetime_complete - tr.datetime_start : kNaN;
    std::string params = param_text(tr);
    if (tr.state == tune::TrialState::kFailed) {
      const auto r = tr.user_attrs.find("fail_reason");
      if (r != tr.user_attrs.end()) params += " — " + tune::compact_reason(r->second);
    }
    t.rows.push_back({std::to_string(tr.number), tune::to_string(tr.state), format_value(v, 6),
                      step >= 0 ? std::to_string(step) : "", format_value(secs, 3), params});
    t.highlight_rows.push_back(best && tr.number == best->number);
    td.push_back({{"number", tr.number},
                  {"state", tune::to_string(tr.state)},
                  {"value", tr.value ? nlohmann::json(*tr.value) : nlohmann::json()},
                  {"last_step", step},
                  {"params", tr.external_params()}});
  }
  t.data = td;
  t.note = "Highlighted: the best trial.";
  page.add(table(t));
  return page.render(o.generator);
}

}  // namespace kiln::report
