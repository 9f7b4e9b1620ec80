#include "kiln/train/calibration.h"

#include <algorithm>
#include <cmath>

#include "kiln/core/error.h"

namespace kiln::train {
namespace {

// Mean NLL of softmax(beta * z) and its first two derivatives in beta.
struct NllAt {
  double nll = 0, grad = 0, hess = 0;
};

NllAt nll_at(const double* z, const std::vector<int64_t>& y, int64_t n, int64_t c, double beta) {
  NllAt out;
  for (int64_t i = 0; i < n; ++i) {
    const double* row = z + i * c;
    double top = -INFINITY;
    for (int64_t k = 0; k < c; ++k) top = std::max(top, beta * row[k]);
    double sum = 0, mean_z = 0, mean_z2 = 0;
    for (int64_t k = 0; k < c; ++k) {
      const double e = std::exp(beta * row[k] - top);
      sum += e;
      mean_z += e * row[k];
      mean_z2 += e * row[k] * row[k];
    }
    mean_z /= sum;
    mean_z2 /= sum;
    const double zy = row[y[static_cast<std::size_t>(i)]];
    out.nll += top + std::log(sum) - beta * zy;
    out.grad += mean_z - zy;
    out.hess += mean_z2 - mean_z * mean_z;
  }
  const double inv = 1.0 / static_cast<double>(n);
  out.nll *= inv;
  out.grad *= inv;
  out.hess *= inv;
  return out;
}

}  // namespace

TemperatureFit fit_temperature(const torch::Tensor& logits, const std::vector<int64_t>& y) {
  if (!logits.defined() || logits.dim() != 2 || logits.size(0) == 0) {
    throw DataError("temperature scaling needs logits [n >= 1, classes], got " +
                    (logits.defined() ? std::to_string(logits.dim()) + " dimensions" : std::string("none")));
  }
  const int64_t n = logits.size(0), c = logits.size(1);
  if (static_cast<int64_t>(y.size()) != n) {
    throw DataError("temperature scaling: " + std::to_string(n) + " logit rows but " + std::to_string(y.size()) + " labels");
  }
  for (std::size_t i = 0; i < y.size(); ++i) {
    if (y[i] < 0 || y[i] >= c) {
      throw DataError("temperature scaling: label[" + std::to_string(i) + "] = " + std::to_string(y[i]) +
                      " is outside [0, " + std::to_string(c) + ")");
    }
  }
  const auto z = logits.detach().to(torch::kCPU, torch::kFloat64).contiguous();
  if (!torch::isfinite(z).all().item<bool>()) throw DataError("temperature scaling: the logits are not all finite");
  const double* zp = z.data_ptr<double>();

  const double lo = 1.0 / kMaxTemperature, hi = 1.0 / kMinTemperature;
  TemperatureFit fit;
  double beta = 1.0;
  NllAt at = nll_at(zp, y, n, c, beta);
  fit.nll_before = at.nll;
  fit.separable = true;
  for (int64_t i = 0; i < n && fit.separable; ++i) {
    const double own = zp[i * c + y[static_cast<std::size_t>(i)]];
    for (int64_t k = 0; k < c; ++k) {
      if (k != y[static_cast<std::size_t>(i)] && zp[i * c + k] >= own) {
        fit.separable = false;
        break;
      }
    }
  }
  if (fit.separable) {
    fit.nll_after = fit.nll_before;
    return fit;
  }
  for (fit.iterations = 0; fit.iterations < 100; ++fit.iterations) {
    if (std::abs(at.grad) < 1e-12) break;
    // Newton's step where the curvature allows, else a gradient step; halve until the NLL drops.
    // Steps below 1e-10 of β change no probability a float32 model reports: converged (at the
    // optimum the NLL's rounding had every step fail, each of 60 halvings a pass over the rows).
    double step = at.hess > 1e-12 ? -at.grad / at.hess : -at.grad;
    bool moved = false;
    for (int halvings = 0; halvings < 60; ++halvings, step *= 0.5) {
      if (std::abs(step) < 1e-10 * beta) break;
      const double next = std::clamp(beta + step, lo, hi);
      if (next == beta) break;
      const NllAt cand = nll_at(zp, y, n, c, next);
      if (cand.nll <= at.nll) {
        moved = std::abs(next - beta) > 1e-15 * std::max(1.0, beta);
        beta = next;
        at = cand;
        break;
      }
    }
    if (!moved) break;
  }
  fit.temperature = 1.0 / beta;
  fit.nll_after = at.nll;
  return fit;
}

}  // namespace kiln::train
