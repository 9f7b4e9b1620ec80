#include "kiln/train/optimizer.h"

#include <cmath>
#include <limits>
#include <sstream>
#include <tuple>

#include "kiln/core/error.h"
#include "kiln/core/format.h"

namespace kiln::train {

namespace {

[[noreturn]] void optimizer_fail(const std::string& field, const std::string& rule, const std::string& got) {
  throw ConfigError("optimizer." + field + " must be " + rule + ", got " + got);
}

}  // namespace

void validate(const OptimizerOptions& o) {
  if (o.kind != "adamw" && o.kind != "sgd") optimizer_fail("kind", "adamw or sgd", "'" + o.kind + "'");
  if (!(o.lr > 0.0) || !std::isfinite(o.lr)) optimizer_fail("lr", "> 0", core::format_number(o.lr));
  if (o.weight_decay && (!(*o.weight_decay >= 0.0) || !std::isfinite(*o.weight_decay))) {
    optimizer_fail("weight_decay", ">= 0", core::format_number(*o.weight_decay));
  }
  for (int i = 0; i < 2; ++i) {
    if (!(o.betas[i] >= 0.0 && o.betas[i] < 1.0)) optimizer_fail("betas[" + std::to_string(i) + "]", "in [0, 1)", core::format_number(o.betas[i]));
  }
  if (!(o.eps > 0.0) || !std::isfinite(o.eps)) optimizer_fail("eps", "> 0", core::format_number(o.eps));
  if (!(o.momentum >= 0.0 && o.momentum < 1.0)) optimizer_fail("momentum", "in [0, 1)", core::format_number(o.momentum));
  if (o.kind == "adamw" && (o.momentum != 0.0 || o.nesterov)) {
    throw ConfigError("optimizer.momentum and optimizer.nesterov apply only to kind sgd, but kind is adamw (momentum " +
                      core::format_number(o.momentum) + ", nesterov " + (o.nesterov ? "true" : "false") +
                      "); adamw's momentum is betas[0]");
  }
  if (o.nesterov && o.momentum == 0.0) {
    throw ConfigError("optimizer.nesterov needs optimizer.momentum > 0, got momentum 0");
  }
}

namespace {

// State key torch's optimizers use for a parameter.
std::string state_key(const torch::Tensor& p) { return c10::guts::to_string(p.unsafeGetTensorImpl()); }

// Runs `dense_step` (the torch optimizer's own step) with every sparse gradient hidden, so torch
// updates exactly the parameters with dense gradients, then hands each parameter with a sparse
// gradient, with its group's options, to `sparse_step`.
template <typename Options, typename DenseStep, typename SparseStep>
torch::Tensor step_mixed(std::vector<torch::optim::OptimizerParamGroup>& groups, DenseStep dense_step,
                         SparseStep sparse_step) {
  std::vector<std::pair<torch::Tensor, const Options*>> sparse;
  std::vector<torch::Tensor> sparse_grads;
  for (auto& group : groups) {
    for (auto& p : group.params()) {
      if (p.grad().defined() && p.grad().is_sparse()) {
        sparse.emplace_back(p, &static_cast<const Options&>(group.options()));
        sparse_grads.push_back(p.grad());
        p.mutable_grad() = torch::Tensor();
      }
    }
  }
  auto loss = dense_step();
  torch::NoGradGuard no_grad;
  for (std::size_t i = 0; i < sparse.size(); ++i) {
    auto& p = sparse[i].first;
    p.mutable_grad() = sparse_grads[i];
    const auto g = sparse_grads[i].coalesce();
    if (g._nnz() == 0) continue;
    sparse_step(p, g._indices()[0], g._values(), *sparse[i].second);
  }
  return loss;
}

// AdamW that also takes sparse (row) gradients, as EmbeddingBag tables produce when only the rows
// a batch touches have a gradient. Dense gradients: torch's AdamW unchanged. Sparse gradients:
// the lazy variant (TensorFlow's LazyAdam, torch's SparseAdam): moments and weights of the touched
// rows are updated with AdamW's formula (decoupled weight decay, bias correction by the parameter's
// step count); untouched rows keep their moments and weights. A step then costs O(touched rows)
// instead of O(table), which is what makes large TF-IDF vocabularies train fast.
class RowSparseAdamW : public torch::optim::AdamW {
 public:
  using AdamW::AdamW;

  torch::Tensor step(LossClosure closure = nullptr) override {
    return step_mixed<torch::optim::AdamWOptions>(
        param_groups_, [&] { return AdamW::step(closure); },
        [&](torch::Tensor& p, const torch::Tensor& rows, const torch::Tensor& values,
            const torch::optim::AdamWOptions& o) {
          auto& slot = state_[state_key(p)];
          if (!slot) {
            auto st = std::make_unique<torch::optim::AdamWParamState>();
            st->step(0);
            st->exp_avg(torch::zeros_like(p, torch::MemoryFormat::Preserve));
            st->exp_avg_sq(torch::zeros_like(p, torch::MemoryFormat::Preserve));
            slot = std::move(st);
          }
          auto& st = static_cast<torch::optim::AdamWParamState&>(*slot);
          st.step(st.step() + 1);
          const double beta1 = std::get<0>(o.betas());
          const double beta2 = std::get<1>(o.betas());
          auto w = p.detach();
          auto wr = w.index_select(0, rows);
          if (o.weight_decay() != 0) wr.mul_(1 - o.lr() * o.weight_decay());
          auto m = st.exp_avg().index_select(0, rows).mul_(beta1).add_(values, 1 - beta1);
          auto v = st.exp_avg_sq().index_select(0, rows).mul_(beta2).addcmul_(values, values, 1 - beta2);
          const double bc1 = 1 - std::pow(beta1, static_cast<double>(st.step()));
          const double bc2 = 1 - std::pow(beta2, static_cast<double>(st.step()));
          const auto denom = (v.sqrt() / std::sqrt(bc2)).add_(o.eps());
          wr.addcdiv_(m, denom, -o.lr() / bc1);
          w.index_copy_(0, rows, wr);
          st.exp_avg().index_copy_(0, rows, m);
          st.exp_avg_sq().index_copy_(0, rows, v);
        });
  }
};

// SGD that also takes sparse (row) gradients: dense ones through torch's SGD; sparse ones update
// only the touched rows (weight decay and momentum applied to those rows, a row's momentum buffer
// starting from zero, which equals torch's first-step copy with dampening 0).
class RowSparseSGD : public torch::optim::SGD {
 public:
  using SGD::SGD;

