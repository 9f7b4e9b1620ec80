// A tuning run's setup and finish, as `kiln tune` drives them: study location defaults, creating
// and resuming a study (and refusing another space), the sampler/pruner factory, the best-config
// file, and StudyRun end to end with an in-process objective.
#include "kiln/tune/study_run.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "kiln/core/error.h"
#include "kiln/core/yaml.h"
#include "kiln/tune/random_sampler.h"
#include "kiln/tune/study_setup.h"
#include "kiln/tune/tpe_sampler.h"
#include "kiln/tune/train_objective.h"

namespace fs = std::filesystem;

namespace kiln::tune {
namespace {

fs::path temp_dir() {
  static fs::path dir = [] {
    fs::path p = fs::temp_directory_path() / ("kiln_study_run_test_" + std::to_string(::getpid()));
    fs::remove_all(p);
    fs::create_directories(p);
    return p;
  }();
  return dir;
}

const char* kQuad = R"Y(
direction: maximize
metric: score
space:
  x: {type: float, low: 0.0, high: 1.0}
  k: {type: categorical, choices: [a, b]}
objective:
  command: "echo score={x}"
  metric_regex: "score=([-0-9.e]+)"
)Y";

std::string write_config(const std::string& name, const std::string& yaml) {
  const fs::path p = temp_dir() / name;
  std::ofstream(p) << yaml;
  return p.string();
}

TuneConfig parse(const std::string& yaml, const std::string& where = "tune.yaml") {
  return parse_tune_config(core::parse_yaml(yaml, where), where, temp_dir());
}

std::string sqlite_url(const std::string& name) { return "sqlite:///" + (temp_dir() / name).string(); }

template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

// Completes each trial with its x, or fails every trial as a configuration error.
class FakeObjective : public Objective {
 public:
  explicit FakeObjective(bool config_error = false) : config_error_(config_error) {}
  ObjectiveResult run(TrialContext& ctx) override {
    if (!config_error_) return ObjectiveResult::complete(ctx.params()["x"].get<double>());
    ObjectiveResult r = ObjectiveResult::failed("space.x: no such option in the model");
    r.config_error = true;
    return r;
  }

