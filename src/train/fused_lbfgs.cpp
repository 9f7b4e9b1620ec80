#include "fused_lbfgs.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <utility>

#include "kiln/core/error.h"
#include "kiln/core/process_memory.h"
#include "linear_kernels.h"

namespace kiln::train {

namespace {

using torch::optim::LBFGSOptions;
using torch::optim::LBFGSParamState;

// Vector passes run over chunks of this many floats, each chunk's sums in double, the chunks'
// sums added in chunk order: the same results at any thread count.
constexpr int64_t kChunk = 1 << 14;
/// Runs body(begin, end, partial) over every chunk of [0, n) (in parallel) and returns the
/// partials (`width` doubles per chunk) summed in chunk order; max_abs, when given, receives the
/// maximum of each chunk's own (partial[width]).
template <typename Body>
std::vector<double> chunked(int64_t n, int width, Body body, bool with_max = false) {
  const int64_t chunks = (n + kChunk - 1) / kChunk;
  const int stride = width + (with_max ? 1 : 0);
  std::vector<double> partial(static_cast<std::size_t>(std::max<int64_t>(chunks, 1) * stride), 0.0);
  at::parallel_for(0, chunks, 1, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      const int64_t begin = c * kChunk, end = std::min(n, begin + kChunk);
      body(begin, end, partial.data() + c * stride);
    }
  });
  std::vector<double> total(static_cast<std::size_t>(stride), 0.0);
  for (int64_t c = 0; c < chunks; ++c) {
    for (int w = 0; w < width; ++w) total[static_cast<std::size_t>(w)] += partial[static_cast<std::size_t>(c * stride + w)];
    if (with_max) {
      total[static_cast<std::size_t>(width)] =
          std::max(total[static_cast<std::size_t>(width)], partial[static_cast<std::size_t>(c * stride + width)]);
    }
  }
  return total;
}

double cubic_interpolate(double x1, double f1, double g1, double x2, double f2, double g2, double lo, double hi) {
  // The minimiser of the cubic through (x1, f1, g1) and (x2, f2, g2), clamped to [lo, hi]; their
  // midpoint when the cubic has none.
  const double d1 = g1 + g2 - 3 * (f1 - f2) / (x1 - x2);
  const double d2_square = d1 * d1 - g1 * g2;
  if (d2_square >= 0) {
    const double d2 = std::sqrt(d2_square);
    const double min_pos = x1 <= x2 ? x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + 2 * d2))
                                    : x1 - (x1 - x2) * ((g1 + d2 - d1) / (g1 - g2 + 2 * d2));
    return std::min(std::max(min_pos, lo), hi);
  }
  return (lo + hi) / 2.0;
}

}  // namespace

FusedLbfgs::FusedLbfgs(std::vector<torch::Tensor> params, LBFGSOptions options)
    : torch::optim::LBFGS(params, std::move(options)), params_(std::move(params)) {
  const auto& o = static_cast<const LBFGSOptions&>(param_groups_[0].options());
  if (o.line_search_fn() != c10::optional<std::string>("strong_wolfe")) {
    throw ConfigError("the fused L-BFGS runs the strong-Wolfe line search only");
  }
  offsets_.push_back(0);
  for (const auto& p : params_) {
    if (p.scalar_type() != torch::kFloat32 || !p.device().is_cpu() || !p.is_contiguous()) {
      throw ConfigError("the fused L-BFGS needs contiguous float32 CPU parameters");
    }
    offsets_.push_back(offsets_.back() + p.numel());
  }
}

void FusedLbfgs::save(torch::serialize::OutputArchive& archive) const {
  for (const auto& entry : state_) static_cast<LBFGSParamState&>(*entry.second).al(c10::nullopt);
  torch::optim::LBFGS::save(archive);
}

torch::Tensor FusedLbfgs::scratch() {
  for (const auto& t : pool_) {
    if (t.use_count() == 1) return t;
  }
  pool_.push_back(torch::empty({offsets_.back()}, torch::kFloat32));
  // Gradients are written into these at random rows (the sparse passes): huge pages when large.
  core::advise_huge_pages(pool_.back().data_ptr(), static_cast<std::size_t>(pool_.back().nbytes()));
  return pool_.back();
}

