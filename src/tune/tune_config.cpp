#include "kiln/tune/tune_config.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <optional>
#include <regex>
#include <set>
#include <vector>

#include "kiln/core/error.h"
#include "kiln/core/yaml.h"

namespace kiln::tune {
namespace {

const std::vector<std::string> kTopKeys = {"space", "direction", "metric", "objective", "base_config",
                                           "data",  "featurizer", "model", "train"};
const std::vector<std::string> kRunSections = {"data", "featurizer", "model", "train"};
const std::vector<std::string> kTrainMetrics = {"val_macro_f1", "val_accuracy", "val_loss"};

// Short names of training parameters and the run-config paths they set. `layers` and
// `hidden_size` are handled together in apply_train_params.
const std::vector<std::pair<std::string, std::string>> kShortNames = {
    {"lr", "train.optimizer.lr"},
    {"weight_decay", "train.optimizer.weight_decay"},
    {"batch_size", "train.batch_size"},
    {"epochs", "train.epochs"},
    {"warmup_ratio", "train.schedule.warmup_ratio"},
    {"label_smoothing", "train.loss.label_smoothing"},
    {"grad_clip", "train.grad_clip"},
    {"dropout", "model.params.dropout"},
    {"hidden_size", "model.params.hidden"},
    {"layers", "model.params.hidden"},
    {"dim", "model.params.dim"},
    {"max_features", "featurizer.max_features"},
};

// The "bert" family's meaning of the model short names (apply_train_params), and its own ones.
const std::vector<std::pair<std::string, std::vector<std::string>>> kBertShortNames = {
    {"layers", {"model.params.num_hidden_layers"}},
    {"hidden_size", {"model.params.hidden_size"}},
    {"heads", {"model.params.num_attention_heads"}},
    {"dropout", {"model.params.hidden_dropout_prob", "model.params.attention_probs_dropout_prob"}},
    {"pooling", {"model.params.pooling"}},
    {"max_length", {"featurizer.max_length"}},
};

const std::vector<std::string>* bert_paths(const std::string& name) {
  for (const auto& [short_name, paths] : kBertShortNames) {
    if (name == short_name) return &paths;
  }
  return nullptr;
}

std::string family_of(const nlohmann::json& base) {
  if (!base.is_object() || !base.contains("model") || !base["model"].is_object()) return "";
  const auto& m = base["model"];
  return m.contains("family") && m["family"].is_string() ? m["family"].get<std::string>() : "";
}

void set_path(nlohmann::json& root, const std::string& path, const nlohmann::json& value) {
  nlohmann::json* node = &root;
  std::size_t start = 0;
  while (true) {
    const auto dot = path.find('.', start);
    const std::string key = path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    if (!node->is_object()) *node = nlohmann::json::object();
    if (dot == std::string::npos) {
      (*node)[key] = value;
      return;
    }
    node = &(*node)[key];
    start = dot + 1;
  }
}

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
  return s;
}

bool one_of(const std::string& s, const std::vector<std::string>& v) {
  for (const auto& x : v)
    if (x == s) return true;
  return false;
}

std::string read_string(const nlohmann::json& j, const std::string& key, const std::string& where) {
  if (!j[key].is_string()) throw ConfigError(where + "." + key + " must be a string, got " + j[key].dump());
  return j[key].get<std::string>();
}

double read_timeout(const nlohmann::json& v, const std::string& where) {
  if (v.is_number()) {
    const double s = v.get<double>();
    if (!(s >= 0) || !std::isfinite(s)) throw ConfigError(where + " must be >= 0 seconds, got " + v.dump());
    return s;
  }
  if (v.is_string()) return parse_duration(v.get<std::string>(), where);
  throw ConfigError(where + " must be seconds or a duration like 10m, got " + v.dump());
}

std::regex compile(const std::string& pattern, const std::string& where) {
  try {
    return std::regex(pattern, std::regex::ECMAScript);
  } catch (const std::regex_error& e) {
    throw ConfigError(where + " is not a valid regular expression (" + e.what() + "): " + pattern);
  }
}

std::string absolute_from(const std::filesystem::path& dir, const std::string& p) {
  std::filesystem::path path(p);
  if (path.is_relative()) path = dir / path;
  return path.lexically_normal().string();
}

void parse_command_objective(const nlohmann::json& o, const std::string& where, TuneConfig& c) {
  for (const auto& [key, value] : o.items()) {
    if (!one_of(key, {"command", "metric_regex", "intermediate_regex", "cwd", "timeout"})) {
      throw ConfigError(where + ": unknown key 'objective." + key +
                        "' for a command objective (expected command, metric_regex, intermediate_regex, cwd, timeout)");
    }
  }
  c.kind = ObjectiveKind::kCommand;
  c.command.command = read_string(o, "command", where + ": objective");
  if (c.command.command.find_first_not_of(" \t\n") == std::string::npos) {
    throw ConfigError(where + ": objective.command is empty; give the command line to run for each trial");
  }
  if (!o.contains("metric_regex")) {
    throw ConfigError(where + ": objective.metric_regex is missing; give a regex whose first capture group is the "
                      "metric in the command's output, e.g. 'accuracy: ([0-9.]+)'");
  }
  c.command.metric_regex = read_string(o, "metric_regex", where + ": objective");
  const auto re = compile(c.command.metric_regex, where + ": objective.metric_regex");
  if (re.mark_count() < 1) {
    throw ConfigError(where + ": objective.metric_regex '" + c.command.metric_regex +
                      "' has no capture group; put the number in parentheses, e.g. 'loss=([-0-9.eE+]+)'");
  }
  if (o.contains("intermediate_regex")) {
    c.command.intermediate_regex = read_string(o, "intermediate_regex", where + ": objective");
    const auto ire = compile(c.command.intermediate_regex, where + ": objective.intermediate_regex");
    if (ire.mark_count() < 1 || ire.mark_count() > 2) {
      throw ConfigError(where + ": objective.intermediate_regex needs one capture group (the value) or two (step, "
                        "value), got " + std::to_string(ire.mark_count()));
    }
  }
  if (o.contains("cwd")) c.command.cwd = absolute_from(c.dir, read_string(o, "cwd", where + ": objective"));
  if (o.contains("timeout")) c.command.timeout_s = read_timeout(o["timeout"], where + ": objective.timeout");
}

void parse_train_objective(const nlohmann::json& j, const std::string& where, TuneConfig& c) {
  c.kind = ObjectiveKind::kTrain;
  if (j.contains("objective")) {
    const auto& o = j["objective"];
    for (const auto& [key, value] : o.items()) {
      if (!one_of(key, {"train_file", "val_file", "timeout"})) {
        throw ConfigError(where + ": unknown key 'objective." + key +
                          "' for a training objective (expected train_file, val_file, timeout; a command objective "
                          "needs objective.command)");
      }
    }
    if (o.contains("train_file")) c.train.train_file = absolute_from(c.dir, read_string(o, "train_file", where + ": objective"));
    if (o.contains("val_file")) c.train.val_file = absolute_from(c.dir, read_string(o, "val_file", where + ": objective"));
    if (c.train.train_file.empty() != c.train.val_file.empty()) {
      throw ConfigError(where + ": objective.train_file and objective.val_file go together (trials are scored on the "
                        "validation file); give both, or neither to use data.dataset");
    }
    if (o.contains("timeout")) c.train.timeout_s = read_timeout(o["timeout"], where + ": objective.timeout");
  }
  if (j.contains("metric")) {
    c.train.metric = read_string(j, "metric", where);
    if (!one_of(c.train.metric, kTrainMetrics)) {
      throw ConfigError(where + ": metric must be one of " + join(kTrainMetrics) + " for a training objective, got '" +
                        c.train.metric + "'");
    }
  }
  c.metric_name = c.train.metric;
  const Direction natural = c.train.metric == "val_loss" ? Direction::kMinimize : Direction::kMaximize;
  if (j.contains("direction") && c.direction != natural) {
    throw ConfigError(where + ": direction " + to_string(c.direction) + " contradicts metric " + c.train.metric +
                      " (it should be " + to_string(natural) + "d); drop `direction` or fix it");
  }
  c.direction = natural;

  nlohmann::json base = nlohmann::json::object();
  if (j.contains("base_config")) {
    const std::string p = absolute_from(c.dir, read_string(j, "base_config", where));
    base = core::load_yaml_file(p);
    if (base.is_null()) base = nlohmann::json::object();
    if (!base.is_object()) throw ConfigError(p + ": a run config must be a mapping (data, featurizer, model, train)");
  }
  for (const auto& section : kRunSections) {
    if (!j.contains(section)) continue;
    if (!j[section].is_object()) throw ConfigError(where + ": " + section + " must be a mapping, got " + j[section].dump());
    base = merge_json(base, nlohmann::json{{section, j[section]}});
  }
  c.train.base = base;
  for (const auto& [name, dist] : c.space) {
    try {
      (void)train_param_path(name, family_of(base));
    } catch (const ConfigError& e) {
      throw ConfigError(where + ": space." + name + ": " + e.what());
    }
  }
}

// `grid: [v1, v2, ...]` of parameter `name`: internal values, each in the domain, none twice.
std::vector<double> parse_grid_values(const nlohmann::json& g, const std::string& name, const Distribution& d,
                                      const std::string& where) {
  const std::string field = where + ": space." + name + ".grid";
  if (!g.is_array() || g.empty()) {
    throw ConfigError(field + " must be a non-empty list of values, got " + g.dump() + "; e.g. grid: [" +
                      (d.kind == Distribution::Kind::kCategorical ? d.choices.front().dump() : std::string("0.1, 0.2")) + "]");
  }
  std::vector<double> out;
  for (const auto& v : g) {
    double internal = 0;
    if (d.kind == Distribution::Kind::kCategorical) {
      const auto it = std::find(d.choices.begin(), d.choices.end(), v);
      if (it == d.choices.end()) {
        throw ConfigError(field + " holds " + v.dump() + ", which is not one of space." + name + ".choices " +
                          nlohmann::json(d.choices).dump() + "; list only choices, or add it to choices");
      }
      internal = static_cast<double>(it - d.choices.begin());
    } else {
      if (!v.is_number()) {
        throw ConfigError(field + " holds " + v.dump() + ", which is not a number; list numbers in " + d.to_json().dump());
      }
      internal = v.get<double>();
      if (!d.contains(internal)) {
        const bool integer = d.kind == Distribution::Kind::kInt;
        const auto text = [&](double x) {
          return integer ? std::to_string(std::llround(x)) : nlohmann::json(x).dump();
        };
        std::string expected = std::string(integer ? "integers" : "numbers") + " in [" + text(d.low) + ", " + text(d.high) + "]";
        if (d.step && !(integer && *d.step == 1)) {
          expected += " on the step grid low + k * " + text(*d.step);
        }
        throw ConfigError(field + " holds " + v.dump() + ", outside the parameter's domain; list " + expected +
                          ", or widen the domain");
      }
    }
    if (std::find(out.begin(), out.end(), internal) != out.end()) {
      throw ConfigError(field + " lists " + v.dump() + " twice; list each value once");
    }
    out.push_back(internal);
  }
  return out;
}

}  // namespace

