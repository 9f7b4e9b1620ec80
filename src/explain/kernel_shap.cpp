// Kernel SHAP and exact Owen values over a batched coalition value function. The sampling follows
// shap's KernelExplainer.explain (shap 0.41, _kernel.py) step by step; bench/lib/kernel_shap.py is
// the same algorithm in numpy.
#include "kiln/explain/kernel_shap.h"

#include <algorithm>
#include <cstring>
#include <cmath>
#include <numeric>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "kiln/core/error.h"
#include "lars.h"
#include "shap_regression.h"

namespace kiln::explain {
namespace {

double binom(int64_t n, int64_t k) {
  double r = 1;
  for (int64_t i = 1; i <= k; ++i) r = r * static_cast<double>(n - k + i) / static_cast<double>(i);
  return r;
}

// Coalitions as rows of 0/1 bytes, with their kernel weights.
struct Samples {
  int64_t m = 0;
  std::vector<uint8_t> masks;  // row-major [rows, m]
  std::vector<double> weights;
  [[nodiscard]] int64_t rows() const { return static_cast<int64_t>(weights.size()); }
  void add(const std::vector<uint8_t>& mask, double w) {
    masks.insert(masks.end(), mask.begin(), mask.end());
    weights.push_back(w);
  }
};

// Rows of `s` by mask content: an open-addressing table of row
// indices, hashed on the mask bytes, compared in place (no key copies).
class RowSet {
 public:
  explicit RowSet(const Samples& s) : s_(s), slots_(1024, -1) {}
  // The row holding `mask` (m bytes), or -1.
  [[nodiscard]] int64_t find(const uint8_t* mask) const {
    for (std::size_t k = hash(mask) & (slots_.size() - 1);; k = (k + 1) & (slots_.size() - 1)) {
      const int64_t row = slots_[k];
      if (row < 0) return -1;
      if (std::memcmp(s_.masks.data() + row * s_.m, mask, static_cast<std::size_t>(s_.m)) == 0) return row;
    }
  }
  void insert(int64_t row) {
    rows_.push_back(row);
    if (2 * rows_.size() > slots_.size()) {
      slots_.assign(slots_.size() * 2, -1);
      for (int64_t r : rows_) place(r);
    } else {
      place(row);
    }
  }

