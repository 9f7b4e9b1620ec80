#include "kiln/nn/ensemble.h"

#include <cmath>
#include <string>
#include <utility>

#include "kiln/core/error.h"

namespace kiln::nn {
namespace {

using json = nlohmann::json;

class EnsembleModel final : public Model {
 public:
  EnsembleModel(std::vector<std::shared_ptr<Model>> members, const std::vector<double>& temperatures,
                const std::vector<double>& weights, int64_t num_classes)
      : Model(num_classes), members_(std::move(members)), temperatures_(temperatures) {
    double total = 0;
    for (double w : weights) total += w;
    for (double w : weights) log_weights_.push_back(std::log(w / total));
    for (std::size_t i = 0; i < members_.size(); ++i) register_module("member" + std::to_string(i), members_[i]);
  }

  // Per member, log(w_i) + log_softmax(logits_i / T_i), side by side: [batch, members × classes].
  torch::Tensor embed(const Batch& batch) override {
    std::vector<torch::Tensor> parts;
    for (std::size_t i = 0; i < members_.size(); ++i) {
      const std::string prefix = ensemble_member_prefix(i);
      Batch mine(batch.size());
      for (const auto& [name, t] : batch.tensors()) {
        if (name.rfind(prefix, 0) == 0) mine.set(name.substr(prefix.size()), t);
      }
      const torch::Tensor logits = members_[i]->forward(mine).to(torch::kFloat32);
      parts.push_back(torch::log_softmax(logits / temperatures_[i], 1) + log_weights_[i]);
    }
    return torch::cat(parts, 1);
  }

  // log Σ_i w_i p_i, computed as a logsumexp over the members.
  torch::Tensor classify(const torch::Tensor& pooled) override {
    const auto n = static_cast<int64_t>(members_.size());
    return torch::logsumexp(pooled.view({pooled.size(0), n, num_classes()}), 1);
  }

  int64_t embedding_dim() const override { return static_cast<int64_t>(members_.size()) * num_classes(); }

  bool weight_decay_exempt(const std::string& name) const override {
    const auto [i, rest] = split(name);
    return i < members_.size() && members_[i]->weight_decay_exempt(rest);
  }
  bool zero_gradient_by_design(const std::string& name) const override {
    const auto [i, rest] = split(name);
    return i < members_.size() && members_[i]->zero_gradient_by_design(rest);
  }

 private:
  // "member3.output.weight" → (3, "output.weight"); (size, "") for any other name.
  std::pair<std::size_t, std::string> split(const std::string& name) const {
    const std::string head = "member";
    const auto dot = name.find('.');
    if (name.rfind(head, 0) != 0 || dot == std::string::npos) return {members_.size(), ""};
    try {
      return {static_cast<std::size_t>(std::stoul(name.substr(head.size(), dot - head.size()))), name.substr(dot + 1)};
    } catch (const std::exception&) {
      return {members_.size(), ""};
    }
  }

