#include "truncnorm.h"

#include <cmath>
#include <limits>

namespace kiln::tune::truncnorm {

namespace {

constexpr double kSqrt2 = 1.41421356237309504880;
constexpr double kLogSqrt2Pi = 0.91893853320467274178;  // log(sqrt(2 pi))

double ndtr(double a) {
  const double x = a / kSqrt2;
  if (x < -1 / kSqrt2) return 0.5 * std::erfc(-x);
  if (x < 1 / kSqrt2) return 0.5 + 0.5 * std::erf(x);
  return 1.0 - 0.5 * std::erfc(x);
}

// log(exp(p) - exp(q)) for q <= p.
double log_diff(double log_p, double log_q) { return log_p + std::log1p(-std::exp(log_q - log_p)); }

double log_add_exp(double x, double y) {
  if (x == y) return x + std::log(2.0);  // also covers both -inf
  const double m = std::fmax(x, y);
  return m + std::log1p(std::exp(-std::fabs(x - y)));
}

double horner(const double* c, int n, double x) {
  double s = c[n - 1];
  for (int i = n - 2; i >= 0; --i) s = s * x + c[i];
  return s;
}

// Wichura's AS 241 (PPND16) normal quantile, taking log(p) so the lower tail never underflows.
double ndtri_from_log(double log_p) {
  static const double a[] = {3.3871328727963666080e0, 1.3314166789178437745e+2, 1.9715909503065514427e+3,
                             1.3731693765509461125e+4, 4.5921953931549871457e+4, 6.7265770927008700853e+4,
                             3.3430575583588128105e+4, 2.5090809287301226727e+3};
  static const double b[] = {1.0, 4.2313330701600911252e+1, 6.8718700749205790830e+2, 5.3941960214247511077e+3,
                             2.1213794301586595867e+4, 3.9307895800092710610e+4, 2.8729085735721942674e+4,
                             5.2264952788528545610e+3};
  static const double c[] = {1.42343711074968357734e0, 4.63033784615654529590e0, 5.76949722146069140550e0,
                             3.64784832476320460504e0, 1.27045825245236838258e0, 2.41780725177450611770e-1,
                             2.27238449892691845833e-2, 7.74545014278341407640e-4};
  static const double d[] = {1.0, 2.05319162663775882187e0, 1.67638483018380384940e0, 6.89767334985100004550e-1,
                             1.48103976427480074590e-1, 1.51986665636164571966e-2, 5.47593808499534494600e-4,
                             1.05075007164441684324e-9};
  static const double e[] = {6.65790464350110377720e0, 5.46378491116411436990e0, 1.78482653991729133580e0,
                             2.96560571828504891230e-1, 2.65321895265761230930e-2, 1.24266094738807843860e-3,
                             2.71155556874348757815e-5, 2.01033439929228813265e-7};
  static const double f[] = {1.0, 5.99832206555887937690e-1, 1.36929880922735805310e-1, 1.48753612908506148525e-2,
                             7.86869131145613259100e-4, 1.84631831751005468180e-5, 1.42151175831644588870e-7,
                             2.04426310338993978564e-15};
  const double p = std::exp(log_p);
  const double q = p - 0.5;
  if (std::fabs(q) <= 0.425) {
    const double r = 0.180625 - q * q;
    return q * horner(a, 8, r) / horner(b, 8, r);
  }
  // log(min(p, 1 - p)), computed without forming 1 - p when p is tiny.
  const double log_tail = q < 0 ? log_p : std::log(-std::expm1(log_p));
  double r = std::sqrt(-log_tail);
  double x;
  if (r <= 5.0) {
    r -= 1.6;
    x = horner(c, 8, r) / horner(d, 8, r);
  } else {
    r -= 5.0;
    x = horner(e, 8, r) / horner(f, 8, r);
  }
  return q < 0 ? -x : x;
}

}  // namespace

double log_ndtr(double a) {
  if (a > 6) return -ndtr(-a);
  if (a > -20) return std::log(ndtr(a));
  // Asymptotic series of the lower tail.
  const double log_lhs = -0.5 * a * a - std::log(-a) - kLogSqrt2Pi;
  double last_total = 0.0, rhs = 1.0, numerator = 1.0, denom_factor = 1.0;
  const double denom_cons = 1.0 / (a * a);
  int sign = 1;
  for (int i = 1; std::fabs(last_total - rhs) > std::numeric_limits<double>::epsilon() && i < 1000; ++i) {
    last_total = rhs;
    sign = -sign;
    denom_factor *= denom_cons;
    numerator *= 2 * i - 1;
    rhs += sign * numerator * denom_factor;
  }
  return log_lhs + std::log(rhs);
}

double log_gauss_mass(double a, double b) {
  if (b <= 0) return log_diff(log_ndtr(b), log_ndtr(a));
  if (a > 0) return log_diff(log_ndtr(-a), log_ndtr(-b));
  // Central case: 1 - both tails, without cancellation as the mass approaches 1.
  const double tail_a = 0.5 + 0.5 * std::erf(a / kSqrt2);
  const double tail_b = 0.5 + 0.5 * std::erf(-b / kSqrt2);
  return std::log1p(-tail_a - tail_b);
}

double ndtri_exp(double y) {
  if (y >= 0) return std::numeric_limits<double>::infinity();
  if (std::isinf(y)) return -std::numeric_limits<double>::infinity();
  double x = ndtri_from_log(y);
  // Two Newton steps on log(Phi(x)) = y polish the last bits (d/dx log Phi = phi / Phi).
  for (int i = 0; i < 2; ++i) {
    const double lp = log_ndtr(x);
    const double slope = std::exp(-0.5 * x * x - kLogSqrt2Pi - lp);
    if (!(slope > 0) || !std::isfinite(slope)) break;
    const double next = x - (lp - y) / slope;
    if (!std::isfinite(next)) break;
    x = next;
  }
  return x;
}

double ppf(double q, double a, double b) {
  if (a == b) return std::numeric_limits<double>::quiet_NaN();
  if (q <= 0) return a;
  if (q >= 1) return b;
  double x;
  if (a < 0) {
    x = ndtri_exp(log_add_exp(log_ndtr(a), std::log(q) + log_gauss_mass(a, b)));
  } else {
    x = -ndtri_exp(log_add_exp(log_ndtr(-b), std::log1p(-q) + log_gauss_mass(a, b)));
  }
  // Rounding can step a hair outside the truncation interval.
  return std::fmin(std::fmax(x, a), b);
}

}  // namespace kiln::tune::truncnorm
