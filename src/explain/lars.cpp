// LARS / lasso path and LassoLarsIC, following scikit-learn 1.2.1's _lars_path_solver step by step
// (Gram form) so that the same features are selected: argmax |correlation| enters, the equiangular
// step γ = min(g1, g2, C/AA) over positive candidates, correlations along the direction rounded to
// 15 decimals, sign changes (lar) or drops (lasso) at the first coefficient crossing zero.
#include "lars.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <string>

#include "kiln/core/error.h"

namespace kiln::explain::detail {
namespace {

constexpr double kTiny32 = 1.1754943508222875e-38;  // np.finfo(np.float32).tiny
constexpr double kEps = 2.220446049250313e-16;      // np.finfo(float).eps
constexpr double kEqualityTolerance = 1.1920928955078125e-07;  // np.finfo(np.float32).eps

double min_pos(const std::vector<double>& v) {
  double best = std::numeric_limits<double>::max();
  for (double x : v) {
    if (x > 0 && x < best) best = x;
  }
  return best;
}

// Solves (L Lᵀ) x = b for the lower-triangular n × n factor L (row-major, leading dimension ld).
std::vector<double> cholesky_solve(const std::vector<double>& l, int64_t ld, int64_t n, std::vector<double> b) {
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t k = 0; k < i; ++k) b[static_cast<std::size_t>(i)] -= l[static_cast<std::size_t>(i * ld + k)] * b[static_cast<std::size_t>(k)];
    b[static_cast<std::size_t>(i)] /= l[static_cast<std::size_t>(i * ld + i)];
  }
  for (int64_t i = n - 1; i >= 0; --i) {
    for (int64_t k = i + 1; k < n; ++k) b[static_cast<std::size_t>(i)] -= l[static_cast<std::size_t>(k * ld + i)] * b[static_cast<std::size_t>(k)];
    b[static_cast<std::size_t>(i)] /= l[static_cast<std::size_t>(i * ld + i)];
  }
  return b;
}

// np.around(x, 15): round half to even at 15 decimals.
double around15(double x) {
  const double s = x * 1e15;
  return std::nearbyint(s) / 1e15;
}

}  // namespace

