#include "kiln/train/optimizer.h"

#include <cmath>
#include <limits>
#include <sstream>
#include <tuple>

#include "kiln/core/error.h"
#include "kiln/core/format.h"
#include "kiln/core/process_memory.h"
#include "fused_update.h"

namespace kiln::train {
namespace {

/// A zeroed state tensor shaped as p; a large one (an embedding table's moments) backed by huge
/// pages: the sparse updates touch its rows at random.
torch::Tensor zeros_for_state(const torch::Tensor& p) {
  if (!p.device().is_cpu() || !p.is_contiguous() || p.nbytes() < (std::size_t{8} << 20)) {
    return torch::zeros_like(p, torch::MemoryFormat::Preserve);
  }
  auto t = torch::empty_like(p, torch::MemoryFormat::Preserve);
  core::advise_huge_pages(t.data_ptr(), static_cast<std::size_t>(t.nbytes()));
  return t.zero_();
}

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

// `g` (sparse) with every index listed once, in order. A row gradient (one sparse dimension) on the
// host whose rows are already strictly increasing is marked coalesced instead of sorted: the
// embedding backward builds such gradients, but AccumulateGrad re-wraps them without the flag.
torch::Tensor coalesced(const torch::Tensor& g) {
  if (g.is_coalesced()) return g;
  if (g.sparse_dim() == 1 && g.device().is_cpu()) {
    const auto rows = g._indices().select(0, 0).contiguous();
    const int64_t* r = rows.data_ptr<int64_t>();
    const int64_t n = rows.numel();
    int64_t k = 1;
    while (k < n && r[k - 1] < r[k]) ++k;
    if (k >= n) {
      auto out = g;
      out._coalesced_(true);
      return out;
    }
  }
  return g.coalesce();
}

// State key torch's optimizers use for a parameter.
std::string state_key(const torch::Tensor& p) { return c10::guts::to_string(p.unsafeGetTensorImpl()); }

// Runs a step over every parameter with a gradient: `mine(p, grad, options)` takes the ones it can
// update itself (returning true); torch's own `dense_step` then runs with exactly those gradients
// hidden, so it updates the rest as torch would. A closure runs first, once, with gradients on.
template <typename Options, typename DenseStep, typename Mine>
torch::Tensor step_mixed(std::vector<torch::optim::OptimizerParamGroup>& groups,
                         const torch::optim::Optimizer::LossClosure& closure, DenseStep dense_step, Mine mine) {
  torch::Tensor loss;
  if (closure) {
    torch::AutoGradMode enable_grad(true);
    loss = closure();
  }
  torch::NoGradGuard no_grad;
  std::vector<std::pair<torch::Tensor, torch::Tensor>> handled;
  bool rest = false;
  for (auto& group : groups) {
    const auto& options = static_cast<const Options&>(group.options());
    for (auto& p : group.params()) {
      if (!p.grad().defined()) continue;
      if (p.grad().is_sparse()) p.mutable_grad() = coalesced(p.grad());
      if (mine(p, p.grad(), options)) {
        handled.emplace_back(p, p.grad());
      } else {
        rest = true;
      }
    }
  }
  if (rest) {
    for (auto& [p, g] : handled) p.mutable_grad() = torch::Tensor();
    (void)dense_step();
    for (auto& [p, g] : handled) p.mutable_grad() = g;
  }
  return loss;
}

// AdamW that also takes sparse (row) gradients, as EmbeddingBag tables produce when only the rows
// a batch touches have a gradient. Dense gradients: torch's AdamW formula. Sparse gradients: the
// lazy variant (TensorFlow's LazyAdam, torch's SparseAdam): moments and weights of the touched
// rows are updated with AdamW's formula (decoupled weight decay, bias correction by the parameter's
// step count); untouched rows keep their moments and weights. A step then costs O(touched rows)
// instead of O(table), which is what makes large TF-IDF vocabularies train fast. CPU float
// parameters go through fused in-place kernels (fused_update.h); others through torch's ops.
class RowSparseAdamW : public torch::optim::AdamW {
 public:
  using AdamW::AdamW;

