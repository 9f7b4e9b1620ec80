#include "kiln/tune/tune_config.h"

#include <gtest/gtest.h>

#include "kiln/core/error.h"
#include "kiln/core/yaml.h"
#include "kiln/tune/grid_sampler.h"

namespace kiln::tune {
namespace {

TuneConfig parse(const std::string& yaml) { return parse_tune_config(core::parse_yaml(yaml, "tune.yaml"), "tune.yaml", "/cfg"); }

std::string error_of(const std::string& yaml) {
  try {
    (void)parse(yaml);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "no error";
}

#define EXPECT_ERROR(yaml, text)                                                         \
  do {                                                                                   \
    const std::string msg = error_of(yaml);                                              \
    EXPECT_NE(msg.find(text), std::string::npos) << "message: " << msg;                  \
  } while (0)

const char* kSeed = R"Y(
base_config: seed.yaml
data: {dataset: brown}
train: {epochs: 5}
space:
  lr: {type: float, low: 1.0e-5, high: 1.0e-3, log: true}
  batch_size: {type: categorical, choices: [32, 64, 128]}
  dropout: {type: float, low: 0.1, high: 0.5}
  layers: {type: int, low: 1, high: 4}
)Y";

TEST(TuneConfig, TrainingObjectiveDefaultsToValidationMacroF1Maximized) {
  auto j = core::parse_yaml(kSeed, "tune.yaml");
  j.erase("base_config");
  const TuneConfig c = parse_tune_config(j, "tune.yaml", "/cfg");
  EXPECT_EQ(c.kind, ObjectiveKind::kTrain);
  EXPECT_EQ(c.direction, Direction::kMaximize);
  EXPECT_EQ(c.metric_name, "val_macro_f1");
  ASSERT_EQ(c.space.size(), 4u);
  const auto find = [&](const std::string& n) {
    for (const auto& [name, d] : c.space)
      if (name == n) return d;
    ADD_FAILURE() << n;
    return Distribution{};
  };
  EXPECT_TRUE(find("lr").log);
  EXPECT_EQ(find("batch_size").kind, Distribution::Kind::kCategorical);
  EXPECT_EQ(find("layers").kind, Distribution::Kind::kInt);
  EXPECT_EQ(c.train.base["data"]["dataset"], "brown");
  EXPECT_EQ(c.train.base["train"]["epochs"], 5);
}

TEST(TuneConfig, ValLossIsMinimizedAndAContradictingDirectionIsAnError) {
  const auto c = parse("metric: val_loss\nspace: {lr: {type: float, low: 0.001, high: 0.1}}\n");
  EXPECT_EQ(c.direction, Direction::kMinimize);
  EXPECT_ERROR("metric: val_loss\ndirection: maximize\nspace: {lr: {type: float, low: 0.001, high: 0.1}}\n",
               "direction maximize contradicts metric val_loss");
  EXPECT_ERROR("metric: f1\nspace: {lr: {type: float, low: 0.001, high: 0.1}}\n",
               "metric must be one of val_macro_f1, val_accuracy, val_loss");
}

TEST(TuneConfig, CommandObjective) {
  const auto c = parse(R"Y(
direction: minimize
metric: loss
space: {x: {type: float, low: -1, high: 1, step: 0.5}, opt: {type: categorical, choices: [sgd, adam]}}
objective:
  command: "python3 f.py --x {x} --opt {opt}"
  metric_regex: "loss=([-0-9.e]+)"
  intermediate_regex: "step (\\d+) loss=([-0-9.e]+)"
  timeout: 2m
  cwd: work
)Y");
  EXPECT_EQ(c.kind, ObjectiveKind::kCommand);
  EXPECT_EQ(c.direction, Direction::kMinimize);
  EXPECT_EQ(c.metric_name, "loss");
  EXPECT_EQ(c.command.timeout_s, 120);
  EXPECT_EQ(c.command.cwd, "/cfg/work");
  EXPECT_EQ(c.command.intermediate_regex, "step (\\d+) loss=([-0-9.e]+)");
}

TEST(TuneConfig, UnknownTopLevelKey) {
  EXPECT_ERROR("spcae: {}\n", "tune.yaml: unknown key 'spcae' (expected one of space, direction");
}

TEST(TuneConfig, MissingOrEmptySpace) {
  EXPECT_ERROR("direction: maximize\n", "`space` is missing");
  EXPECT_ERROR("space: {}\n", "space must be a non-empty mapping");
}

TEST(TuneConfig, BadParameterType) {
  EXPECT_ERROR("space: {lr: {type: double, low: 0, high: 1}}\n", "space.lr.type must be float, int or categorical");
  EXPECT_ERROR("space: {lr: {type: float, low: zero, high: 1}}\n", "space.lr.low must be a number");
  EXPECT_ERROR("space: {lr: {type: float, low: 0, high: 1, log: true}}\n", "log scale needs low > 0");
  EXPECT_ERROR("space: {lr: {type: float, low: 0.1, high: 1, lg: true}}\n", "unknown key `lg`");
}

TEST(TuneConfig, MissingMetricRegex) {
  EXPECT_ERROR("direction: minimize\nspace: {x: {type: float, low: 0, high: 1}}\nobjective: {command: 'echo {x}'}\n",
               "objective.metric_regex is missing");
}

TEST(TuneConfig, MetricRegexWithoutGroupOrInvalid) {
  EXPECT_ERROR("direction: minimize\nspace: {x: {type: float, low: 0, high: 1}}\n"
               "objective: {command: echo, metric_regex: 'loss=[0-9]+'}\n",
               "has no capture group");
  EXPECT_ERROR("direction: minimize\nspace: {x: {type: float, low: 0, high: 1}}\n"
               "objective: {command: echo, metric_regex: 'loss=([0-9]+'}\n",
               "objective.metric_regex is not a valid regular expression");
  EXPECT_ERROR("direction: minimize\nspace: {x: {type: float, low: 0, high: 1}}\n"
               "objective: {command: echo, metric_regex: '(a)', intermediate_regex: '(a)(b)(c)'}\n",
               "intermediate_regex needs one capture group (the value) or two (step, value), got 3");
}

TEST(TuneConfig, CommandObjectiveNeedsDirectionAndNoTrainingSections) {
  EXPECT_ERROR("space: {x: {type: float, low: 0, high: 1}}\nobjective: {command: echo, metric_regex: '(.*)'}\n",
               "direction is missing");
  EXPECT_ERROR("direction: minimize\ntrain: {epochs: 3}\nspace: {x: {type: float, low: 0, high: 1}}\n"
               "objective: {command: echo, metric_regex: '(.*)'}\n",
               "'train' configures a Kiln training run, but objective.command runs a command");
  EXPECT_ERROR("direction: minimize\nspace: {x: {type: float, low: 0, high: 1}}\n"
               "objective: {command: echo, metric_regex: '(.*)', retries: 3}\n",
               "unknown key 'objective.retries' for a command objective");
}

TEST(TuneConfig, TrainingParametersMustMapToTheRunConfig) {
  EXPECT_ERROR("space: {learning_rate: {type: float, low: 0.001, high: 0.1}}\n",
               "space.learning_rate: 'learning_rate' is not a training parameter");
  EXPECT_EQ(parse("space: {train.optimizer.lr: {type: float, low: 0.001, high: 0.1}}\n").space[0].first,
            "train.optimizer.lr");
  EXPECT_ERROR("space: {lr: {type: float, low: 0.001, high: 0.1}}\nobjective: {train_file: a.csv}\n",
               "objective.train_file and objective.val_file go together");
  EXPECT_ERROR("space: {lr: {type: float, low: 0.001, high: 0.1}}\nobjective: {timeout: soon}\n",
               "objective.timeout: 'soon' is not a duration");
}

TEST(TuneConfig, ApplyTrainParamsSetsShortNamesAndDottedPaths) {
  const nlohmann::json base = {{"model", {{"family", "mlp"}, {"params", {{"hidden", {512}}, {"dropout", 0.3}}}}},
                               {"train", {{"epochs", 10}, {"optimizer", {{"kind", "adamw"}, {"lr", 0.001}}}}}};
  const auto c = apply_train_params(base, {{"lr", 3e-4}, {"batch_size", 128}, {"dropout", 0.25}, {"layers", 3},
                                           {"featurizer.max_features", 2000}});
  EXPECT_EQ(c["train"]["optimizer"]["lr"], 3e-4);
  EXPECT_EQ(c["train"]["optimizer"]["kind"], "adamw");
  EXPECT_EQ(c["train"]["batch_size"], 128);
  EXPECT_EQ(c["train"]["epochs"], 10);
  EXPECT_EQ(c["model"]["params"]["dropout"], 0.25);
  EXPECT_EQ(c["model"]["params"]["hidden"], nlohmann::json({512, 512, 512}));
  EXPECT_EQ(c["featurizer"]["max_features"], 2000);
  const auto w = apply_train_params(base, {{"hidden_size", 64}});
  EXPECT_EQ(w["model"]["params"]["hidden"], nlohmann::json({64}));
  const auto d = apply_train_params(nlohmann::json::object(), {{"layers", 2}});
  EXPECT_EQ(d["model"]["params"]["hidden"], nlohmann::json({256, 256}));
}

TEST(TuneConfig, BertShortNamesSetBertParameters) {
  const nlohmann::json base = {{"featurizer", {{"type", "wordpiece"}, {"max_length", 128}}},
                               {"model", {{"family", "bert"}, {"params", {{"preset", "tiny"}}}}}};
  const auto c = apply_train_params(base, {{"layers", 3}, {"hidden_size", 64}, {"heads", 4}, {"dropout", 0.2},
                                           {"pooling", "mean"}, {"max_length", 64}, {"warmup_ratio", 0.05}});
  const auto& p = c["model"]["params"];
  EXPECT_EQ(p["num_hidden_layers"], 3);
  EXPECT_EQ(p["hidden_size"], 64);
  EXPECT_EQ(p["intermediate_size"], 256);
  EXPECT_EQ(p["num_attention_heads"], 4);
  EXPECT_EQ(p["hidden_dropout_prob"], 0.2);
  EXPECT_EQ(p["attention_probs_dropout_prob"], 0.2);
  EXPECT_EQ(p["pooling"], "mean");
  EXPECT_EQ(p["preset"], "tiny");
  EXPECT_FALSE(p.contains("hidden"));
  EXPECT_EQ(c["featurizer"]["max_length"], 64);
  EXPECT_EQ(c["train"]["schedule"]["warmup_ratio"], 0.05);
  // intermediate_size tuned too: it wins.
  const auto i = apply_train_params(base, {{"hidden_size", 64}, {"model.params.intermediate_size", 100}});
  EXPECT_EQ(i["model"]["params"]["intermediate_size"], 100);
  EXPECT_EQ(train_param_path("heads", "bert"), "model.params.num_attention_heads");
  EXPECT_EQ(train_param_path("layers", "bert"), "model.params.num_hidden_layers");
  EXPECT_EQ(train_param_path("layers", "mlp"), "model.params.hidden");
  try {
    (void)train_param_path("heads", "mlp");
    ADD_FAILURE() << "no error";
  } catch (const kiln::ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("'heads' is a BERT parameter (model.params.num_attention_heads), but the study's "
                                         "model.family is 'mlp'; set model.family: bert"),
              std::string::npos)
        << e.what();
  }
}

TEST(TuneConfig, ParseDuration) {
  EXPECT_EQ(parse_duration("90", "--timeout"), 90);
  EXPECT_EQ(parse_duration("90s", "--timeout"), 90);
  EXPECT_EQ(parse_duration("10m", "--timeout"), 600);
  EXPECT_EQ(parse_duration("1.5h", "--timeout"), 5400);
  EXPECT_EQ(parse_duration("1h30m", "--timeout"), 5400);
  for (const char* bad : {"", "m", "10x", "-5", "1h30"}) {
    try {
      (void)parse_duration(bad, "--timeout");
      ADD_FAILURE() << bad;
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find("--timeout: '" + std::string(bad) + "' is not a duration"), std::string::npos);
    }
  }
}