LarsPath lars_path(const torch::Tensor& gram_t, const torch::Tensor& xy_t, int64_t n_samples, bool lasso,
                   int64_t max_iter) {
  const torch::Tensor gram_c = gram_t.to(torch::kFloat64).contiguous(), xy_c = xy_t.to(torch::kFloat64).contiguous();
  const int64_t p = xy_c.numel();
  const double* gram = gram_c.data_ptr<double>();
  const double* xy = xy_c.data_ptr<double>();
  auto g = [&](int64_t i, int64_t j) { return gram[i * p + j]; };
  std::vector<double> cov(xy, xy + p);  // meaningful for inactive features
  std::vector<char> is_active(static_cast<std::size_t>(p), 0);
  std::vector<int64_t> active;
  std::vector<double> sign;
  const int64_t max_features = std::min(max_iter, p);
  std::vector<double> l(static_cast<std::size_t>(std::max<int64_t>(max_features, 1) * std::max<int64_t>(max_features, 1)), 0.0);
  const int64_t ld = std::max<int64_t>(max_features, 1);
  LarsPath path;
  path.coefs.emplace_back(static_cast<std::size_t>(p), 0.0);
  int64_t n_iter = 0;
  bool drop = false;
  std::vector<int64_t> dropped;
  while (true) {
    int64_t c_idx = -1;
    double c = 0;
    for (int64_t j = 0; j < p; ++j) {
      if (!is_active[static_cast<std::size_t>(j)] && (c_idx < 0 || std::abs(cov[static_cast<std::size_t>(j)]) > c)) {
        c_idx = j;
        c = std::abs(cov[static_cast<std::size_t>(j)]);
      }
    }
    const double alpha = c / static_cast<double>(n_samples);
    if (static_cast<int64_t>(path.alphas.size()) <= n_iter) path.alphas.resize(static_cast<std::size_t>(n_iter + 1));
    path.alphas[static_cast<std::size_t>(n_iter)] = alpha;
    if (alpha <= kEqualityTolerance) break;  // alpha_min = 0: the fit is perfect
    const auto n_active = static_cast<int64_t>(active.size());
    if (n_iter >= max_iter || n_active >= p) break;
    if (!drop) {
      const double cj = cov[static_cast<std::size_t>(c_idx)];
      const double s = cj > 0 ? 1.0 : (cj < 0 ? -1.0 : 0.0);
      // Append c_idx to the Cholesky factor of the active Gram matrix.
      std::vector<double> row(static_cast<std::size_t>(n_active));
      for (int64_t a = 0; a < n_active; ++a) row[static_cast<std::size_t>(a)] = g(c_idx, active[static_cast<std::size_t>(a)]);
      for (int64_t a = 0; a < n_active; ++a) {  // solve L w = row
        double v = row[static_cast<std::size_t>(a)];
        for (int64_t k = 0; k < a; ++k) v -= l[static_cast<std::size_t>(a * ld + k)] * row[static_cast<std::size_t>(k)];
        row[static_cast<std::size_t>(a)] = v / l[static_cast<std::size_t>(a * ld + a)];
      }
      double v = 0;
      for (double w : row) v += w * w;
      const double diag = std::max(std::sqrt(std::abs(g(c_idx, c_idx) - v)), kEps);
      if (diag < 1e-7) {  // degenerate: scikit-learn zeroes its correlation and goes on
        cov[static_cast<std::size_t>(c_idx)] = 0;
        continue;
      }
      for (int64_t a = 0; a < n_active; ++a) l[static_cast<std::size_t>(n_active * ld + a)] = row[static_cast<std::size_t>(a)];
      l[static_cast<std::size_t>(n_active * ld + n_active)] = diag;
      active.push_back(c_idx);
      sign.push_back(s);
      is_active[static_cast<std::size_t>(c_idx)] = 1;
    }
    const auto na = static_cast<int64_t>(active.size());
    if (lasso && n_iter > 0 && path.alphas[static_cast<std::size_t>(n_iter - 1)] < alpha) break;  // numerical drift
    std::vector<double> ls = cholesky_solve(l, ld, na, sign);
    double aa = 0;
    if (na == 1 && ls[0] == 0) {
      ls[0] = 1;
      aa = 1;
    } else {
      double sum = 0;
      for (int64_t a = 0; a < na; ++a) sum += ls[static_cast<std::size_t>(a)] * sign[static_cast<std::size_t>(a)];
      aa = 1.0 / std::sqrt(sum);
      for (int i = 0; !std::isfinite(aa) && i < 60; ++i) {  // ill-conditioned: regularise the diagonal
        std::vector<double> lr = l;
        for (int64_t a = 0; a < na; ++a) lr[static_cast<std::size_t>(a * ld + a)] += std::ldexp(kEps, i);
        ls = cholesky_solve(lr, ld, na, sign);
        double t = 0;
        for (int64_t a = 0; a < na; ++a) t += ls[static_cast<std::size_t>(a)] * sign[static_cast<std::size_t>(a)];
        aa = 1.0 / std::sqrt(std::max(t, kEps));
      }
      for (auto& x : ls) x *= aa;
    }
    // Correlations of the inactive features with the equiangular direction.
    std::vector<double> corr(static_cast<std::size_t>(p), 0.0), g1, g2;
    for (int64_t j = 0; j < p; ++j) {
      if (is_active[static_cast<std::size_t>(j)]) continue;
      double v = 0;
      for (int64_t a = 0; a < na; ++a) v += g(j, active[static_cast<std::size_t>(a)]) * ls[static_cast<std::size_t>(a)];
      corr[static_cast<std::size_t>(j)] = around15(v);
      g1.push_back((c - cov[static_cast<std::size_t>(j)]) / (aa - corr[static_cast<std::size_t>(j)] + kTiny32));
      g2.push_back((c + cov[static_cast<std::size_t>(j)]) / (aa + corr[static_cast<std::size_t>(j)] + kTiny32));
    }
    double gamma = std::min({min_pos(g1), min_pos(g2), c / aa});
    const std::vector<double>& coef = path.coefs.back();
    std::vector<double> z(static_cast<std::size_t>(na));
    for (int64_t a = 0; a < na; ++a) {
      z[static_cast<std::size_t>(a)] = -coef[static_cast<std::size_t>(active[static_cast<std::size_t>(a)])] / (ls[static_cast<std::size_t>(a)] + kTiny32);
    }
    const double z_pos = min_pos(z);
    drop = false;
    std::vector<int64_t> idx;  // positions in `active` whose coefficient crosses zero, last first
    if (z_pos < gamma) {
      for (int64_t a = na - 1; a >= 0; --a) {
        if (z[static_cast<std::size_t>(a)] == z_pos) idx.push_back(a);
      }
      for (int64_t a : idx) sign[static_cast<std::size_t>(a)] = -sign[static_cast<std::size_t>(a)];
      if (lasso) gamma = z_pos;
      drop = true;
    }
    ++n_iter;
    std::vector<double> next(static_cast<std::size_t>(p), 0.0);
    for (int64_t a = 0; a < na; ++a) {
      const int64_t j = active[static_cast<std::size_t>(a)];
      next[static_cast<std::size_t>(j)] = coef[static_cast<std::size_t>(j)] + gamma * ls[static_cast<std::size_t>(a)];
    }
    path.coefs.push_back(std::move(next));
    for (int64_t j = 0; j < p; ++j) {
      if (!is_active[static_cast<std::size_t>(j)]) cov[static_cast<std::size_t>(j)] -= gamma * corr[static_cast<std::size_t>(j)];
    }
    if (drop && lasso) {
      const std::vector<double>& now = path.coefs.back();
      for (int64_t a : idx) {  // highest position first
        const int64_t j = active[static_cast<std::size_t>(a)];
        active.erase(active.begin() + a);
        sign.erase(sign.begin() + a);
        is_active[static_cast<std::size_t>(j)] = 0;
        double v = xy[j];
        for (int64_t k = 0; k < p; ++k) v -= g(j, k) * now[static_cast<std::size_t>(k)];
        cov[static_cast<std::size_t>(j)] = v;
      }
      // Refactor the active Gram matrix (scikit-learn deletes the rows from its factor).
      const auto n = static_cast<int64_t>(active.size());
      std::fill(l.begin(), l.end(), 0.0);
      for (int64_t i = 0; i < n; ++i) {
        for (int64_t k = 0; k <= i; ++k) {
          double v = g(active[static_cast<std::size_t>(i)], active[static_cast<std::size_t>(k)]);
          for (int64_t q = 0; q < k; ++q) v -= l[static_cast<std::size_t>(i * ld + q)] * l[static_cast<std::size_t>(k * ld + q)];
          l[static_cast<std::size_t>(i * ld + k)] = i == k ? std::max(std::sqrt(std::abs(v)), kEps) : v / l[static_cast<std::size_t>(k * ld + k)];
        }
      }
    }
  }
  path.alphas.resize(static_cast<std::size_t>(n_iter + 1));
  path.coefs.resize(static_cast<std::size_t>(n_iter + 1));
  path.active = active;
  return path;
}