 private:
  bool config_error_;
};

StudyRunOptions quad_options(const std::string& study) {
  StudyRunOptions o;
  o.config_path = write_config(study + ".yaml", kQuad);
  o.out = (temp_dir() / study).string();
  o.tuner.n_trials = 3;
  o.strategy.sampler = SamplerKind::kRandom;
  o.strategy.pruner = PrunerKind::kNone;
  o.strategy.seed = 1;
  return o;
}

TEST(StudySetup, LocationDefaultsFollowKilnTune) {
  const StudyLocation loc = locate_study("", "configs/quad.yaml", "", "");
  EXPECT_EQ(loc.name, "quad");
  EXPECT_EQ(loc.out, "runs/tune/quad");
  EXPECT_EQ(loc.url, "sqlite:///" + (fs::current_path() / "runs/tune/quad/study.db").string());
  const StudyLocation given = locate_study("s", "configs/quad.yaml", "/o", "postgresql://h/db");
  EXPECT_EQ(given.name, "s");
  EXPECT_EQ(given.out, "/o");
  EXPECT_EQ(given.url, "postgresql://h/db");
  EXPECT_EQ(locate_study("", "", "", "").name, "");
}

TEST(StudySetup, CreatesAStudyWithItsSpaceAndResumesIt) {
  const std::string url = sqlite_url("create.db");
  auto storage = open_storage(url);
  const TuneConfig config = parse(kQuad);
  const StudyInfo created = create_or_resume_study(*storage, "q", config, url);
  EXPECT_EQ(created.user_attrs.count("space"), 0u);  // attributes are set after creation
  const StudyInfo again = create_or_resume_study(*storage, "q", config, url);
  EXPECT_EQ(again.id, created.id);
  EXPECT_EQ(again.user_attrs.at("metric"), "score");
  EXPECT_EQ(again.user_attrs.at("space"), space_to_json(config.space).dump());
  const SearchSpace space = stored_space(again);
  ASSERT_EQ(space.size(), 2u);
  EXPECT_EQ(space[0].first, config.space[0].first);
  EXPECT_EQ(space[1].second.to_json(), config.space[1].second.to_json());
}

TEST(StudySetup, ResumingWithAnotherSpaceNamesTheStudyAndTheFix) {
  const std::string url = sqlite_url("other_space.db");
  auto storage = open_storage(url);
  (void)create_or_resume_study(*storage, "q", parse(kQuad), url);
  std::string yaml = kQuad;
  yaml.replace(yaml.find("high: 1.0"), 9, "high: 2.0");
  const TuneConfig changed = parse(yaml, "changed.yaml");
  const std::string msg = error_of([&] { (void)create_or_resume_study(*storage, "q", changed, url); });
  EXPECT_NE(msg.find("study 'q' in " + url + " was created with another search space ([{\"distribution\""),
            std::string::npos)
      << msg;
  EXPECT_NE(msg.find("); tune under a new --study name, or restore the space of changed.yaml"), std::string::npos) << msg;
}

TEST(StudySetup, MissingStudyListsTheStudiesTheStorageHolds) {
  const std::string url = sqlite_url("find.db");
  auto storage = open_storage(url);
  EXPECT_EQ(error_of([&] { (void)find_existing_study(*storage, "nope", url); }),
            "no study 'nope' in " + url + " (it holds no study); check --study and --storage");
  (void)storage->create_or_load_study("a", Direction::kMaximize);
  (void)storage->create_or_load_study("b", Direction::kMinimize);
  EXPECT_EQ(error_of([&] { (void)find_existing_study(*storage, "nope", url); }),
            "no study 'nope' in " + url + " (it holds: a, b); check --study and --storage");
  EXPECT_EQ(find_existing_study(*storage, "b", url).direction, Direction::kMinimize);
}

TEST(Strategy, NamesParseAndBadNamesListTheChoices) {
  for (const char* n : {"tpe", "random", "grid"}) EXPECT_STREQ(sampler_name(parse_sampler_kind(n)), n);
  for (const char* n : {"median", "hyperband", "none"}) EXPECT_STREQ(pruner_name(parse_pruner_kind(n)), n);
  EXPECT_EQ(error_of([] { (void)parse_sampler_kind("cmaes"); }),
            "sampler: unknown value 'cmaes'; choose one of tpe, random, grid");
  EXPECT_EQ(error_of([] { (void)parse_pruner_kind("asha"); }),
            "pruner: unknown value 'asha'; choose one of median, hyperband, none");
}

TEST(Strategy, BuildsTheNamedSamplerAndPruner) {
  const TuneConfig config = parse(kQuad);
  StrategyOptions o;
  Strategy s = make_strategy(config, o);
  EXPECT_NE(dynamic_cast<TpeSampler*>(s.sampler.get()), nullptr);
  EXPECT_NE(dynamic_cast<PercentilePruner*>(s.pruner.get()), nullptr);
  EXPECT_TRUE(static_cast<bool>(s.prune_fn()));
  EXPECT_EQ(s.grid, nullptr);

  o.sampler = SamplerKind::kRandom;
  o.pruner = PrunerKind::kHyperband;
  s = make_strategy(config, o);
  EXPECT_NE(dynamic_cast<RandomSampler*>(s.sampler.get()), nullptr);
  EXPECT_EQ(s.hyperband, s.pruner.get());

  o.pruner = PrunerKind::kNone;
  s = make_strategy(config, o);
  EXPECT_EQ(s.pruner, nullptr);
  EXPECT_FALSE(static_cast<bool>(s.prune_fn()));
}

TEST(Strategy, GridNeedsGridValuesForUnsteppedFloats) {
  StrategyOptions o;
  o.sampler = SamplerKind::kGrid;
  EXPECT_NE(error_of([&] { (void)make_strategy(parse(kQuad), o); }).find("grid sampler: space.x is a continuous float (0..1)"),
            std::string::npos);
  std::string yaml = kQuad;
  yaml.replace(yaml.find("high: 1.0}"), 10, "high: 1.0, grid: [0.1, 0.3]}");
  const Strategy s = make_strategy(parse(yaml), o);
  ASSERT_NE(s.grid, nullptr);
  EXPECT_EQ(s.grid->size(), 4);
  EXPECT_TRUE(s.warnings.empty());
}

TEST(Strategy, GridValuesUnusedByAnotherSamplerAreAWarning) {
  std::string yaml = kQuad;
  yaml.replace(yaml.find("high: 1.0}"), 10, "high: 1.0, grid: [0.1, 0.3]}");
  StrategyOptions o;
  o.sampler = SamplerKind::kRandom;
  const Strategy s = make_strategy(parse(yaml, "grid.yaml"), o);
  ASSERT_EQ(s.warnings.size(), 1u);
  EXPECT_EQ(s.warnings[0],
            "grid.yaml: space.x.grid is used only by --sampler grid; --sampler random samples the whole domain (drop "
            "the grid values or use --sampler grid)");
}

TEST(BestConfig, TrainingObjectivesGetARunConfig) {
  const TuneConfig config = parse(R"Y(
data: {dataset: brown}
train: {epochs: 5}
space:
  lr: {type: float, low: 1.0e-5, high: 1.0e-3, log: true}
)Y");
  Trial best;
  best.number = 4;
  best.value = 0.75;
  best.params = {{"lr", 0.0005}};
  best.distributions = {{"lr", config.space[0].second}};
  const BestConfigFile f = best_config_file(config, "s", best, "/runs/s");
  EXPECT_EQ(f.path, "/runs/s/best.yaml");
  EXPECT_EQ(f.kind, "config");
  EXPECT_EQ(f.text.rfind("# Best run config of kiln tune study s: trial 4, val_macro_f1 0.75\n"
                         "#   kiln train --config /runs/s/best.yaml ...\n{",
                         0),
            0u)
      << f.text;
  const auto j = nlohmann::json::parse(f.text.substr(f.text.find('{')));
  EXPECT_DOUBLE_EQ(j["train"]["optimizer"]["lr"].get<double>(), 0.0005);
  EXPECT_EQ(j["data"]["dataset"], "brown");
  EXPECT_EQ(best_config_file(config, "s", best, "/runs/s", "/elsewhere.yaml").path, "/elsewhere.yaml");
}

TEST(BestConfig, DatasetToFetchBeforeTrainingTrials) {
  TrainObjectiveSpec spec;
  EXPECT_EQ(dataset_to_fetch(spec), "spamassassin");
  spec.base = {{"data", {{"dataset", "brown"}}}};
  EXPECT_EQ(dataset_to_fetch(spec), "brown");
  spec.train_file = "/data/train.csv";
  EXPECT_EQ(dataset_to_fetch(spec), "");
}

TEST(StudyRun, RunsTrialsWritesTheBestAndResumes) {
  StudyRunOptions o = quad_options("quad");
  {
    StudyRun run(o);
    EXPECT_EQ(run.name(), "quad");
    EXPECT_EQ(run.url(), "sqlite:///" + (temp_dir() / "quad" / "study.db").string());
    EXPECT_EQ(run.options().tuner.trials_dir, temp_dir() / "quad" / "trials");
    FakeObjective objective;
    const TuneSummary summary = run.run(objective);
    EXPECT_EQ(summary.completed, 3);
    ASSERT_TRUE(summary.best.has_value());
    const auto file = run.write_best(summary);
    ASSERT_TRUE(file.has_value());
    EXPECT_EQ(file->path, (temp_dir() / "quad" / "best_params.yaml").string());
    std::ifstream in(file->path);
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    EXPECT_EQ(text, file->text);
    EXPECT_EQ(text.rfind("# Best parameters of kiln tune study quad: trial " + std::to_string(summary.best->number) +
                             ", score " + param_text(*summary.best->value) + "\n{",
                         0),
              0u)
        << text;
    EXPECT_NE(run.describe().find("quad/study.db: 3 trials so far (3 complete or pruned); trials run in "),
              std::string::npos)
        << run.describe();
  }
  o.tuner.n_trials = 5;
  StudyRun resumed(o);
  FakeObjective objective;
  EXPECT_EQ(resumed.run(objective).completed, 2);
  EXPECT_EQ(resumed.trials().size(), 5u);
}

TEST(StudyRun, AConfigErrorOfTheObjectiveNamesTheConfigFile) {
  const StudyRunOptions o = quad_options("broken");
  StudyRun run(o);
  FakeObjective objective(/*config_error=*/true);
  EXPECT_EQ(error_of([&] { (void)run.run(objective); }),
            "trial 0: space.x: no such option in the model\n(every trial would fail the same way; fix " + o.config_path +
                ")");
}

TEST(StudyRun, NoBestWithoutACompleteTrial) {
  StudyRun run(quad_options("empty"));
  EXPECT_FALSE(run.write_best(TuneSummary{}).has_value());
  EXPECT_FALSE(fs::exists(temp_dir() / "empty" / "best_params.yaml"));
}

TEST(StudyRun, BadOptionsAreConfigErrors) {
  StudyRunOptions o = quad_options("bad");
  o.config_path.clear();
  EXPECT_EQ(error_of([&] { StudyRun run(o); }), "tune: no config file given; name a tune.yaml");
  o = quad_options("bad");
  o.tuner.jobs = 0;
  EXPECT_NE(error_of([&] { StudyRun run(o); }).find("jobs"), std::string::npos);
  o = quad_options("bad");
  o.out = "/proc/kiln-cannot-create";
  EXPECT_NE(error_of([&] { StudyRun run(o); }).find("cannot create the study directory /proc/kiln-cannot-create: "),
            std::string::npos);
}

}  // namespace
}  // namespace kiln::tune