const char* kGrid = R"Y(
data: {dataset: brown}
space:
  lr: {type: float, low: 1.0e-5, high: 1.0e-3, log: true, grid: [1.0e-5, 1.0e-4, 1.0e-3]}
  batch_size: {type: categorical, choices: [32, 64, 128], grid: [128, 32]}
  layers: {type: int, low: 1, high: 4, grid: [1, 3]}
  dropout: {type: float, low: 0.1, high: 0.5, step: 0.1}
)Y";

TEST(TuneConfig, GridValuesAreReadInInternalFormAndFeedTheGridSampler) {
  const TuneConfig c = parse(kGrid);
  ASSERT_EQ(c.grid.size(), 3u);
  EXPECT_EQ(c.grid.at("lr"), (std::vector<double>{1e-5, 1e-4, 1e-3}));
  EXPECT_EQ(c.grid.at("batch_size"), (std::vector<double>{2, 0}));  // choice indices, in the listed order
  EXPECT_EQ(c.grid.at("layers"), (std::vector<double>{1, 3}));
  EXPECT_EQ(c.grid.count("dropout"), 0u);
  for (const auto& [name, d] : c.space) EXPECT_FALSE(d.to_json().contains("grid")) << name;  // not part of the domain
  GridSamplerOptions o;
  o.values = c.grid;
  o.seed = 1;
  const GridSampler g(c.space, o);
  EXPECT_EQ(g.size(), 3 * 2 * 2 * 5);  // dropout: its step grid 0.1..0.5
}