nlohmann::json merge_json(nlohmann::json base, const nlohmann::json& patch) {
  if (!base.is_object() || !patch.is_object()) return patch;
  for (const auto& [key, value] : patch.items()) {
    base[key] = base.contains(key) ? merge_json(base[key], value) : value;
  }
  return base;
}

double parse_duration(const std::string& text, const std::string& what) {
  const auto bad = [&]() {
    return ConfigError(what + ": '" + text + "' is not a duration; use seconds (90), or a number with s, m, h or d "
                       "(90s, 10m, 1.5h, 1h30m)");
  };
  if (text.empty()) throw bad();
  double total = 0;
  std::size_t i = 0;
  bool any = false;
  while (i < text.size()) {
    std::size_t used = 0;
    double v = 0;
    try {
      v = std::stod(text.substr(i), &used);
    } catch (const std::exception&) {
      throw bad();
    }
    if (!(v >= 0) || !std::isfinite(v)) throw bad();
    i += used;
    double unit = 1;
    if (i < text.size()) {
      switch (text[i]) {
        case 's': unit = 1; break;
        case 'm': unit = 60; break;
        case 'h': unit = 3600; break;
        case 'd': unit = 86400; break;
        default: throw bad();
      }
      ++i;
    } else if (any) {
      throw bad();  // "1h30": the last number needs a unit too
    }
    total += v * unit;
    any = true;
  }
  return total;
}

