#include "kiln/train/optimizer.h"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "kiln/core/error.h"
#include "kiln/train/lr_schedule.h"

namespace kiln::train {
namespace {

nlohmann::json read_golden(const std::string& name) {
  std::ifstream in(std::string(KILN_GOLDEN_DIR) + "/train/" + name);
  EXPECT_TRUE(in) << "missing golden file " << name << "; run tests/golden/make_train_golden.py";
  return nlohmann::json::parse(in);
}

void flatten(const nlohmann::json& j, std::vector<double>& out) {
  if (j.is_array()) {
    for (const auto& e : j) flatten(e, out);
  } else {
    out.push_back(j.get<double>());
  }
}

torch::Tensor tensor_of(const nlohmann::json& values, const nlohmann::json& shape, torch::Dtype dtype) {
  std::vector<double> flat;
  flatten(values, flat);
  return torch::tensor(flat, torch::kFloat64).reshape(shape.get<std::vector<int64_t>>()).to(dtype);
}

double max_abs_diff(const torch::Tensor& a, const nlohmann::json& want, const nlohmann::json& shape) {
  return (a.to(torch::kFloat64) - tensor_of(want, shape, torch::kFloat64)).abs().max().item<double>();
}

void expect_config_error(const OptimizerOptions& o, const std::string& message) {
  try {
    validate(o);
    ADD_FAILURE() << "expected ConfigError: " << message;
  } catch (const ConfigError& e) {
    EXPECT_EQ(std::string(e.what()), message);
  }
}

OptimizerOptions options_of(const nlohmann::json& j) {
  OptimizerOptions o;
  o.kind = j.at("kind").get<std::string>();
  o.lr = j.at("lr").get<double>();
  o.weight_decay = j.at("weight_decay").get<double>();
  o.betas = {j.at("betas")[0].get<double>(), j.at("betas")[1].get<double>()};
  o.eps = j.at("eps").get<double>();
  o.momentum = j.at("momentum").get<double>();
  o.nesterov = j.at("nesterov").get<bool>();
  return o;
}

// Runs each golden case on the quadratic 0.5 * sum(a * (p - t)^2), grad = a * (p - t).
TEST(OptimizerGolden, MatchesTorchOptimAfterSteps) {
  const auto golden = read_golden("optimizer.json");
  const auto& problem = golden.at("problem");
  const auto& shapes = problem.at("shapes");
  std::vector<torch::Tensor> a, t;
  for (std::size_t i = 0; i < shapes.size(); ++i) {
    a.push_back(tensor_of(problem.at("a")[i], shapes[i], torch::kFloat64));
    t.push_back(tensor_of(problem.at("t")[i], shapes[i], torch::kFloat64));
  }
  ASSERT_GE(golden.at("cases").size(), 8u);
  for (const auto& c : golden.at("cases")) {
    SCOPED_TRACE(c.at("name").get<std::string>());
    std::vector<torch::Tensor> params;
    for (std::size_t i = 0; i < shapes.size(); ++i) {
      params.push_back(tensor_of(problem.at("init")[i], shapes[i], torch::kFloat64).requires_grad_(true));
    }
    const auto options = options_of(c.at("options"));
    auto optimizer = make_optimizer(params, options);
    std::unique_ptr<LrSchedule> schedule;
    if (c.contains("schedule")) {
      ScheduleOptions so;
      so.kind = c.at("schedule").at("kind").get<std::string>();
      so.warmup_steps = c.at("schedule").at("warmup_steps").get<int64_t>();
      schedule = make_schedule(so, options.lr, c.at("schedule").at("total_steps").get<int64_t>());
    }
    const auto steps = c.at("steps").get<int>();
    for (int s = 0; s < steps; ++s) {
      {
        torch::NoGradGuard no_grad;
        for (std::size_t i = 0; i < params.size(); ++i) params[i].mutable_grad() = a[i] * (params[i] - t[i]);
      }
      if (schedule) set_lr(*optimizer, schedule->lr());
      EXPECT_NEAR(optimizer->param_groups()[0].options().get_lr(), c.at("lr")[s].get<double>(), 1e-15) << s;
      optimizer->step();
      if (schedule) schedule->step();
    }
    for (std::size_t i = 0; i < params.size(); ++i) {
      EXPECT_LE(max_abs_diff(params[i].detach(), c.at("params")[i], shapes[i]), 1e-10) << "param " << i;
    }
  }
}

TEST(OptimizerFactory, BuildsTheRequestedKind) {
  auto p = torch::zeros({2}, torch::requires_grad());
  OptimizerOptions o;
  auto adamw = make_optimizer({p}, o);
  ASSERT_NE(dynamic_cast<torch::optim::AdamW*>(adamw.get()), nullptr);
  const auto& ao = static_cast<const torch::optim::AdamWOptions&>(adamw->param_groups()[0].options());
  EXPECT_EQ(ao.weight_decay(), 0.01);
  EXPECT_EQ(ao.lr(), 1e-3);
  EXPECT_EQ(std::get<0>(ao.betas()), 0.9);
  EXPECT_EQ(std::get<1>(ao.betas()), 0.999);
  EXPECT_EQ(ao.eps(), 1e-8);

  o.kind = "sgd";
  o.momentum = 0.9;
  o.nesterov = true;
  auto sgd = make_optimizer({p}, o);
  ASSERT_NE(dynamic_cast<torch::optim::SGD*>(sgd.get()), nullptr);
  const auto& so = static_cast<const torch::optim::SGDOptions&>(sgd->param_groups()[0].options());
  EXPECT_EQ(so.weight_decay(), 0.0);
  EXPECT_EQ(so.momentum(), 0.9);
  EXPECT_TRUE(so.nesterov());
}

TEST(OptimizerFactory, SetLrUpdatesEveryGroup) {
  auto p = torch::zeros({2}, torch::requires_grad());
  auto q = torch::zeros({3}, torch::requires_grad());
  auto optimizer = make_optimizer({p}, OptimizerOptions{});
  optimizer->add_param_group(torch::optim::OptimizerParamGroup({q}, std::make_unique<torch::optim::AdamWOptions>(0.5)));
  set_lr(*optimizer, 0.25);
  ASSERT_EQ(optimizer->param_groups().size(), 2u);
  for (const auto& g : optimizer->param_groups()) EXPECT_EQ(g.options().get_lr(), 0.25);
}

TEST(OptimizerOptionsValidation, RejectsNonPositiveLr) {
  OptimizerOptions o;
  o.lr = -0.1;
  expect_config_error(o, "optimizer.lr must be > 0, got -0.1");
  o.lr = 0.0;
  expect_config_error(o, "optimizer.lr must be > 0, got 0");
}

TEST(OptimizerOptionsValidation, RejectsUnknownKind) {
  OptimizerOptions o;
  o.kind = "adam";
  expect_config_error(o, "optimizer.kind must be adamw or sgd, got 'adam'");
}

TEST(OptimizerOptionsValidation, RejectsNegativeWeightDecay) {
  OptimizerOptions o;
  o.weight_decay = -0.01;
  expect_config_error(o, "optimizer.weight_decay must be >= 0, got -0.01");
}

TEST(OptimizerOptionsValidation, RejectsBetasOutsideRange) {
  OptimizerOptions o;
  o.betas = {0.9, 1.0};
  expect_config_error(o, "optimizer.betas[1] must be in [0, 1), got 1");
  o.betas = {-0.1, 0.999};
  expect_config_error(o, "optimizer.betas[0] must be in [0, 1), got -0.1");
}

TEST(OptimizerOptionsValidation, RejectsNonPositiveEps) {
  OptimizerOptions o;
  o.eps = 0.0;
  expect_config_error(o, "optimizer.eps must be > 0, got 0");
}

TEST(OptimizerOptionsValidation, RejectsMomentumOutsideRange) {
  OptimizerOptions o;
  o.kind = "sgd";
  o.momentum = 1.0;
  expect_config_error(o, "optimizer.momentum must be in [0, 1), got 1");
}

TEST(OptimizerOptionsValidation, RejectsMomentumWithAdamW) {
  OptimizerOptions o;
  o.momentum = 0.9;
  expect_config_error(o,
                      "optimizer.momentum and optimizer.nesterov apply only to kind sgd, but kind is adamw (momentum "
                      "0.9, nesterov false); adamw's momentum is betas[0]");
}

TEST(OptimizerOptionsValidation, RejectsNesterovWithoutMomentum) {
  OptimizerOptions o;
  o.kind = "sgd";
  o.nesterov = true;
  expect_config_error(o, "optimizer.nesterov needs optimizer.momentum > 0, got momentum 0");
}

TEST(OptimizerOptionsValidation, DefaultWeightDecayDependsOnKind) {
  OptimizerOptions o;
  EXPECT_EQ(effective_weight_decay(o), 0.01);
  o.kind = "sgd";
  EXPECT_EQ(effective_weight_decay(o), 0.0);
  o.weight_decay = 0.5;
  EXPECT_EQ(effective_weight_decay(o), 0.5);
}

TEST(ClipGradNorm, MatchesTorchGolden) {
  const auto golden = read_golden("clip_grad_norm.json");
  for (const auto& c : golden.at("cases")) {
    SCOPED_TRACE(c.at("name").get<std::string>());
    const auto dtype = c.at("dtype") == "float32" ? torch::kFloat32 : torch::kFloat64;
    const double tol = dtype == torch::kFloat32 ? 1e-6 : 1e-12;
    std::vector<torch::Tensor> params;
    for (std::size_t i = 0; i < c.at("shapes").size(); ++i) {
      auto p = torch::zeros(c.at("shapes")[i].get<std::vector<int64_t>>(), torch::TensorOptions(dtype)).requires_grad_(true);
      if (!c.at("grads")[i].is_null()) p.mutable_grad() = tensor_of(c.at("grads")[i], c.at("shapes")[i], dtype);
      params.push_back(p);
    }
    const double max_norm = c.at("max_norm").is_string() ? std::numeric_limits<double>::infinity()
                                                         : c.at("max_norm").get<double>();
    const double total = clip_grad_norm(params, max_norm);
    EXPECT_NEAR(total, c.at("total_norm").get<double>(), tol * std::max(1.0, total));
    for (std::size_t i = 0; i < params.size(); ++i) {
      if (c.at("clipped")[i].is_null()) {
        EXPECT_FALSE(params[i].grad().defined());
        continue;
      }
      EXPECT_LE(max_abs_diff(params[i].grad(), c.at("clipped")[i], c.at("shapes")[i]), tol) << "param " << i;
    }
  }
}

TEST(ClipGradNorm, NoGradientsGiveZero) {
  std::vector<torch::Tensor> params = {torch::zeros({3}, torch::requires_grad())};
  EXPECT_EQ(clip_grad_norm(params, 1.0), 0.0);
  EXPECT_EQ(clip_grad_norm({}, 1.0), 0.0);
}

TEST(ClipGradNorm, NonFiniteNormLeavesGradientsUnchanged) {
  auto p = torch::zeros({2}, torch::requires_grad());
  p.mutable_grad() = torch::tensor({std::numeric_limits<float>::infinity(), 1.0f});
  EXPECT_TRUE(std::isinf(clip_grad_norm({p}, 1.0)));
  EXPECT_EQ(p.grad()[1].item<float>(), 1.0f);
}

TEST(ClipGradNorm, RejectsNonPositiveMaxNorm) {
  try {
    (void)clip_grad_norm({}, 0.0);
    ADD_FAILURE() << "expected ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_EQ(std::string(e.what()),
              "clip_grad_norm: max_norm must be > 0 (infinity measures without clipping), got 0");
  }
}

TEST(ClipGradNorm, GradNormsPerNamedParameter) {
  torch::nn::Sequential net(torch::nn::Linear(3, 2), torch::nn::Linear(2, 1));
  auto x = torch::ones({4, 3});
  net->forward(x).sum().backward();
  net[1]->as<torch::nn::Linear>()->bias.mutable_grad() = torch::Tensor();  // leaves that one out
  const auto norms = grad_norms(*net);
  ASSERT_EQ(norms.size(), 3u);
  EXPECT_EQ(norms[0].first, "0.weight");
  EXPECT_EQ(norms[1].first, "0.bias");
  EXPECT_EQ(norms[2].first, "1.weight");
  const auto named = net->named_parameters();
  for (const auto& [name, norm] : norms) {
    EXPECT_NEAR(norm, named[name].grad().norm().item<double>(), 1e-12) << name;
  }
  // The global norm is the L2 norm of the per-parameter norms.
  double sq = 0;
  for (const auto& [name, norm] : norms) sq += norm * norm;
  EXPECT_NEAR(clip_grad_norm(net->parameters(), std::numeric_limits<double>::infinity()), std::sqrt(sq), 1e-5);
}

}  // namespace
}  // namespace kiln::train