  std::vector<std::shared_ptr<Model>> members_;
  std::vector<double> temperatures_;
  std::vector<double> log_weights_;
};

struct MemberParams {
  ModelSpec spec;
  double temperature = 1.0, weight = 1.0;
};

std::vector<MemberParams> parse_members(const json& params) {
  if (!params.contains("members") || !params["members"].is_array() || params["members"].size() < 2) {
    throw ConfigError("model.params.members of family \"ensemble\" must list at least two members "
                      "({family, params, temperature, weight}), got " +
                      (params.contains("members") ? params["members"].dump() : std::string("nothing")));
  }
  std::vector<MemberParams> out;
  for (std::size_t i = 0; i < params["members"].size(); ++i) {
    const json& m = params["members"][i];
    const std::string field = "model.params.members[" + std::to_string(i) + "]";
    if (!m.is_object() || !m.contains("family")) throw ConfigError(field + " must be a mapping with a family");
    for (const auto& item : m.items()) {
      if (item.key() != "family" && item.key() != "params" && item.key() != "temperature" && item.key() != "weight") {
        throw ConfigError(field + "." + item.key() + " is not a member setting (family, params, temperature, weight)");
      }
    }
    MemberParams p;
    p.spec = model_spec_from_json({{"family", m["family"]}, {"params", m.value("params", json::object())}});
    if (p.spec.family == "ensemble") throw ConfigError(field + ": an ensemble cannot be a member of an ensemble");
    p.temperature = m.value("temperature", 1.0);
    p.weight = m.value("weight", 1.0);
    if (!(p.temperature > 0) || !std::isfinite(p.temperature)) {
      throw ConfigError(field + ".temperature must be a number > 0, got " + m["temperature"].dump());
    }
    if (!(p.weight > 0) || !std::isfinite(p.weight)) {
      throw ConfigError(field + ".weight must be a number > 0, got " + m["weight"].dump());
    }
    out.push_back(std::move(p));
  }
  return out;
}

json member_json(const ModelSpec& spec, double temperature, double weight) {
  return {{"family", spec.family}, {"params", spec.params}, {"temperature", temperature}, {"weight", weight}};
}

}  // namespace

std::string ensemble_member_prefix(std::size_t i) { return "member" + std::to_string(i) + "/"; }

Ensemble make_ensemble(std::vector<EnsembleMember> members, int64_t num_classes) {
  if (members.size() < 2) throw ConfigError("an ensemble needs at least two members");
  std::vector<std::shared_ptr<Model>> models;
  std::vector<double> temperatures, weights;
  json list = json::array();
  for (std::size_t i = 0; i < members.size(); ++i) {
    auto& m = members[i];
    if (!m.model || m.model->num_classes() != num_classes) {
      throw ConfigError("ensemble member " + std::to_string(i) + " does not have " + std::to_string(num_classes) +
                        " classes");
    }
    if (!(m.temperature > 0) || !(m.weight > 0)) {
      throw ConfigError("ensemble member " + std::to_string(i) + ": temperature and weight must be > 0");
    }
    list.push_back(member_json(resolve_spec(m.spec), m.temperature, m.weight));
    models.push_back(m.model);
    temperatures.push_back(m.temperature);
    weights.push_back(m.weight);
  }
  Ensemble out;
  out.spec.family = "ensemble";
  out.spec.params = {{"members", list}};
  out.model = std::make_shared<EnsembleModel>(std::move(models), temperatures, weights, num_classes);
  return out;
}

ModelFamily ensemble_family() {
  ModelFamily family;
  family.name = "ensemble";
  family.description = "average of member models' calibrated probabilities (each member reads member<i>/ tensors)";
  family.default_params = {{"members", json::array()}};
  family.validate = [](const json& params) {
    for (const auto& m : parse_members(params)) (void)resolve_spec(m.spec);
  };
  family.factory = [](const json& params, const InputSpec& inputs, int64_t num_classes) -> std::shared_ptr<Model> {
    const auto members = parse_members(params);
    std::vector<std::shared_ptr<Model>> models;
    std::vector<double> temperatures, weights;
    for (std::size_t i = 0; i < members.size(); ++i) {
      const std::string prefix = ensemble_member_prefix(i);
      InputSpec mine;
      for (auto t : inputs.tensors) {
        if (t.name.rfind(prefix, 0) != 0) continue;
        t.name = t.name.substr(prefix.size());
        mine.tensors.push_back(std::move(t));
      }
      if (mine.tensors.empty()) {
        throw ConfigError("ensemble member " + std::to_string(i) + " has no input: the featurizer must be the "
                          "ensemble featurizer, producing " + prefix + "<tensor> for every member (inputs: " +
                          inputs.describe() + ")");
      }
      models.push_back(make_model(members[i].spec, mine, num_classes));
      temperatures.push_back(members[i].temperature);
      weights.push_back(members[i].weight);
    }
    return std::make_shared<EnsembleModel>(std::move(models), temperatures, weights, num_classes);
  };
  return family;
}

}  // namespace kiln::nn