std::pair<double, double> FusedLbfgs::gather_grad(float* g, const float* d) const {
  // Parameter by parameter (their chunks start at the parameter's own start).
  double gmax = 0, gtd = 0;
  for (std::size_t p = 0; p < params_.size(); ++p) {
    const torch::Tensor& grad = params_[p].grad();
    if (!grad.defined() || grad.scalar_type() != torch::kFloat32 || !grad.is_contiguous() ||
        grad.numel() != params_[p].numel()) {
      throw Error("the fused L-BFGS: the closure left a parameter without a float32 gradient of its shape");
    }
    const float* src = grad.data_ptr<float>();
    float* dst = g + offsets_[static_cast<std::size_t>(p)];
    const float* dp = d ? d + offsets_[static_cast<std::size_t>(p)] : nullptr;
    const bool in_place = src == dst;  // written where offer() pointed
    const auto r = chunked(params_[p].numel(), 1, [&](int64_t b, int64_t e, double* acc) {
      if (!in_place) std::copy(src + b, src + e, dst + b);
      if (dp) acc[0] = dot_span(dst + b, dp + b, e - b);
      acc[1] = max_abs_span(dst + b, e - b);
    }, /*with_max=*/true);
    gtd += r[0];
    gmax = std::max(gmax, r[1]);
  }
  return {gmax, gtd};
}

void FusedLbfgs::set_params(const float* x0, double t, const float* d) const {
  const auto tf = static_cast<float>(t);
  for (std::size_t p = 0; p < params_.size(); ++p) {
    float* dst = params_[p].data_ptr<float>();
    const int64_t o = offsets_[p];
    at::parallel_for(0, params_[p].numel(), kChunk, [&](int64_t b, int64_t e) {
      for (int64_t j = b; j < e; ++j) dst[j] = x0[o + j] + tf * d[o + j];
    });
  }
}

bool FusedLbfgs::params_equal(const float* x) const {
  for (std::size_t p = 0; p < params_.size(); ++p) {
    const float* src = params_[p].data_ptr<float>();
    const int64_t o = offsets_[p];
    const auto r = chunked(params_[p].numel(), 1, [&](int64_t b, int64_t e, double* acc) {
      acc[0] = std::memcmp(src + b, x + o + b, static_cast<std::size_t>(e - b) * sizeof(float)) == 0 ? 0.0 : 1.0;
    });
    if (r[0] != 0) return false;
  }
  return true;
}

void FusedLbfgs::copy_params(float* x0) const {
  for (std::size_t p = 0; p < params_.size(); ++p) {
    const float* src = params_[p].data_ptr<float>();
    const int64_t o = offsets_[p];
    at::parallel_for(0, params_[p].numel(), kChunk, [&](int64_t b, int64_t e) { std::copy(src + b, src + e, x0 + o + b); });
  }
}