TEST(TuneConfig, AContinuousFloatWithoutGridKeepsTheGridSamplersError) {
  const TuneConfig c = parse("data: {dataset: brown}\nspace: {dropout: {type: float, low: 0.1, high: 0.5}}\n");
  EXPECT_TRUE(c.grid.empty());
  try {
    const GridSampler g(c.space, GridSamplerOptions{});
    ADD_FAILURE() << "a float without step and grid has no grid";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("space.dropout is a continuous float (0.10000000000000001..0.5), which has no grid; "
                                         "give it a `step` or list its grid values (grid: [v1, v2, ...] in space.dropout)"),
              std::string::npos)
        << e.what();
  }
}

TEST(TuneConfig, GridValuesOutsideTheDomainAreErrors) {
  const std::string head = "data: {dataset: brown}\nspace:\n";
  EXPECT_ERROR(head + "  lr: {type: float, low: 1.0e-5, high: 1.0e-3, log: true, grid: [1.0e-4, 0.01]}\n",
               "tune.yaml: space.lr.grid holds 0.01, outside the parameter's domain; list numbers in [1e-05, 0.001], or "
               "widen the domain");
  EXPECT_ERROR(head + "  layers: {type: int, low: 1, high: 4, grid: [2, 2.5]}\n",
               "tune.yaml: space.layers.grid holds 2.5, outside the parameter's domain; list integers in [1, 4], or widen the domain");
  EXPECT_ERROR(head + "  dropout: {type: float, low: 0.1, high: 0.5, step: 0.1, grid: [0.25]}\n",
               "space.dropout.grid holds 0.25, outside the parameter's domain; list numbers in [0.1, 0.5] on the step grid "
               "low + k * 0.1, or widen the domain");
  EXPECT_ERROR(head + "  batch_size: {type: categorical, choices: [32, 64], grid: [32, 256]}\n",
               "tune.yaml: space.batch_size.grid holds 256, which is not one of space.batch_size.choices [32,64]; list "
               "only choices, or add it to choices");
  EXPECT_ERROR(head + "  lr: {type: float, low: 0.1, high: 0.5, grid: [0.2, fast]}\n",
               "tune.yaml: space.lr.grid holds \"fast\", which is not a number");
  EXPECT_ERROR(head + "  lr: {type: float, low: 0.1, high: 0.5, grid: 0.2}\n",
               "tune.yaml: space.lr.grid must be a non-empty list of values, got 0.2");
  EXPECT_ERROR(head + "  lr: {type: float, low: 0.1, high: 0.5, grid: []}\n", "space.lr.grid must be a non-empty list");
  EXPECT_ERROR(head + "  lr: {type: float, low: 0.1, high: 0.5, grid: [0.2, 0.3, 0.2]}\n",
               "tune.yaml: space.lr.grid lists 0.2 twice; list each value once");
}