 private:
  [[nodiscard]] std::size_t hash(const uint8_t* mask) const {
    uint64_t h = 1469598103934665603ull;  // FNV-1a
    for (int64_t i = 0; i < s_.m; ++i) h = (h ^ mask[i]) * 1099511628211ull;
    return static_cast<std::size_t>(h ^ (h >> 29));
  }
  void place(int64_t row) {
    std::size_t k = hash(s_.masks.data() + row * s_.m) & (slots_.size() - 1);
    while (slots_[k] >= 0) k = (k + 1) & (slots_.size() - 1);
    slots_[k] = row;
  }
  const Samples& s_;
  std::vector<int64_t> slots_;
  std::vector<int64_t> rows_;  // inserted rows (the drawn coalitions, not their complements)
};

torch::Tensor masks_tensor(const std::vector<uint8_t>& masks, int64_t rows, int64_t m) {
  auto t = torch::empty({rows, m}, torch::kBool);
  if (rows * m > 0) std::memcpy(t.data_ptr<bool>(), masks.data(), static_cast<std::size_t>(rows * m));
  return t;
}

torch::Tensor evaluate(const CoalitionValue& value, const std::vector<uint8_t>& masks, int64_t rows, int64_t m) {
  torch::Tensor out = value(masks_tensor(masks, rows, m)).to(torch::kFloat64).contiguous();
  if (out.dim() != 2 || out.size(0) != rows) {
    throw Error("explain: the coalition value function returned " + std::to_string(out.dim()) +
                " dimensions for " + std::to_string(rows) + " coalitions; expected [coalitions, outputs]");
  }
  return out;
}

// Calls visit(indices) for every k-subset of {0..m-1}, in itertools.combinations order.
template <typename F>
void for_each_combination(int64_t m, int64_t k, F&& visit) {
  std::vector<int64_t> idx(static_cast<std::size_t>(k));
  std::iota(idx.begin(), idx.end(), 0);
  while (true) {
    visit(idx);
    int64_t i = k - 1;
    while (i >= 0 && idx[static_cast<std::size_t>(i)] == m - k + i) --i;
    if (i < 0) return;
    ++idx[static_cast<std::size_t>(i)];
    for (int64_t j = i + 1; j < k; ++j) idx[static_cast<std::size_t>(j)] = idx[static_cast<std::size_t>(j - 1)] + 1;
  }
}

}  // namespace

void KernelShapOptions::validate() const {
  if (nsamples < 0) {
    throw ConfigError("nsamples must be >= 0 (0 = 2M + 2048), got " + std::to_string(nsamples));
  }
  if (l1 == L1Selection::kNumFeatures && l1_features < 1) {
    throw ConfigError("l1 num_features(K) must keep K >= 1 features, got " + std::to_string(l1_features));
  }
}

void parse_l1(const std::string& text, KernelShapOptions& options, const std::string& field) {
  const std::string prefix = "num_features(";
  auto bad = [&]() {
    return ConfigError(field + " must be none, num_features(K) with K >= 1, aic or bic, got '" + text + "'");
  };
  if (text == "none") {
    options.l1 = L1Selection::kNone;
  } else if (text == "aic") {
    options.l1 = L1Selection::kAic;
  } else if (text == "bic") {
    options.l1 = L1Selection::kBic;
  } else if (text.size() > prefix.size() + 1 && text.compare(0, prefix.size(), prefix) == 0 && text.back() == ')') {
    const std::string k = text.substr(prefix.size(), text.size() - prefix.size() - 1);
    if (k.empty() || k.size() > 9 || !std::all_of(k.begin(), k.end(), [](char ch) { return ch >= '0' && ch <= '9'; })) throw bad();
    options.l1 = L1Selection::kNumFeatures;
    options.l1_features = std::stoll(k);
    if (options.l1_features < 1) throw bad();
  } else {
    throw bad();
  }
}

ShapValues kernel_shap(int64_t features, const CoalitionValue& value, const KernelShapOptions& options) {
  options.validate();
  const int64_t m = features;
  ShapValues r;
  {
    std::vector<uint8_t> ends(static_cast<std::size_t>(2 * m), 0);
    std::fill(ends.begin() + m, ends.end(), 1);
    const torch::Tensor f = evaluate(value, ends, 2, m);
    r.base = f[0].clone();
    r.output = f[1].clone();
    r.evaluations = 2;
  }
  const int64_t c = r.base.size(0);
  r.values = torch::zeros({m, c}, torch::kFloat64);
  if (m == 0) {
    r.exact = true;
    return r;
  }
  if (m == 1) {
    r.values[0] = r.output - r.base;
    r.exact = true;
    return r;
  }
  int64_t nsamples = options.nsamples > 0 ? options.nsamples : 2 * m + 2048;
  if (m <= 30) nsamples = std::min<int64_t>(nsamples, (int64_t{1} << m) - 2);
  r.exact = m <= 30 && nsamples == (int64_t{1} << m) - 2;

  const int64_t sizes = (m - 1 + 1) / 2;  // ceil((M-1)/2)
  const int64_t paired = (m - 1) / 2;     // floor((M-1)/2)
  std::vector<double> weight(static_cast<std::size_t>(sizes));
  for (int64_t i = 1; i <= sizes; ++i) {
    weight[static_cast<std::size_t>(i - 1)] = static_cast<double>(m - 1) / static_cast<double>(i * (m - i));
  }
  for (int64_t i = 0; i < paired; ++i) weight[static_cast<std::size_t>(i)] *= 2;
  const double total = std::accumulate(weight.begin(), weight.end(), 0.0);
  for (auto& w : weight) w /= total;

  Samples s;
  s.m = m;
  s.masks.reserve(static_cast<std::size_t>((nsamples + 2) * m));
  s.weights.reserve(static_cast<std::size_t>(nsamples + 2));
  std::vector<uint8_t> mask(static_cast<std::size_t>(m));
  int64_t full_sizes = 0;
  double samples_left = static_cast<double>(nsamples);
  std::vector<double> remaining = weight;
  for (int64_t size = 1; size <= sizes; ++size) {
    double nsubsets = binom(m, size);
    if (size <= paired) nsubsets *= 2;
    if (samples_left * remaining[static_cast<std::size_t>(size - 1)] / nsubsets < 1.0 - 1e-8) break;
    ++full_sizes;
    samples_left -= nsubsets;
    if (remaining[static_cast<std::size_t>(size - 1)] < 1.0) {
      const double d = 1 - remaining[static_cast<std::size_t>(size - 1)];
      for (auto& w : remaining) w /= d;
    }
    double w = weight[static_cast<std::size_t>(size - 1)] / binom(m, size);
    if (size <= paired) w /= 2.0;
    for_each_combination(m, size, [&](const std::vector<int64_t>& idx) {
      std::fill(mask.begin(), mask.end(), 0);
      for (int64_t i : idx) mask[static_cast<std::size_t>(i)] = 1;
      s.add(mask, w);
      if (size <= paired) {
        for (auto& b : mask) b = 1 - b;
        s.add(mask, w);
      }
    });
  }

  const int64_t fixed = s.rows();
  int64_t left = nsamples - fixed;
  if (full_sizes != sizes && left > 0) {
    std::vector<double> probs(weight.begin() + full_sizes, weight.end());
    for (int64_t i = full_sizes; i < paired; ++i) probs[static_cast<std::size_t>(i - full_sizes)] /= 2;
    std::mt19937_64 rng(options.seed);
    std::discrete_distribution<int64_t> pick_size(probs.begin(), probs.end());
    std::vector<int64_t> perm(static_cast<std::size_t>(m));
    RowSet used(s);  // drawn coalitions -> their row
    const int64_t draws = 4 * left;
    for (int64_t draw = 0; left > 0 && draw < draws; ++draw) {
      const int64_t size = pick_size(rng) + full_sizes + 1;
      std::iota(perm.begin(), perm.end(), 0);
      std::fill(mask.begin(), mask.end(), 0);
      for (int64_t i = 0; i < size; ++i) {  // the first `size` of a uniform random permutation
        std::uniform_int_distribution<int64_t> pick(i, m - 1);
        std::swap(perm[static_cast<std::size_t>(i)], perm[static_cast<std::size_t>(pick(rng))]);
        mask[static_cast<std::size_t>(perm[static_cast<std::size_t>(i)])] = 1;
      }
      int64_t row = used.find(mask.data());
      const bool fresh = row < 0;
      if (fresh) {
        row = s.rows();
        s.add(mask, 1.0);
        used.insert(row);
        --left;
      } else {
        s.weights[static_cast<std::size_t>(row)] += 1.0;
      }
      if (left > 0 && size <= paired) {
        for (auto& b : mask) b = 1 - b;
        if (fresh) {
          --left;
          s.add(mask, 1.0);
        } else if (row + 1 < s.rows()) {
          s.weights[static_cast<std::size_t>(row + 1)] += 1.0;
        }
      }
    }
    const double weight_left = std::accumulate(weight.begin() + full_sizes, weight.end(), 0.0);
    const double sampled = std::accumulate(s.weights.begin() + fixed, s.weights.end(), 0.0);
    for (auto it = s.weights.begin() + fixed; it != s.weights.end(); ++it) *it *= weight_left / sampled;
  }

  const int64_t n = s.rows();
  const torch::Tensor ey = evaluate(value, s.masks, n, m);  // [n, C]
  r.evaluations += n;
  // Weighted least squares with base + Σφ = f(x) exactly (shap_regression.h).
  const torch::Tensor y = (ey - r.base.unsqueeze(0)).contiguous();
  const detail::Design design = detail::make_design(s.masks.data(), s.weights.data(), n, m, y.data_ptr<double>(), c);
  const torch::Tensor delta = (r.output - r.base).contiguous();
  std::vector<int64_t> all_features(static_cast<std::size_t>(m)), all_outputs(static_cast<std::size_t>(c));
  std::iota(all_features.begin(), all_features.end(), 0);
  std::iota(all_outputs.begin(), all_outputs.end(), 0);
  if (options.l1 == L1Selection::kNone) {
    detail::solve_constrained(design, all_features, all_outputs, delta.data_ptr<double>(), r.values.data_ptr<double>());
    return r;
  }
  // shap's l1_reg, per output: the augmented problem (rows weighted w(M − |z|) against z and
  // w|z| against z − 1, so both the value and the remainder to f(x) are fitted), then the fit on
  // the selected features only.
  const torch::Tensor z = masks_tensor(s.masks, n, m).to(torch::kFloat64);
  const torch::Tensor kw = torch::from_blob(s.weights.data(), {n}, torch::kFloat64);
  const torch::Tensor size = z.sum(1);
  const torch::Tensor root = torch::cat({kw * (static_cast<double>(m) - size), kw * size}).sqrt();  // [2n]
  const torch::Tensor x = root.unsqueeze(1) * torch::cat({z, z - 1.0}, 0);                           // [2n, M]
  const torch::Tensor gram = x.t().matmul(x);
  for (int64_t k = 0; k < c; ++k) {
    const torch::Tensor yk = y.select(1, k);
    const torch::Tensor ya = root * torch::cat({yk, yk - delta[k]});
    std::vector<int64_t> selected;
    if (options.l1 == L1Selection::kNumFeatures) {
      selected = detail::lars_path(gram, x.t().matmul(ya), 2 * n, /*lasso=*/false, options.l1_features).active;
    } else {
      selected = detail::lasso_lars_ic(x, ya, options.l1 == L1Selection::kBic);
    }
    detail::solve_constrained(design, selected, {k}, delta.data_ptr<double>(), r.values.data_ptr<double>());
  }
  return r;
}

ShapValues owen_values(int64_t features, const CoalitionValue& value) {
  const int64_t m = features;
  // Per feature, the coalitions it needs: for each of the 2^depth choices of sibling subtrees,
  // S and S ∪ {i}, with weight 2^-depth. Coalitions are deduplicated and evaluated in one call.
  std::vector<uint8_t> masks;
  std::unordered_map<std::string, int64_t> row_of;
  auto row = [&](const std::vector<uint8_t>& mask) {
    std::string key(mask.begin(), mask.end());
    const auto it = row_of.find(key);
    if (it != row_of.end()) return it->second;
    const auto r = static_cast<int64_t>(row_of.size());
    row_of.emplace(std::move(key), r);
    masks.insert(masks.end(), mask.begin(), mask.end());
    return r;
  };
  std::vector<uint8_t> empty(static_cast<std::size_t>(m), 0), full(static_cast<std::size_t>(m), 1);
  const int64_t empty_row = row(empty), full_row = row(full);
  struct Term {
    int64_t feature, with, without;
    double weight;
  };
  std::vector<Term> terms;
  std::vector<std::pair<int64_t, int64_t>> siblings;  // [begin, end) of each sibling on the path
  std::vector<uint8_t> mask(static_cast<std::size_t>(m));
  for (int64_t i = 0; i < m; ++i) {
    siblings.clear();
    int64_t lo = 0, hi = m;
    while (hi - lo > 1) {
      const int64_t mid = lo + (hi - lo + 1) / 2;
      if (i < mid) {
        siblings.emplace_back(mid, hi);
        hi = mid;
      } else {
        siblings.emplace_back(lo, mid);
        lo = mid;
      }
    }
    const auto depth = static_cast<int64_t>(siblings.size());
    const double w = std::ldexp(1.0, -static_cast<int>(depth));
    for (int64_t choice = 0; choice < (int64_t{1} << depth); ++choice) {
      std::fill(mask.begin(), mask.end(), 0);
      for (int64_t d = 0; d < depth; ++d) {
        if ((choice >> d) & 1) {
          for (int64_t k = siblings[static_cast<std::size_t>(d)].first; k < siblings[static_cast<std::size_t>(d)].second; ++k) {
            mask[static_cast<std::size_t>(k)] = 1;
          }
        }
      }
      const int64_t without = row(mask);
      mask[static_cast<std::size_t>(i)] = 1;
      terms.push_back({i, row(mask), without, w});
    }
  }
  const auto n = static_cast<int64_t>(row_of.size());
  const torch::Tensor f = evaluate(value, masks, n, m);
  ShapValues r;
  r.base = f[empty_row].clone();
  r.output = f[full_row].clone();
  r.evaluations = n;
  r.exact = true;
  const int64_t c = f.size(1);
  r.values = torch::zeros({m, c}, torch::kFloat64);
  const double* fp = f.data_ptr<double>();
  double* vp = r.values.data_ptr<double>();
  for (const auto& t : terms) {
    for (int64_t k = 0; k < c; ++k) vp[t.feature * c + k] += t.weight * (fp[t.with * c + k] - fp[t.without * c + k]);
  }
  return r;
}

}  // namespace kiln::explain
