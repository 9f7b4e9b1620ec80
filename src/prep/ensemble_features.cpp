#include "kiln/prep/ensemble.h"

#include <utility>

#include "kiln/core/error.h"
#include "kiln/nn/ensemble.h"

namespace kiln::prep {
namespace {

using json = nlohmann::json;

std::string state_prefix(std::size_t i) { return "member" + std::to_string(i) + "-"; }

class EnsemblePreprocessor final : public Preprocessor {
 public:
  explicit EnsemblePreprocessor(std::vector<std::shared_ptr<const Preprocessor>> members) : members_(std::move(members)) {
    if (members_.size() < 2) {
      throw ConfigError("featurizer.members: an ensemble needs at least two member featurizers, got " +
                        std::to_string(members_.size()));
    }
    for (const auto& m : members_) {
      if (!m) throw ConfigError("featurizer.members: a member featurizer is missing");
    }
  }

  std::string type() const override { return "ensemble"; }
  json options() const override {
    json members = json::array();
    for (const auto& m : members_) members.push_back(m->spec());
    return {{"members", members}};
  }

  void fit(const data::Examples& examples) override {
    // Members are shared and immutable once fitted: fitting builds new ones.
    for (auto& m : members_) {
      auto fresh = make_preprocessor(m->spec());
      fresh->fit(examples);
      m = std::move(fresh);
    }
  }

  nn::Batch encode(const data::Examples& examples) const override {
    nn::Batch out(static_cast<int64_t>(examples.size()));
    for (std::size_t i = 0; i < members_.size(); ++i) add(out, i, members_[i]->encode(examples));
    return out;
  }

  nn::Batch encode_observed(const data::Examples& examples, EncodeObservations& observed) const override {
    observed = {};
    nn::Batch out(static_cast<int64_t>(examples.size()));
    for (std::size_t i = 0; i < members_.size(); ++i) {
      if (observed.oov_rates.empty()) {
        add(out, i, members_[i]->encode_observed(examples, observed));
      } else {
        add(out, i, members_[i]->encode(examples));
      }
    }
    return out;
  }

  nn::InputSpec input_spec() const override {
    nn::InputSpec out;
    for (std::size_t i = 0; i < members_.size(); ++i) {
      for (auto t : members_[i]->input_spec().tensors) {
        t.name = ensemble_member_prefix(i) + t.name;
        out.tensors.push_back(std::move(t));
      }
    }
    return out;
  }

  // Member 0's: the features the data profile and drift track (primary_tensor_name).
  std::string feature_name(int64_t j) const override { return members_.front()->feature_name(j); }

  StateFiles state_files() const override {
    StateFiles out;
    for (std::size_t i = 0; i < members_.size(); ++i) {
      for (const auto& [role, contents] : members_[i]->state_files()) out[state_prefix(i) + role] = contents;
    }
    return out;
  }

  bool augments() const override {
    for (const auto& m : members_) {
      if (m->augments()) return true;
    }
    return false;
  }

  nn::Batch augment(const nn::Batch& batch) const override {
    nn::Batch out = batch;
    for (std::size_t i = 0; i < members_.size(); ++i) {
      if (!members_[i]->augments()) continue;
      add(out, i, members_[i]->augment(member_batch(batch, i)));
    }
    return out;
  }

  std::optional<std::vector<double>> oov_rates(const std::vector<std::string>& texts) const override {
    for (const auto& m : members_) {
      if (auto r = m->oov_rates(texts)) return r;
    }
    return std::nullopt;
  }

 private:
  static void add(nn::Batch& out, std::size_t i, const nn::Batch& part) {
    for (const auto& [name, t] : part.tensors()) out.set(ensemble_member_prefix(i) + name, t);
  }
  static nn::Batch member_batch(const nn::Batch& batch, std::size_t i) {
    const std::string prefix = ensemble_member_prefix(i);
    nn::Batch out(batch.size());
    for (const auto& [name, t] : batch.tensors()) {
      if (name.rfind(prefix, 0) == 0) out.set(name.substr(prefix.size()), t);
    }
    return out;
  }

  std::vector<std::shared_ptr<const Preprocessor>> members_;
};

std::vector<json> member_specs(const json& spec) {
  if (!spec.contains("members") || !spec["members"].is_array()) {
    throw ConfigError("featurizer.members must be a list of featurizers (one per member model), got " +
                      (spec.contains("members") ? spec["members"].dump() : std::string("nothing")));
  }
  for (auto it = spec.begin(); it != spec.end(); ++it) {
    if (it.key() != "type" && it.key() != "members") {
      throw ConfigError("featurizer." + it.key() + " is not an option of the ensemble featurizer (it has: members)");
    }
  }
  return spec["members"].get<std::vector<json>>();
}

}  // namespace

std::string ensemble_member_prefix(std::size_t i) { return nn::ensemble_member_prefix(i); }

std::string primary_tensor_name(const nn::InputSpec& spec, const std::string& name) {
  if (spec.find(name)) return name;
  const std::string member = ensemble_member_prefix(0) + name;
  return spec.find(member) ? member : name;
}

std::shared_ptr<const Preprocessor> make_ensemble_preprocessor(std::vector<std::shared_ptr<const Preprocessor>> members) {
  return std::make_shared<EnsemblePreprocessor>(std::move(members));
}

PreprocessorType ensemble_type() {
  PreprocessorType t;
  t.name = "ensemble";
  t.description = "the featurizers of an ensemble's member models, each member's tensors under member<i>/";
  t.make = [](const json& spec) -> std::unique_ptr<Preprocessor> {
    std::vector<std::shared_ptr<const Preprocessor>> members;
    for (const auto& m : member_specs(spec)) members.push_back(make_preprocessor(m));
    return std::make_unique<EnsemblePreprocessor>(std::move(members));
  };
  t.load = [](const json& spec, const StateFiles& files) -> std::unique_ptr<Preprocessor> {
    const std::vector<json> specs = member_specs(spec);
    std::vector<std::shared_ptr<const Preprocessor>> members;
    for (std::size_t i = 0; i < specs.size(); ++i) {
      StateFiles mine;
      const std::string prefix = state_prefix(i);
      for (const auto& [role, contents] : files) {
        if (role.rfind(prefix, 0) == 0) mine[role.substr(prefix.size())] = contents;
      }
      members.push_back(load_preprocessor(specs[i], mine));
    }
    return std::make_unique<EnsemblePreprocessor>(std::move(members));
  };
  return t;
}

}  // namespace kiln::prep