  torch::Tensor step(LossClosure closure = nullptr) override {
    return step_mixed<torch::optim::AdamWOptions>(
        param_groups_, closure, [&] { return AdamW::step(nullptr); },
        [&](torch::Tensor& p, const torch::Tensor& grad, const torch::optim::AdamWOptions& o) {
          if (o.amsgrad()) return false;
          const bool sparse = grad.is_sparse();
          const auto values = sparse ? grad._values() : grad;
          if (sparse && grad._nnz() == 0) return true;  // no row touched: no step for this table
          const bool fused_grad = fusable(p) && fusable(values) && values.scalar_type() == p.scalar_type();
          if (!sparse && !fused_grad) return false;  // torch's AdamW
          auto& st = state_of(p);
          const bool fused = fused_grad && fusable(st.exp_avg()) && fusable(st.exp_avg_sq()) &&
                             st.exp_avg().scalar_type() == p.scalar_type() &&
                             st.exp_avg_sq().scalar_type() == p.scalar_type();
          if (!sparse && !fused) return false;  // torch's AdamW (the state is what it would create)
          st.step(st.step() + 1);
          auto w = p.detach();
          if (!fused) {
            lazy_step_with_ops(w, st, grad._indices()[0], values, o);
            return true;
          }
          AdamWStep s;
          s.lr = o.lr();
          s.weight_decay = o.weight_decay();
          s.beta1 = std::get<0>(o.betas());
          s.beta2 = std::get<1>(o.betas());
          s.eps = o.eps();
          s.step = st.step();
          if (sparse) {
            adamw_rows(w, st.exp_avg(), st.exp_avg_sq(), grad._indices()[0], values, s);
          } else {
            adamw_dense(w, st.exp_avg(), st.exp_avg_sq(), values, s);
          }
          return true;
        });
  }

 private:
  torch::optim::AdamWParamState& state_of(const torch::Tensor& p) {
    auto& slot = state_[state_key(p)];
    if (!slot) {
      auto st = std::make_unique<torch::optim::AdamWParamState>();
      st->step(0);
      st->exp_avg(zeros_for_state(p));
      st->exp_avg_sq(zeros_for_state(p));
      slot = std::move(st);
    }
    return static_cast<torch::optim::AdamWParamState&>(*slot);
  }

  // The lazy update with LibTorch ops, for parameters the fused kernel does not take (GPU).
  static void lazy_step_with_ops(torch::Tensor& w, torch::optim::AdamWParamState& st, const torch::Tensor& rows,
                                 const torch::Tensor& values, const torch::optim::AdamWOptions& o) {
    const double beta1 = std::get<0>(o.betas());
    const double beta2 = std::get<1>(o.betas());
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
        param_groups_, closure, [&] { return SGD::step(nullptr); },
        [&](torch::Tensor& p, const torch::Tensor& grad, const torch::optim::SGDOptions& o) {
          if (!grad.is_sparse()) return false;  // torch's SGD
          if (grad._nnz() == 0) return true;
          torch::Tensor* buf = nullptr;
          if (o.momentum() != 0) {
            auto& slot = state_[state_key(p)];
            if (!slot) {
              auto st = std::make_unique<torch::optim::SGDParamState>();
              st->momentum_buffer(torch::zeros_like(p, torch::MemoryFormat::Preserve));
              slot = std::move(st);
            }
            buf = &static_cast<torch::optim::SGDParamState&>(*slot).momentum_buffer();
          }
          auto w = p.detach();
          const auto rows = grad._indices()[0];
          const auto values = grad._values();
          if (o.dampening() == 0 && fusable(w) && fusable(values) && values.scalar_type() == w.scalar_type() &&
              (!buf || fusable(*buf))) {
            sgd_rows(w, buf, rows, values, o.lr(), o.weight_decay(), o.momentum(), o.nesterov());
            return true;
          }
          auto wr = w.index_select(0, rows);
          auto d = values.clone();
          if (o.weight_decay() != 0) d.add_(wr, o.weight_decay());
          if (buf) {
            auto br = buf->index_select(0, rows).mul_(o.momentum()).add_(d, 1 - o.dampening());
            buf->index_copy_(0, rows, br);
            d = o.nesterov() ? d.add(br, o.momentum()) : br;
          }
          wr.add_(d, -o.lr());
          w.index_copy_(0, rows, wr);
          return true;
        });
  }
};

}  // namespace

double effective_weight_decay(const OptimizerOptions& o) {
  if (o.weight_decay) return *o.weight_decay;
  return o.kind == "adamw" ? 0.01 : 0.0;
}