torch::Tensor FusedLbfgs::step(LossClosure closure) {
  torch::NoGradGuard no_grad;
  const auto& o = static_cast<const LBFGSOptions&>(param_groups_[0].options());
  const double lr = o.lr();
  const int64_t max_iter = o.max_iter();
  const int64_t max_eval = o.max_eval().value_or(max_iter * 5 / 4);
  const double tolerance_grad = o.tolerance_grad();
  const double tolerance_change = o.tolerance_change();
  const auto history_size = static_cast<std::size_t>(o.history_size());
  const int64_t n = offsets_.back();

  const std::string key = c10::guts::to_string(params_.front().unsafeGetTensorImpl());
  if (state_.find(key) == state_.end()) state_[key] = std::make_unique<LBFGSParamState>();
  auto& state = static_cast<LBFGSParamState&>(*state_[key]);

  // One evaluation: the loss, the flat gradient, its largest magnitude and its product with d.
  struct Eval {
    double f = 0, gtd = 0, gmax = 0;
    torch::Tensor g;
  };
  // Each evaluation's gradient goes to a flat buffer of its own: the parameters' grads are views of
  // it, which a closure that writes into the grads it finds fills in place (the trainer's does; a
  // closure that sets grads of its own gets them copied).
  auto offer = [&](const torch::Tensor& flat) {
    for (std::size_t p = 0; p < params_.size(); ++p) {
      params_[p].mutable_grad() = flat.narrow(0, offsets_[p], params_[p].numel()).view(params_[p].sizes());
    }
  };
  auto evaluate = [&](const float* d) {
    Eval e;
    e.g = scratch();
    offer(e.g);
    e.f = closure().item<double>();
    std::tie(e.gmax, e.gtd) = gather_grad(e.g.data_ptr<float>(), d);
    return e;
  };
  // At the end the grads hold copies, not views of buffers the next call reuses.
  struct OwnGrads {
    const std::vector<torch::Tensor>& params;
    ~OwnGrads() {
      for (const auto& p : params) {
        if (p.grad().defined() && p.grad().is_view()) const_cast<torch::Tensor&>(p).mutable_grad() = p.grad().clone();
      }
    }
  } own_grads{params_};

  // The first evaluation, at the parameters as the caller left them: when they are, bit for bit,
  // where the previous call ended, that call's evaluation there (the objective is deterministic, so
  // the closure would give the same bits; torch's LBFGS evaluates again, one evaluation of every
  // eleven on the trainer's calls of ten iterations).
  torch::Tensor flat_grad;
  double loss = 0, gmax = 0;
  torch::Tensor orig_loss;
  if (end_.x.defined() && end_.state == &state && params_equal(end_.x.data_ptr<float>())) {
    flat_grad = end_.g;
    loss = end_.f;
    gmax = end_.gmax;
    orig_loss = torch::tensor(loss, torch::kFloat64);
  } else {
    flat_grad = scratch();
    offer(flat_grad);
    orig_loss = closure();
    loss = orig_loss.item<double>();
    gmax = gather_grad(flat_grad.data_ptr<float>(), nullptr).first;
  }
  end_ = {};
  int64_t current_evals = 1;
  state.func_evals(state.func_evals() + 1);
  last_loss_ = loss;
  last_max_grad_ = gmax;
  if (gmax <= tolerance_grad) return orig_loss;

  torch::Tensor d = state.d();
  double t = state.t();
  std::deque<torch::Tensor> old_dirs = state.old_dirs();
  std::deque<torch::Tensor> old_stps = state.old_stps();
  std::deque<torch::Tensor> ro = state.ro();
  torch::Tensor H_diag = state.H_diag();
  torch::Tensor prev_flat_grad = state.prev_flat_grad();
  double prev_loss = state.prev_loss();

  int64_t n_iter = 0;
  while (n_iter < max_iter) {
    ++n_iter;
    state.n_iter(state.n_iter() + 1);
    const float* g = flat_grad.data_ptr<float>();
    double d_max = 0;  // max |d|
    double gtd = 0;    // g · d
    if (state.n_iter() == 1) {
      if (!d.defined() || d.numel() != n || d.use_count() > 1) d = torch::empty({n}, torch::kFloat32);
      float* dp = d.data_ptr<float>();
      const auto r = chunked(n, 1, [&](int64_t b, int64_t e, double* acc) {
        for (int64_t j = b; j < e; ++j) dp[j] = -g[j];
        acc[0] = -dot_span(g + b, g + b, e - b);
        acc[1] = max_abs_span(g + b, e - b);
      }, true);
      gtd = r[0];
      d_max = r[1];
      old_dirs.clear();
      old_stps.clear();
      ro.clear();
      H_diag = torch::tensor(1.0, torch::kFloat64);
    } else {
      // y = g − g_prev, s = t d, with y·s and y·y, into buffers of their own.
      torch::Tensor y = scratch();
      float* yp = y.data_ptr<float>();
      torch::Tensor s = scratch();
      float* sp = s.data_ptr<float>();
      const float* gprev = prev_flat_grad.data_ptr<float>();
      float* dp = d.data_ptr<float>();
      const auto tf = static_cast<float>(t);
      const auto r = chunked(n, 2, [&](int64_t b, int64_t e, double* acc) {
        for (int64_t j = b; j < e; ++j) {
          yp[j] = g[j] - gprev[j];
          sp[j] = dp[j] * tf;
        }
        acc[0] = dot_span(yp + b, sp + b, e - b);
        acc[1] = dot_span(yp + b, yp + b, e - b);
      });
      const double ys = r[0], yy = r[1];
      if (ys > 1e-10) {
        while (!old_dirs.empty() && old_dirs.size() >= history_size) {  // a resumed state may hold more
          old_dirs.pop_front();
          old_stps.pop_front();
          ro.pop_front();
        }
        old_dirs.push_back(y);
        old_stps.push_back(s);
        ro.push_back(torch::tensor(1.0 / ys, torch::kFloat64));
        H_diag = torch::tensor(ys / yy, torch::kFloat64);
      }
      // The two-loop recursion, q and then r in d's buffer, each pass also taking the dot product
      // the next one needs.
      const int m = static_cast<int>(old_dirs.size());
      std::vector<double> al(static_cast<std::size_t>(m)), rho(static_cast<std::size_t>(m));
      std::vector<const float*> S(static_cast<std::size_t>(m)), Y(static_cast<std::size_t>(m));
      for (int i = 0; i < m; ++i) {
        rho[static_cast<std::size_t>(i)] = ro[static_cast<std::size_t>(i)].item<double>();
        S[static_cast<std::size_t>(i)] = old_stps[static_cast<std::size_t>(i)].data_ptr<float>();
        Y[static_cast<std::size_t>(i)] = old_dirs[static_cast<std::size_t>(i)].data_ptr<float>();
      }
      const auto h = static_cast<float>(H_diag.item<double>());
      if (m == 0) {
        const auto r0 = chunked(n, 1, [&](int64_t b, int64_t e, double* acc) {
          for (int64_t j = b; j < e; ++j) dp[j] = -g[j] * h;
          acc[0] = dot_span(g + b, dp + b, e - b);
          acc[1] = max_abs_span(dp + b, e - b);
        }, true);
        gtd = r0[0];
        d_max = r0[1];
      } else {
        // q = −g, and s_{m−1}·q.
        double acc = chunked(n, 1, [&](int64_t b, int64_t e, double* a) {
          for (int64_t j = b; j < e; ++j) dp[j] = -g[j];
          a[0] = dot_span(S[static_cast<std::size_t>(m - 1)] + b, dp + b, e - b);
        })[0];
        for (int i = m - 1; i >= 0; --i) {
          al[static_cast<std::size_t>(i)] = acc * rho[static_cast<std::size_t>(i)];
          const auto a_i = static_cast<float>(al[static_cast<std::size_t>(i)]);
          const float* yi = Y[static_cast<std::size_t>(i)];
          if (i > 0) {
            // q −= al_i y_i, and s_{i−1}·q.
            const float* sn = S[static_cast<std::size_t>(i - 1)];
            acc = chunked(n, 1, [&](int64_t b, int64_t e, double* a) {
              for (int64_t j = b; j < e; ++j) dp[j] -= a_i * yi[j];
              a[0] = dot_span(sn + b, dp + b, e - b);
            })[0];
          } else {
            // q −= al_0 y_0, r = H q, and y_0·r.
            acc = chunked(n, 1, [&](int64_t b, int64_t e, double* a) {
              for (int64_t j = b; j < e; ++j) dp[j] = (dp[j] - a_i * yi[j]) * h;
              a[0] = dot_span(Y[0] + b, dp + b, e - b);
            })[0];
          }
        }
        for (int i = 0; i < m; ++i) {
          const double be = acc * rho[static_cast<std::size_t>(i)];
          const auto c = static_cast<float>(al[static_cast<std::size_t>(i)] - be);
          const float* si = S[static_cast<std::size_t>(i)];
          if (i + 1 < m) {
            // r += (al_i − be_i) s_i, and y_{i+1}·r.
            const float* yn = Y[static_cast<std::size_t>(i + 1)];
            acc = chunked(n, 1, [&](int64_t b, int64_t e, double* a) {
              for (int64_t j = b; j < e; ++j) dp[j] += c * si[j];
              a[0] = dot_span(yn + b, dp + b, e - b);
            })[0];
          } else {
            // The last update, with g·d and max |d|.
            const auto r1 = chunked(n, 1, [&](int64_t b, int64_t e, double* a) {
              for (int64_t j = b; j < e; ++j) dp[j] += c * si[j];
              a[0] = dot_span(g + b, dp + b, e - b);
              a[1] = max_abs_span(dp + b, e - b);
            }, true);
            gtd = r1[0];
            d_max = r1[1];
          }
        }
      }
    }
    prev_flat_grad = flat_grad;  // never written again: the next gradients go to other buffers
    prev_loss = loss;

    if (state.n_iter() == 1) {
      const double g_sum = chunked(n, 1, [&](int64_t b, int64_t e, double* a) {
        double s = 0;
        for (int64_t j = b; j < e; ++j) s += std::abs(g[j]);
        a[0] = s;
      })[0];
      t = std::min(1.0, 1.0 / g_sum) * lr;
    } else {
      t = lr;
    }
    if (gtd > -tolerance_change) break;

    // The strong-Wolfe line search along d from x0 (c1 1e-4, c2 0.9, at most 25 evaluations).
    torch::Tensor x0 = scratch();
    copy_params(x0.data_ptr<float>());
    const float* xp = x0.data_ptr<float>();
    const float* dp = d.data_ptr<float>();
    auto at = [&](double step) {
      set_params(xp, step, dp);
      return evaluate(dp);
    };
    constexpr double c1 = 1e-4, c2 = 0.9;
    constexpr int max_ls = 25;
    const Eval start{loss, gtd, gmax, flat_grad};
    Eval cur = at(t);
    int ls_evals = 1;
    double t_prev = 0;
    Eval prev = start;
    bool done = false;
    int ls_iter = 0;
    double bracket[2] = {0, 0};
    Eval bracket_e[2];
    int size = 0;
    while (ls_iter < max_ls) {
      if (cur.f > loss + c1 * t * gtd || (ls_iter > 1 && cur.f >= prev.f)) {
        bracket[0] = t_prev, bracket[1] = t, bracket_e[0] = prev, bracket_e[1] = cur, size = 2;
        break;
      }
      if (std::abs(cur.gtd) <= -c2 * gtd) {
        bracket[0] = t, bracket_e[0] = cur, size = 1;
        done = true;
        break;
      }
      if (cur.gtd >= 0) {
        bracket[0] = t_prev, bracket[1] = t, bracket_e[0] = prev, bracket_e[1] = cur, size = 2;
        break;
      }
      const double min_step = t + 0.01 * (t - t_prev), max_step = t * 10;
      const double next = cubic_interpolate(t_prev, prev.f, prev.gtd, t, cur.f, cur.gtd, min_step, max_step);
      t_prev = t;
      prev = cur;
      t = next;
      cur = at(t);
      ++ls_evals;
      ++ls_iter;
    }
    if (ls_iter == max_ls) bracket[0] = 0, bracket[1] = t, bracket_e[0] = start, bracket_e[1] = cur, size = 2;

    // Zoom: shrink the bracket until a point meets both conditions.
    int low = 0, high = 1;
    if (size == 2 && bracket_e[0].f > bracket_e[1].f) low = 1, high = 0;
    bool insufficient_progress = false;
    while (!done && ls_iter < max_ls) {
      if (std::abs(bracket[1] - bracket[0]) * d_max < tolerance_change) break;
      t = cubic_interpolate(bracket[0], bracket_e[0].f, bracket_e[0].gtd, bracket[1], bracket_e[1].f,
                            bracket_e[1].gtd, std::min(bracket[0], bracket[1]), std::max(bracket[0], bracket[1]));
      const double hi = std::max(bracket[0], bracket[1]), lo = std::min(bracket[0], bracket[1]);
      const double eps = 0.1 * (hi - lo);
      if (std::min(hi - t, t - lo) < eps) {
        if (insufficient_progress || t >= hi || t <= lo) {
          t = std::abs(t - hi) < std::abs(t - lo) ? hi - eps : lo + eps;
          insufficient_progress = false;
        } else {
          insufficient_progress = true;
        }
      } else {
        insufficient_progress = false;
      }
      cur = at(t);
      ++ls_evals;
      ++ls_iter;
      if (cur.f > loss + c1 * t * gtd || cur.f >= bracket_e[low].f) {
        bracket[high] = t, bracket_e[high] = cur;
        if (bracket_e[0].f <= bracket_e[1].f) {
          low = 0, high = 1;
        } else {
          low = 1, high = 0;
        }
      } else {
        if (std::abs(cur.gtd) <= -c2 * gtd) {
          done = true;
        } else if (cur.gtd * (bracket[high] - bracket[low]) >= 0) {
          bracket[high] = bracket[low], bracket_e[high] = bracket_e[low];
        }
        bracket[low] = t, bracket_e[low] = cur;
      }
    }
    t = bracket[low];
    const Eval chosen = bracket_e[low];
    loss = chosen.f;
    flat_grad = chosen.g;
    gmax = chosen.gmax;
    set_params(xp, t, dp);  // the chosen point, as it was evaluated
    last_loss_ = loss;
    last_max_grad_ = gmax;
    const bool opt_cond = gmax <= tolerance_grad;

    current_evals += ls_evals;
    state.func_evals(state.func_evals() + ls_evals);
    if (n_iter == max_iter) break;
    if (current_evals >= max_eval) break;
    if (opt_cond) break;
    if (d_max * std::abs(t) <= tolerance_change) break;
    if (std::abs(loss - prev_loss) < tolerance_change) break;
  }

  // Where this call ended, for the next one (params hold it: the line search's chosen point).
  end_.x = scratch();
  copy_params(end_.x.data_ptr<float>());
  end_.g = flat_grad;
  end_.f = loss;
  end_.gmax = gmax;
  end_.state = &state;
  state.d(d);
  state.t(t);
  state.old_dirs(old_dirs);
  state.old_stps(old_stps);
  state.ro(ro);
  state.H_diag(H_diag);
  state.prev_flat_grad(prev_flat_grad);
  state.prev_loss(prev_loss);
  return orig_loss;
}

}  // namespace kiln::train
