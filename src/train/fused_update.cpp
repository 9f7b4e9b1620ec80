#include "fused_update.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>

#include "adamw_kernel.h"

namespace kiln::train {
namespace {

// Elements per parallel chunk: below this a thread hand-off costs more than the arithmetic.
constexpr int64_t kGrainElements = 1 << 16;

int64_t row_grain(int64_t dim) { return std::max<int64_t>(1, kGrainElements / std::max<int64_t>(1, dim)); }

template <typename T>
AdamWCoeffs<T> coeffs(const AdamWStep& s) {
  const double bc1 = 1 - std::pow(s.beta1, static_cast<double>(s.step));
  const double bc2 = 1 - std::pow(s.beta2, static_cast<double>(s.step));
  AdamWCoeffs<T> c;
  c.has_decay = s.weight_decay != 0;
  c.decay = static_cast<T>(1 - s.lr * s.weight_decay);
  c.beta1 = static_cast<T>(s.beta1);
  c.one_minus_beta1 = static_cast<T>(1 - s.beta1);
  c.beta2 = static_cast<T>(s.beta2);
  c.one_minus_beta2 = static_cast<T>(1 - s.beta2);
  c.sqrt_bc2 = static_cast<T>(std::sqrt(bc2));
  c.eps = static_cast<T>(s.eps);
  c.neg_step_size = static_cast<T>(-(s.lr / bc1));
  return c;
}

}  // namespace

bool fusable(const torch::Tensor& t) {
  return t.defined() && t.device().is_cpu() && t.layout() == torch::kStrided && t.is_contiguous() &&
         (t.scalar_type() == torch::kFloat32 || t.scalar_type() == torch::kFloat64);
}

void adamw_dense(torch::Tensor& w, torch::Tensor& m, torch::Tensor& v, const torch::Tensor& g, const AdamWStep& s) {
  const int64_t n = w.numel();
  AT_DISPATCH_FLOATING_TYPES(w.scalar_type(), "kiln_adamw_dense", [&] {
    const auto c = coeffs<scalar_t>(s);
    scalar_t* wp = w.data_ptr<scalar_t>();
    scalar_t* mp = m.data_ptr<scalar_t>();
    scalar_t* vp = v.data_ptr<scalar_t>();
    const scalar_t* gp = g.data_ptr<scalar_t>();
    at::parallel_for(0, n, kGrainElements, [&](int64_t begin, int64_t end) {
      adamw_span(wp + begin, mp + begin, vp + begin, gp + begin, end - begin, c);
    });
  });
}

void adamw_rows(torch::Tensor& w, torch::Tensor& m, torch::Tensor& v, const torch::Tensor& rows,
                const torch::Tensor& values, const AdamWStep& s) {
  const int64_t count = rows.numel();
  const int64_t dim = count > 0 ? values.numel() / count : 0;
  const auto rows_c = rows.to(torch::kInt64).contiguous();
  const int64_t* rp = rows_c.data_ptr<int64_t>();
  AT_DISPATCH_FLOATING_TYPES(w.scalar_type(), "kiln_adamw_rows", [&] {
    const auto c = coeffs<scalar_t>(s);
    scalar_t* wp = w.data_ptr<scalar_t>();
    scalar_t* mp = m.data_ptr<scalar_t>();
    scalar_t* vp = v.data_ptr<scalar_t>();
    const scalar_t* gp = values.data_ptr<scalar_t>();
    at::parallel_for(0, count, row_grain(dim), [&](int64_t begin, int64_t end) {
      for (int64_t k = begin; k < end; ++k) {
        const int64_t off = rp[k] * dim;
        adamw_span(wp + off, mp + off, vp + off, gp + k * dim, dim, c);
      }
    });
  });
}

void sgd_rows(torch::Tensor& w, torch::Tensor* buffer, const torch::Tensor& rows, const torch::Tensor& values,
              double lr, double weight_decay, double momentum, bool nesterov) {
  const int64_t count = rows.numel();
  const int64_t dim = count > 0 ? values.numel() / count : 0;
  const auto rows_c = rows.to(torch::kInt64).contiguous();
  const int64_t* rp = rows_c.data_ptr<int64_t>();
  AT_DISPATCH_FLOATING_TYPES(w.scalar_type(), "kiln_sgd_rows", [&] {
    const auto wd = static_cast<scalar_t>(weight_decay);
    const auto mom = static_cast<scalar_t>(momentum);
    const auto neg_lr = static_cast<scalar_t>(-lr);
    scalar_t* wp = w.data_ptr<scalar_t>();
    scalar_t* bp = buffer ? buffer->data_ptr<scalar_t>() : nullptr;
    const scalar_t* gp = values.data_ptr<scalar_t>();
    at::parallel_for(0, count, row_grain(dim), [&](int64_t begin, int64_t end) {
      for (int64_t k = begin; k < end; ++k) {
        scalar_t* wr = wp + rp[k] * dim;
        scalar_t* br = bp ? bp + rp[k] * dim : nullptr;
        const scalar_t* gr = gp + k * dim;
        for (int64_t i = 0; i < dim; ++i) {
          scalar_t d = gr[i];
          if (weight_decay != 0) d = d + wd * wr[i];
          if (br) {
            const scalar_t b = br[i] * mom + d;  // dampening 0
            br[i] = b;
            d = nesterov ? d + mom * b : b;
          }
          wr[i] = wr[i] + neg_lr * d;
        }
      }
    });
  });
}

double sum_of_squares(const torch::Tensor& t) {
  const int64_t n = t.numel();
  double total = 0;
  AT_DISPATCH_FLOATING_TYPES(t.scalar_type(), "kiln_sum_of_squares", [&] {
    // Blocks of kBlock elements summed in 16 independent lanes of T (which the compiler maps to
    // vector registers), block sums added in double: accurate like torch's cascade sum, and fast.
    constexpr int64_t kLanes = 16;
    constexpr int64_t kBlock = 1024;
    const scalar_t* p = t.data_ptr<scalar_t>();
    for (int64_t start = 0; start < n; start += kBlock) {
      const int64_t end = std::min(n, start + kBlock);
      scalar_t acc[kLanes] = {};
      int64_t i = start;
      for (; i + kLanes <= end; i += kLanes) {
        for (int64_t j = 0; j < kLanes; ++j) acc[j] += p[i + j] * p[i + j];
      }
      double block = 0;
      for (; i < end; ++i) block += static_cast<double>(p[i]) * static_cast<double>(p[i]);
      for (int64_t j = 0; j < kLanes; ++j) block += static_cast<double>(acc[j]);
      total += block;
    }
  });
  return total;
}

void scale_in_place(torch::Tensor& t, double factor) {
  const int64_t n = t.numel();
  AT_DISPATCH_FLOATING_TYPES(t.scalar_type(), "kiln_scale", [&] {
    const auto f = static_cast<scalar_t>(factor);
    scalar_t* p = t.data_ptr<scalar_t>();
    at::parallel_for(0, n, kGrainElements, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) p[i] *= f;
    });
  });
}

}  // namespace kiln::train