TEST(TuneConfig, MergeJson) {
  const auto m = merge_json({{"a", {{"b", 1}, {"c", 2}}}, {"l", {1, 2}}}, {{"a", {{"c", 3}}}, {"l", {9}}});
  EXPECT_EQ(m, nlohmann::json({{"a", {{"b", 1}, {"c", 3}}}, {"l", {9}}}));
}

}  // namespace
}  // namespace kiln::tune

namespace kiln::tune {
namespace {

TEST(TuneConfig, ShippedSeedConfigTunesTheSeedRecipeOnBrown) {
  const auto c = load_tune_config(std::string(KILN_TEST_DATA_DIR) + "/../../configs/tune_seed.yaml");
  EXPECT_EQ(c.kind, ObjectiveKind::kTrain);
  EXPECT_EQ(c.direction, Direction::kMaximize);
  ASSERT_EQ(c.space.size(), 3u);
  EXPECT_EQ(c.train.base["data"]["dataset"], "brown");
  EXPECT_EQ(c.train.base["model"]["family"], "mlp");
  EXPECT_EQ(c.train.base["featurizer"]["max_features"], 5000);
  const auto run = apply_train_params(c.train.base, {{"lr", 2e-4}, {"batch_size", 32}, {"dropout", 0.2}});
  EXPECT_EQ(run["train"]["optimizer"]["lr"], 2e-4);
  EXPECT_EQ(run["train"]["optimizer"]["weight_decay"], 0.01);  // the recipe's, kept
  EXPECT_EQ(run["train"]["batch_size"], 32);
  EXPECT_EQ(run["model"]["params"]["dropout"], 0.2);
  EXPECT_EQ(run["model"]["params"]["hidden"], nlohmann::json({512}));
}

}  // namespace
}  // namespace kiln::tune