  torch::Tensor step(LossClosure closure = nullptr) override {
    return step_mixed<torch::optim::SGDOptions>(
        param_groups_, [&] { return SGD::step(closure); },
        [&](torch::Tensor& p, const torch::Tensor& rows, const torch::Tensor& values,
            const torch::optim::SGDOptions& o) {
          auto w = p.detach();
          auto wr = w.index_select(0, rows);
          auto d = values.clone();
          if (o.weight_decay() != 0) d.add_(wr, o.weight_decay());
          if (o.momentum() != 0) {
            auto& slot = state_[state_key(p)];
            if (!slot) {
              auto st = std::make_unique<torch::optim::SGDParamState>();
              st->momentum_buffer(torch::zeros_like(p, torch::MemoryFormat::Preserve));
              slot = std::move(st);
            }
            auto& buf = static_cast<torch::optim::SGDParamState&>(*slot).momentum_buffer();
            auto br = buf.index_select(0, rows).mul_(o.momentum()).add_(d, 1 - o.dampening());
            buf.index_copy_(0, rows, br);
            d = o.nesterov() ? d.add(br, o.momentum()) : br;
          }
          wr.add_(d, -o.lr());
          w.index_copy_(0, rows, wr);
        });
  }
};

}  // namespace

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
    return std::make_unique<RowSparseAdamW>(std::move(params), o);
  }
  auto o = torch::optim::SGDOptions(options.lr)
               .momentum(options.momentum)
               .dampening(0.0)
               .weight_decay(wd)
               .nesterov(options.nesterov);
  return std::make_unique<RowSparseSGD>(std::move(params), o);
}

void clear_gradients(const std::vector<torch::Tensor>& params) {
  for (auto p : params) {
    auto& g = p.mutable_grad();
    if (!g.defined()) continue;
    if (g.is_sparse()) {
      g = torch::Tensor();  // the next backward produces a fresh sparse gradient
    } else {
      g = g.detach();  // as torch's zero_grad: keep the buffer, no graph, zeros
      g.zero_();
    }
  }
}

void set_lr(torch::optim::Optimizer& optimizer, double lr) {
  for (auto& group : optimizer.param_groups()) group.options().set_lr(lr);
}

double clip_grad_norm(const std::vector<torch::Tensor>& params, double max_norm, std::vector<double>* per_param) {
  if (!(max_norm > 0.0)) {
    throw ConfigError("clip_grad_norm: max_norm must be > 0 (infinity measures without clipping), got " +
                      core::format_number(max_norm));
  }
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> grads;
  std::vector<torch::Tensor> norms;
  std::vector<std::size_t> slot;
  for (std::size_t i = 0; i < params.size(); ++i) {
    auto p = params[i];
    if (!p.grad().defined()) continue;
    // A sparse gradient may list a row more than once; coalescing sums those entries so the norm
    // (and the later scaling) sees the gradient it stands for.
    if (p.grad().is_sparse() && !p.grad().is_coalesced()) p.mutable_grad() = p.grad().coalesce();
    const auto& g = p.grad();
    grads.push_back(g.is_sparse() ? g._values() : g);
    norms.push_back(torch::norm(grads.back().detach(), 2));
    slot.push_back(i);
  }
  if (per_param) per_param->assign(params.size(), std::numeric_limits<double>::quiet_NaN());
  if (grads.empty()) return 0.0;
  const auto device = norms.front().device();
  for (auto& n : norms) n = n.to(device);
  // One transfer for all norms: the per-parameter values and the total come back together.
  const auto stacked = torch::stack(norms).to(torch::kCPU, torch::kFloat64);
  const double* nv = stacked.data_ptr<double>();
  if (per_param) {
    for (std::size_t k = 0; k < slot.size(); ++k) (*per_param)[slot[k]] = nv[k];
  }
  // The total from the float32 norms, as torch computes it, then read back as a double.
  const auto total = torch::norm(torch::stack(norms), 2);
  const double total_value = total.item<double>();
  if (!std::isfinite(total_value)) return total_value;
  // As torch: max_norm / (total + 1e-6) evaluated as reciprocal * max_norm, clamped to 1. A factor of
  // exactly 1 leaves every gradient as it is, so the multiply is skipped.
  const auto coef = ((total + 1e-6).reciprocal() * max_norm).clamp_max(1.0);
  if (coef.item<double>() >= 1.0) return total_value;
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