std::unique_ptr<torch::optim::Optimizer> make_optimizer(std::vector<torch::Tensor> params,
                                                        const OptimizerOptions& options,
                                                        const std::vector<bool>& no_decay) {
  validate(options);
  if (!no_decay.empty() && no_decay.size() != params.size()) {
    throw ConfigError("make_optimizer: no_decay has " + std::to_string(no_decay.size()) + " flags for " +
                      std::to_string(params.size()) + " parameters");
  }
  const double wd = effective_weight_decay(options);
  // Group 0: decayed parameters; group 1 (only when some are exempt and wd > 0): weight decay 0.
  std::vector<torch::Tensor> decayed, exempt;
  for (std::size_t i = 0; i < params.size(); ++i) {
    (!no_decay.empty() && no_decay[i] && wd != 0 ? exempt : decayed).push_back(params[i]);
  }
  auto groups = [&](const auto& o) {
    using Options = std::decay_t<decltype(o)>;
    std::vector<torch::optim::OptimizerParamGroup> g;
    if (!decayed.empty() || exempt.empty()) g.emplace_back(decayed, std::make_unique<Options>(o));
    if (!exempt.empty()) {
      auto none = std::make_unique<Options>(o);
      none->weight_decay(0.0);
      g.emplace_back(exempt, std::move(none));
    }
    return g;
  };
  if (options.kind == "adamw") {
    auto o = torch::optim::AdamWOptions(options.lr)
                 .betas(std::make_tuple(options.betas[0], options.betas[1]))
                 .eps(options.eps)
                 .weight_decay(wd)
                 .amsgrad(false);
    return std::make_unique<RowSparseAdamW>(groups(o), o);
  }
  auto o = torch::optim::SGDOptions(options.lr)
               .momentum(options.momentum)
               .dampening(0.0)
               .weight_decay(wd)
               .nesterov(options.nesterov);
  return std::make_unique<RowSparseSGD>(groups(o), o);
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

namespace {

// clip_grad_norm over CPU float gradients of one dtype T: the same values as the LibTorch-op path
// (each norm and the total rounded to T, the factor computed in T), one pass per gradient and no
// temporaries.
double clip_fused(std::vector<torch::Tensor>& grads, const std::vector<std::size_t>& slot, double max_norm,
                  std::vector<double>* per_param) {
  double total_value = 0;
  bool clipped = false;
  double factor = 1;
  AT_DISPATCH_FLOATING_TYPES(grads[0].scalar_type(), "kiln_clip_grad_norm", [&] {
    double sum_sq = 0;
    for (std::size_t k = 0; k < grads.size(); ++k) {
      const auto norm = static_cast<scalar_t>(std::sqrt(sum_of_squares(grads[k])));
      if (per_param) (*per_param)[slot[k]] = static_cast<double>(norm);
      sum_sq += static_cast<double>(norm) * static_cast<double>(norm);
    }
    const auto total = static_cast<scalar_t>(std::sqrt(sum_sq));
    total_value = static_cast<double>(total);
    if (!std::isfinite(total_value)) return;
    const scalar_t coef = std::min(static_cast<scalar_t>(1) / (total + static_cast<scalar_t>(1e-6)) *
                                       static_cast<scalar_t>(max_norm),
                                   static_cast<scalar_t>(1));
    clipped = coef < static_cast<scalar_t>(1);
    factor = static_cast<double>(coef);
  });
  if (clipped) {
    for (auto& g : grads) scale_in_place(g, factor);
  }
  return total_value;
}

}  // namespace

double clip_grad_norm(const std::vector<torch::Tensor>& params, double max_norm, std::vector<double>* per_param) {
  if (!(max_norm > 0.0)) {
    throw ConfigError("clip_grad_norm: max_norm must be > 0 (infinity measures without clipping), got " +
                      core::format_number(max_norm));
  }
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> grads;
  std::vector<std::size_t> slot;
  for (std::size_t i = 0; i < params.size(); ++i) {
    auto p = params[i];
    if (!p.grad().defined()) continue;
    // A sparse gradient may list a row more than once; coalescing sums those entries so the norm
    // (and the later scaling) sees the gradient it stands for.
    if (p.grad().is_sparse()) p.mutable_grad() = coalesced(p.grad());
    const auto& g = p.grad();
    grads.push_back((g.is_sparse() ? g._values() : g).detach());
    slot.push_back(i);
  }
  if (per_param) per_param->assign(params.size(), std::numeric_limits<double>::quiet_NaN());
  if (grads.empty()) return 0.0;
  bool all_fusable = true;
  for (const auto& g : grads) all_fusable = all_fusable && fusable(g) && g.scalar_type() == grads[0].scalar_type();
  if (all_fusable) return clip_fused(grads, slot, max_norm, per_param);
  std::vector<torch::Tensor> norms;
  for (const auto& g : grads) norms.push_back(torch::norm(g, 2));
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
  for (auto& g : grads) g.mul_(coef.to(g.device()));
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