std::vector<int64_t> lasso_lars_ic(const torch::Tensor& x_in, const torch::Tensor& y_in, bool bic) {
  torch::Tensor x = x_in.to(torch::kFloat64), y = y_in.to(torch::kFloat64).reshape({-1});
  const int64_t n = x.size(0), p = x.size(1);
  if (n <= p + 1) {
    throw ConfigError("L1 selection by " + std::string(bic ? "BIC" : "AIC") + " estimates the noise from an OLS fit and "
                      "needs more coalitions than features + 1, got " + std::to_string(n) + " rows for " +
                      std::to_string(p) + " features; raise --nsamples or use --l1 num_features(K)");
  }
  // StandardScaler(with_mean=False): divide by the standard deviation (1 where it is 0).
  torch::Tensor scale = x.std(0, /*unbiased=*/false);
  scale = torch::where(scale == 0, torch::ones_like(scale), scale);
  x = x / scale;
  // LassoLarsIC(fit_intercept=True): centre x and y.
  x = x - x.mean(0, true);
  y = y - y.mean();
  const torch::Tensor gram = x.t().matmul(x), xy = x.t().matmul(y);
  const LarsPath path = lars_path(gram, xy, n, /*lasso=*/true, /*max_iter=*/500);
  // Noise variance from the OLS residuals (least squares, no intercept: already centred).
  const torch::Tensor beta = std::get<0>(torch::linalg_lstsq(x, y.unsqueeze(1), c10::nullopt, std::string("gelsd")));
  const double sigma2 = (y - x.matmul(beta).reshape({-1})).pow(2).sum().item<double>() / static_cast<double>(n - p - 1);
  const double factor = bic ? std::log(static_cast<double>(n)) : 2.0;
  const double yy = y.dot(y).item<double>();
  const double* gp = gram.data_ptr<double>();
  const double* xyp = xy.data_ptr<double>();
  std::size_t best = 0;
  double best_value = std::numeric_limits<double>::infinity();
  for (std::size_t s = 0; s < path.coefs.size(); ++s) {
    const auto& b = path.coefs[s];
    // RSS = yᵀy − 2 bᵀXᵀy + bᵀGb.
    double rss = yy, df = 0;
    for (int64_t i = 0; i < p; ++i) {
      const double bi = b[static_cast<std::size_t>(i)];
      if (bi == 0) continue;
      if (std::abs(bi) > kEps) df += 1;
      rss -= 2 * bi * xyp[i];
      for (int64_t j = 0; j < p; ++j) rss += bi * gp[i * p + j] * b[static_cast<std::size_t>(j)];
    }
    const double value = static_cast<double>(n) * std::log(2 * M_PI * sigma2) + rss / sigma2 + factor * df;
    if (value < best_value) {
      best_value = value;
      best = s;
    }
  }
  std::vector<int64_t> out;
  for (int64_t i = 0; i < p; ++i) {
    if (path.coefs[best][static_cast<std::size_t>(i)] != 0) out.push_back(i);
  }
  return out;
}

}  // namespace kiln::explain::detail
