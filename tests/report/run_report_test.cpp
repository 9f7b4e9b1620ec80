#include "kiln/report/run_report.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>
#include <unistd.h>

#include "kiln/core/error.h"
#include "kiln/report/study_report.h"

namespace fs = std::filesystem;

namespace kiln::report {
namespace {

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

std::string message_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

class TempDir {
 public:
  TempDir() {
    path_ = fs::temp_directory_path() / ("kiln_report_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter_++));
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() { fs::remove_all(path_); }
  [[nodiscard]] const fs::path& path() const { return path_; }

 private:
  fs::path path_;
  static inline int counter_ = 0;
};

void write(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  std::ofstream(p) << text;
}

nlohmann::json data_block(const std::string& html) {
  const std::string open = "<script type=\"application/json\" id=\"kiln-report-data\">";
  const auto a = html.find(open);
  const auto b = html.find("</script>", a);
  return nlohmann::json::parse(html.substr(a + open.size(), b - a - open.size()));
}

const char* kLog =
    "{\"epoch\":1,\"grad_norm\":0.5,\"loss\":2.0,\"lr\":0.1,\"step\":1,\"type\":\"step\"}\n"
    "{\"epoch\":1,\"grad_norm\":0.4,\"loss\":1.5,\"lr\":0.1,\"step\":2,\"type\":\"step\"}\n"
    "{\"epoch\":1,\"grad_norm\":0.45,\"lr\":0.1,\"seconds\":0.1,\"skipped_steps\":0,\"train_loss\":1.75,\"type\":\"epoch\","
    "\"val_accuracy\":0.5,\"val_loss\":1.6,\"val_macro_f1\":0.4}\n"
    "\n"
    "{\"epoch\":2,\"grad_norm\":0.3,\"loss\":1.0,\"lr\":0.05,\"step\":3,\"type\":\"step\"}\n"
    "{\"epoch\":2,\"grad_norm\":0.3,\"lr\":0.05,\"seconds\":0.1,\"skipped_steps\":0,\"train_loss\":1.0,\"type\":\"epoch\","
    "\"val_accuracy\":0.75,\"val_loss\":1.2,\"val_macro_f1\":null}\n";

TEST(MetricsJsonl, ReadsStepsAndEpochsWithNulls) {
  RunFiles run;
  parse_metrics_jsonl(kLog, "m.jsonl", run);
  ASSERT_EQ(run.steps.size(), 3u);
  ASSERT_EQ(run.epochs.size(), 2u);
  EXPECT_EQ(run.steps[2].step, 3);
  EXPECT_EQ(run.steps[1].loss, 1.5);
  EXPECT_EQ(run.epochs[0].val_macro_f1, 0.4);
  EXPECT_TRUE(std::isnan(run.epochs[1].val_macro_f1));
}

TEST(MetricsJsonl, LayerNormsAndWarnings) {
  RunFiles run;
  parse_metrics_jsonl(std::string(kLog) +
                          "{\"epoch\":2,\"grad_norm\":0.2,\"layer_grad_norms\":{\"fc.weight\":0.001,\"fc.bias\":0.2},"
                          "\"loss\":0.9,\"lr\":0.05,\"step\":50,\"type\":\"step\"}\n"
                          "{\"type\":\"warning\",\"step\":50,\"message\":\"vanishing gradient: 'fc.weight' has had ...\"}\n",
                      "m.jsonl", run);
  ASSERT_EQ(run.steps.back().layer_grad_norms.size(), 2u);
  EXPECT_EQ(run.steps.back().layer_grad_norms.at("fc.weight"), 0.001);
  ASSERT_EQ(run.warnings.size(), 1u);
  EXPECT_EQ(run.warnings[0].step, 50);
  const std::string html = run_page(run);
  const auto data = data_block(html);
  EXPECT_EQ(data["layer-gradient-norms"]["data"]["series"].size(), 2u);
  const auto& last = data["layer-gradient-norms-last"]["data"];
  EXPECT_EQ(last["labels"], (nlohmann::json{"fc.bias", "fc.weight"}));
  EXPECT_EQ(last["highlight"], (nlohmann::json{false, true})) << "the parameter a warning names is highlighted";
  EXPECT_EQ(data["training-warnings"]["data"][0]["step"], 50);
}

TEST(MetricsJsonl, ResumedRunReplacesReloggedRecords) {
  RunFiles run;
  parse_metrics_jsonl(std::string(kLog) +
                          "{\"epoch\":2,\"grad_norm\":0.2,\"loss\":0.9,\"lr\":0.05,\"step\":3,\"type\":\"step\"}\n"
                          "{\"epoch\":2,\"lr\":0.05,\"train_loss\":0.9,\"type\":\"epoch\"}\n",
                      "m.jsonl", run);
  ASSERT_EQ(run.steps.size(), 3u);
  EXPECT_EQ(run.steps[2].loss, 0.9);
  ASSERT_EQ(run.epochs.size(), 2u);
  EXPECT_EQ(run.epochs[1].train_loss, 0.9);
}

TEST(MetricsJsonl, NamesTheDamagedLine) {
  RunFiles run;
  EXPECT_TRUE(contains(message_of([&] { parse_metrics_jsonl("{\"type\":\"step\",\"epoch\":1,\"step\":1,\"loss\":2}\n\n{\"type\":\"ep", "r/metrics.jsonl", run); }),
                       "r/metrics.jsonl:3: not a JSON record ("));
  EXPECT_EQ(message_of([&] { parse_metrics_jsonl("[1, 2]\n", "r/metrics.jsonl", run); }),
            "r/metrics.jsonl:1: expected a JSON object with a \"type\" (\"step\" or \"epoch\"), got [1,2]; delete the "
            "line or rerun the training");
  EXPECT_EQ(message_of([&] { parse_metrics_jsonl("{\"type\":\"step\",\"epoch\":1,\"step\":2}\n", "m", run); }),
            "m:1: record has no \"loss\"; the line was cut short or edited: rerun the training");
  EXPECT_EQ(message_of([&] { parse_metrics_jsonl("{\"type\":\"epoch\",\"epoch\":1,\"train_loss\":\"x\"}\n", "m", run); }),
            "m:1: \"train_loss\" is \"x\", expected a number; rerun the training");
}

TEST(LoadRun, BadDirectories) {
  TempDir t;
  const std::string missing = (t.path() / "nope").string();
  EXPECT_EQ(message_of([&] { (void)load_run(missing); }),
            missing + ": no such directory; give the --out directory of `kiln train` or `kiln run`");
  write(t.path() / "file", "x");
  EXPECT_TRUE(contains(message_of([&] { (void)load_run((t.path() / "file").string()); }), "file: not a directory"));
  fs::create_directories(t.path() / "empty");
  EXPECT_TRUE(contains(message_of([&] { (void)load_run((t.path() / "empty").string()); }),
                       "empty: not a run directory: it holds neither "));
  write(t.path() / "bad" / "model" / "kiln.json", "{\"format_version\": ");
  EXPECT_TRUE(contains(message_of([&] { (void)load_run((t.path() / "bad").string()); }),
                       "model/kiln.json: the artifact manifest is not valid JSON ("));
}

TEST(LoadRun, ATrainingLogAloneDrawsCurvesAndSaysTheArtifactIsMissing) {
  TempDir t;
  write(t.path() / "metrics.jsonl", kLog);
  const RunFiles run = load_run(t.path().string());
  EXPECT_TRUE(run.manifest.is_null());
  const std::string html = run_page(run);
  EXPECT_TRUE(contains(html, "none yet (no model/kiln.json)"));
  const auto data = data_block(html);
  EXPECT_EQ(data["loss-per-epoch"]["data"]["series"][0]["y"], (nlohmann::json{1.75, 1.0}));
  EXPECT_EQ(data["loss-per-step"]["data"]["series"][0]["y"], (nlohmann::json{2.0, 1.5, 1.0}));
  EXPECT_EQ(data["validation-metrics"]["data"]["series"][0]["y"], (nlohmann::json{0.4, nullptr}));
}

TEST(LoadRun, AnArtifactDirectoryFindsItsRunFilesOneLevelUp) {
  TempDir t;
  write(t.path() / "metrics.jsonl", kLog);
  write(t.path() / "model" / "kiln.json",
        R"({"format_version": 2, "labels": ["a", "b"], "training": {"best_epoch": 2},
            "metrics": {"test": {"labels": ["a", "b"], "n": 4, "accuracy": 0.75, "macro_f1": 0.7,
              "per_class": {"a": {"f1": 0.8, "precision": 1, "recall": 0.67, "support": 3},
                            "b": {"f1": 0.6, "precision": 0.5, "recall": 1, "support": 1}},
              "confusion_matrix": [[2, 1], [0, 1]], "ece": 0.1, "ece_bins": 2,
              "reliability": [{"accuracy": 0.5, "count": 2, "mean_confidence": 0.4},
                              {"accuracy": 1.0, "count": 2, "mean_confidence": 0.9}]}}})");
  const RunFiles run = load_run((t.path() / "model").string());
  EXPECT_FALSE(run.metrics_path.empty());
  EXPECT_EQ(run.epochs.size(), 2u);
  const auto data = data_block(run_page(run));
  EXPECT_EQ(data["confusion-counts"]["data"]["values"], (nlohmann::json{{2.0, 1.0}, {0.0, 1.0}}));
  EXPECT_EQ(data["confusion-normalized"]["data"]["values"][0][0], 2.0 / 3.0);
  EXPECT_EQ(data["per-class-f1"]["data"]["labels"], (nlohmann::json{"a", "b"}));
  EXPECT_EQ(data["reliability"]["data"]["ece"], 0.1);
  EXPECT_EQ(data["validation-metrics"]["data"]["markers"][0]["x"], 2.0) << "best epoch marked";
}

TEST(StudyPage, HistoryRunningBestAndPrunedMarks) {
  tune::StudyInfo study;
  study.name = "s";
  study.direction = tune::Direction::kMinimize;
  study.user_attrs["metric"] = "val_loss";
  tune::Distribution lr;
  lr.low = 1e-4;
  lr.high = 1e-1;
  lr.log = true;
  tune::Distribution k;
  k.kind = tune::Distribution::Kind::kCategorical;
  k.choices = {"a", "b"};
  const tune::SearchSpace space = {{"lr", lr}, {"k", k}};
  std::vector<tune::Trial> trials;
  const double values[] = {0.9, 0.5, 0.7, 0.4, 0.6};
  for (int i = 0; i < 5; ++i) {
    tune::Trial t;
    t.number = i;
    t.state = tune::TrialState::kComplete;
    t.params = {{"lr", std::pow(10.0, -1 - i * 0.5)}, {"k", i % 2}};
    t.distributions = {{"lr", lr}, {"k", k}};
    t.value = values[i];
    t.intermediate = {{1, values[i] + 0.2}, {2, values[i]}};
    trials.push_back(t);
  }
  tune::Trial pruned = trials[0];
  pruned.number = 5;
  pruned.state = tune::TrialState::kPruned;
  pruned.value.reset();
  pruned.intermediate = {{1, 1.3}};
  trials.push_back(pruned);
  tune::Trial failed = trials[0];
  failed.number = 6;
  failed.state = tune::TrialState::kFailed;
  failed.value.reset();
  failed.intermediate.clear();
  failed.user_attrs["fail_reason"] = "exit 1 <oops>";
  trials.push_back(failed);
  const std::string html = study_page(study, trials, space);
  const auto data = data_block(html);
  const auto& series = data["history"]["data"]["series"];
  EXPECT_EQ(series[0]["y"], (nlohmann::json{0.9, 0.5, 0.7, 0.4, 0.6}));
  EXPECT_EQ(series[1]["x"], (nlohmann::json{5.0}));
  EXPECT_EQ(series[1]["y"], (nlohmann::json{1.3}));
  EXPECT_EQ(series[2]["y"], (nlohmann::json{0.9, 0.5, 0.5, 0.4, 0.4, 0.4, 0.4})) << "running minimum";
  EXPECT_EQ(data["parallel"]["data"]["axes"].size(), 3u);
  EXPECT_EQ(data["trials"]["data"][5]["last_step"], 1);
  EXPECT_TRUE(data.contains("slice-0") && data.contains("slice-1"));
  EXPECT_TRUE(contains(html, "exit 1 &lt;oops&gt;"));
  EXPECT_TRUE(contains(html, "pruned at step 1"));
}

}  // namespace
}  // namespace kiln::report
