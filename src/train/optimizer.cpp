#include "kiln/train/optimizer.h"

#include <cmath>
#include <sstream>
#include <tuple>

#include "kiln/core/error.h"

namespace kiln::train {

namespace {

std::string num(double v) {
  std::ostringstream s;
  s << v;
  return s.str();
}

[[noreturn]] void fail(const std::string& field, const std::string& rule, const std::string& got) {
  throw ConfigError("optimizer." + field + " must be " + rule + ", got " + got);
}

}  // namespace

void validate(const OptimizerOptions& o) {
  if (o.kind != "adamw" && o.kind != "sgd") fail("kind", "adamw or sgd", "'" + o.kind + "'");
  if (!(o.lr > 0.0) || !std::isfinite(o.lr)) fail("lr", "> 0", num(o.lr));
  if (o.weight_decay && (!(*o.weight_decay >= 0.0) || !std::isfinite(*o.weight_decay))) {
    fail("weight_decay", ">= 0", num(*o.weight_decay));
  }
  for (int i = 0; i < 2; ++i) {
    if (!(o.betas[i] >= 0.0 && o.betas[i] < 1.0)) fail("betas[" + std::to_string(i) + "]", "in [0, 1)", num(o.betas[i]));
  }
  if (!(o.eps > 0.0) || !std::isfinite(o.eps)) fail("eps", "> 0", num(o.eps));
  if (!(o.momentum >= 0.0 && o.momentum < 1.0)) fail("momentum", "in [0, 1)", num(o.momentum));
  if (o.kind == "adamw" && (o.momentum != 0.0 || o.nesterov)) {
    throw ConfigError("optimizer.momentum and optimizer.nesterov apply only to kind sgd, but kind is adamw (momentum " +
                      num(o.momentum) + ", nesterov " + (o.nesterov ? "true" : "false") +
                      "); adamw's momentum is betas[0]");
  }
  if (o.nesterov && o.momentum == 0.0) {
    throw ConfigError("optimizer.nesterov needs optimizer.momentum > 0, got momentum 0");
  }
}

double effective_weight_decay(const OptimizerOptions& o) {
  if (o.weight_decay) return *o.weight_decay;
  return o.kind == "adamw" ? 0.01 : 0.0;
}

std::unique_ptr<torch::optim::Optimizer> make_optimizer(std::vector<torch::Tensor> params,
                                                        const OptimizerOptions& options) {
  validate(options);
  const double wd = effective_weight_decay(options);
  if (options.kind == "adamw") {
    auto o = torch::optim::AdamWOptions(options.lr)
                 .betas(std::make_tuple(options.betas[0], options.betas[1]))
                 .eps(options.eps)
                 .weight_decay(wd)
                 .amsgrad(false);
    return std::make_unique<torch::optim::AdamW>(std::move(params), o);
  }
  auto o = torch::optim::SGDOptions(options.lr)
               .momentum(options.momentum)
               .dampening(0.0)
               .weight_decay(wd)
               .nesterov(options.nesterov);
  return std::make_unique<torch::optim::SGD>(std::move(params), o);
}

void set_lr(torch::optim::Optimizer& optimizer, double lr) {
  for (auto& group : optimizer.param_groups()) group.options().set_lr(lr);
}

double clip_grad_norm(const std::vector<torch::Tensor>& params, double max_norm) {
  if (!(max_norm > 0.0)) {
    throw ConfigError("clip_grad_norm: max_norm must be > 0 (infinity measures without clipping), got " +
                      num(max_norm));
  }
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> grads;
  std::vector<torch::Tensor> norms;
  for (const auto& p : params) {
    const auto& g = p.grad();
    if (!g.defined()) continue;
    grads.push_back(g);
    norms.push_back(torch::norm(g.detach(), 2));
  }
  if (grads.empty()) return 0.0;
  const auto device = norms.front().device();
  for (auto& n : norms) n = n.to(device);
  const auto total = torch::norm(torch::stack(norms), 2);
  const double total_value = total.item<double>();
  if (!std::isfinite(total_value)) return total_value;
  // As torch: max_norm / (total + 1e-6) evaluated as reciprocal * max_norm, clamped to 1.
  const auto coef = ((total + 1e-6).reciprocal() * max_norm).clamp_max(1.0);
  for (auto& g : grads) g.detach().mul_(coef.to(g.device()));
  return total_value;
}

std::vector<std::pair<std::string, double>> grad_norms(const torch::nn::Module& module) {
  torch::NoGradGuard no_grad;
  std::vector<std::pair<std::string, double>> out;
  for (const auto& item : module.named_parameters(/*recurse=*/true)) {
    const auto& g = item.value().grad();
    if (!g.defined()) continue;
    out.emplace_back(item.key(), torch::norm(g.detach(), 2).item<double>());
  }
  return out;
}

}  // namespace kiln::train