std::string train_param_path(const std::string& name, const std::string& family) {
  if (family == "bert") {
    if (const auto* paths = bert_paths(name)) return paths->front();
  } else if (bert_paths(name) && (name == "heads" || name == "pooling" || name == "max_length")) {
    throw ConfigError("'" + name + "' is a BERT parameter (" + bert_paths(name)->front() + "), but the study's model.family is '" +
                      (family.empty() ? std::string("(Kiln's recommended model)") : family) +
                      "'; set model.family: bert (e.g. base_config: bert_tiny.yaml) or drop " + name);
  }
  for (const auto& [short_name, path] : kShortNames) {
    if (name == short_name) return path;
  }
  const auto dot = name.find('.');
  if (dot != std::string::npos && dot + 1 < name.size() && one_of(name.substr(0, dot), kRunSections)) return name;
  std::vector<std::string> shorts;
  for (const auto& s : kShortNames) shorts.push_back(s.first);
  for (const char* s : {"heads", "pooling", "max_length"}) shorts.push_back(std::string(s) + " (bert)");
  throw ConfigError("'" + name + "' is not a training parameter; use a dotted path into the run config (train.optimizer.lr, "
                    "model.params.dropout, ...) or one of the short names " + join(shorts));
}

nlohmann::json apply_train_params(const nlohmann::json& base, const nlohmann::json& params) {
  nlohmann::json out = base.is_object() ? base : nlohmann::json::object();
  if (family_of(out) == "bert") {
    for (const auto& [name, value] : params.items()) {
      const auto* paths = bert_paths(name);
      for (const auto& path : paths ? *paths : std::vector<std::string>{train_param_path(name, "bert")}) {
        set_path(out, path, value);
      }
    }
    // A wider model keeps BERT's 4x feed-forward unless the study sets intermediate_size itself.
    if (params.contains("hidden_size") && params["hidden_size"].is_number_integer() &&
        !params.contains("model.params.intermediate_size")) {
      set_path(out, "model.params.intermediate_size", 4 * params["hidden_size"].get<int64_t>());
    }
    return out;
  }
  std::optional<int64_t> layers;
  std::optional<nlohmann::json> width;
  for (const auto& [name, value] : params.items()) {
    if (name == "layers") {
      if (!value.is_number()) throw ConfigError("parameter layers must be a number, got " + value.dump());
      layers = value.get<int64_t>();
      continue;
    }
    if (name == "hidden_size") {
      width = value;
      continue;
    }
    const std::string path = train_param_path(name);
    nlohmann::json* node = &out;
    std::size_t start = 0;
    while (true) {
      const auto dot = path.find('.', start);
      const std::string key = path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
      if (!node->is_object()) *node = nlohmann::json::object();
      if (dot == std::string::npos) {
        (*node)[key] = value;
        break;
      }
      node = &(*node)[key];
      start = dot + 1;
    }
  }
  if (layers || width) {
    nlohmann::json& model = out["model"];
    if (!model.is_object()) model = nlohmann::json::object();
    nlohmann::json& mparams = model["params"];
    if (!mparams.is_object()) mparams = nlohmann::json::object();
    nlohmann::json w = 256;
    std::size_t n = 1;
    if (mparams.contains("hidden") && mparams["hidden"].is_array() && !mparams["hidden"].empty()) {
      w = mparams["hidden"][0];
      n = mparams["hidden"].size();
    } else if (mparams.contains("hidden") && mparams["hidden"].is_number()) {
      w = mparams["hidden"];
    }
    if (width) w = *width;
    if (layers) n = static_cast<std::size_t>(std::max<int64_t>(0, *layers));
    mparams["hidden"] = nlohmann::json::array();
    for (std::size_t k = 0; k < n; ++k) mparams["hidden"].push_back(w);
  }
  return out;
}

TuneConfig parse_tune_config(const nlohmann::json& j, const std::string& where, const std::filesystem::path& dir) {
  if (!j.is_object()) throw ConfigError(where + ": a tune config must be a mapping with `space` and an objective");
  TuneConfig c;
  c.path = where;
  c.dir = dir;
  c.raw = j;
  for (const auto& [key, value] : j.items()) {
    if (!one_of(key, kTopKeys)) {
      throw ConfigError(where + ": unknown key '" + key + "' (expected one of " + join(kTopKeys) + ")");
    }
  }
  if (!j.contains("space")) {
    throw ConfigError(where + ": `space` is missing; describe the parameters to tune, e.g. space: {lr: {type: float, "
                      "low: 1e-5, high: 1e-3, log: true}}");
  }
  if (!j["space"].is_object() || j["space"].empty()) {
    throw ConfigError(where + ": space must be a non-empty mapping of parameter name to distribution, got " +
                      j["space"].dump());
  }
  for (const auto& [name, spec] : j["space"].items()) {
    nlohmann::json domain = spec;
    if (domain.is_object()) domain.erase("grid");
    Distribution d = Distribution::from_json(domain, where + ": space." + name);
    try {
      d.validate(name);
    } catch (const ConfigError& e) {
      throw ConfigError(where + ": " + e.what());
    }
    if (spec.is_object() && spec.contains("grid")) c.grid[name] = parse_grid_values(spec["grid"], name, d, where);
    c.space.emplace_back(name, std::move(d));
  }
  if (j.contains("direction")) {
    const std::string d = read_string(j, "direction", where);
    if (d == "minimize") {
      c.direction = Direction::kMinimize;
    } else if (d == "maximize") {
      c.direction = Direction::kMaximize;
    } else {
      throw ConfigError(where + ": direction must be minimize or maximize, got '" + d + "'");
    }
  }
  const bool command = j.contains("objective") && j["objective"].is_object() && j["objective"].contains("command");
  if (j.contains("objective") && !j["objective"].is_object()) {
    throw ConfigError(where + ": objective must be a mapping (command + metric_regex, or train_file + val_file), got " +
                      j["objective"].dump());
  }
  if (command) {
    for (const auto& key : {"base_config", "data", "featurizer", "model", "train"}) {
      if (j.contains(key)) {
        throw ConfigError(where + ": '" + key + "' configures a Kiln training run, but objective.command runs a "
                          "command; drop one of them");
      }
    }
    if (!j.contains("direction")) {
      throw ConfigError(where + ": direction is missing; say whether the command's metric is to be minimized or "
                        "maximized (direction: minimize | maximize)");
    }
    parse_command_objective(j["objective"], where, c);
    c.metric_name = j.contains("metric") ? read_string(j, "metric", where) : "value";
  } else {
    parse_train_objective(j, where, c);
  }
  return c;
}

TuneConfig load_tune_config(const std::string& path) {
  const nlohmann::json j = core::load_yaml_file(path);
  std::error_code ec;
  auto abs = std::filesystem::absolute(path, ec);
  if (ec) abs = path;
  return parse_tune_config(j, path, abs.lexically_normal().parent_path());
}

}  // namespace kiln::tune
