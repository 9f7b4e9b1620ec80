#include "kiln/nn/sparse_embed.h"

#include <algorithm>
#include <string>
#include <vector>

#include <ATen/Parallel.h>

#include "bag_kernels.h"
#include "kiln/core/error.h"
#include "kiln/nn/input_spec.h"

namespace kiln::nn {

SparseBatch bag_of(const Batch& batch) {
  return SparseBatch{batch.at(kBagIndices), batch.at(kBagOffsets), batch.get(kBagWeights)};
}

SparseBatch SparseBatch::to(torch::Device device) const {
  SparseBatch out;
  if (indices.defined()) out.indices = indices.to(device);
  if (offsets.defined()) out.offsets = offsets.to(device);
  if (weights.defined()) out.weights = weights.to(device);
  return out;
}

namespace {

std::string describe(const torch::Tensor& t) {
  if (!t.defined()) return "undefined";
  std::string shape = "[";
  for (int64_t d = 0; d < t.dim(); ++d) shape += (d ? ", " : "") + std::to_string(t.size(d));
  return std::string(c10::toString(t.scalar_type())) + " " + shape + "]";
}

DataError index_error(int64_t value, int64_t input_dim) {
  return DataError("SparseBatch.indices has value " + std::to_string(value) + " outside [0, " +
                   std::to_string(input_dim) + ") (the model's input_dim); featurizer and model disagree");
}

DataError first_offset_error(int64_t first) {
  return DataError("SparseBatch.offsets[0] must be 0, got " + std::to_string(first));
}

DataError last_offset_error(int64_t rows, int64_t last, int64_t nnz) {
  return DataError("SparseBatch.offsets[" + std::to_string(rows - 1) + "] = " + std::to_string(last) +
                   " exceeds nnz = " + std::to_string(nnz));
}

DataError empty_offsets_error(int64_t nnz) {
  return DataError("SparseBatch.offsets is empty but indices has " + std::to_string(nnz) + " entries");
}

// The value checks of check_sparse_batch for host tensors: one scan each, no tensor ops. Reports
// the same first problem, with the same message, as the tensor-op path.
void check_values_on_host(const SparseBatch& batch, int64_t input_dim) {
  const auto indices = batch.indices.contiguous();
  const auto offsets = batch.offsets.contiguous();
  const int64_t nnz = indices.numel();
  const int64_t rows = offsets.numel();
  const int64_t* ip = indices.data_ptr<int64_t>();
  if (nnz > 0) {
    int64_t lo = ip[0], hi = ip[0];
    for (int64_t k = 1; k < nnz; ++k) {
      lo = std::min(lo, ip[k]);
      hi = std::max(hi, ip[k]);
    }
    if (lo < 0 || hi >= input_dim) throw index_error(lo < 0 ? lo : hi, input_dim);
  }
  if (rows == 0) {
    if (nnz > 0) throw empty_offsets_error(nnz);
    return;
  }
  const int64_t* op = offsets.data_ptr<int64_t>();
  if (op[0] != 0) throw first_offset_error(op[0]);
  if (op[rows - 1] > nnz) throw last_offset_error(rows, op[rows - 1], nnz);
  for (int64_t b = 1; b < rows; ++b) {
    if (op[b] < op[b - 1]) throw DataError("SparseBatch.offsets must be non-decreasing");
  }
}

// Sum-mode EmbeddingBag whose backward builds the coalesced row-sparse gradient directly: one
// accumulation into the distinct rows the batch touches (sorted), instead of torch's
// [nnz, dim] per-entry gradient that the optimizer and the clip would then sort and sum. Same
// values up to the order of the additions. Forward is LibTorch's embedding_bag.
class SparseRowsBagSum : public torch::autograd::Function<SparseRowsBagSum> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& weight,
                               const torch::Tensor& indices, const torch::Tensor& offsets,
                               const c10::optional<torch::Tensor>& per_sample_weights) {
    const torch::Tensor w = per_sample_weights.value_or(torch::Tensor());
    ctx->save_for_backward({indices, offsets});
    ctx->saved_data["weights"] = w;
    ctx->saved_data["rows"] = weight.size(0);
    return std::get<0>(torch::embedding_bag(weight, indices, offsets, /*scale_grad_by_freq=*/false, /*mode=sum*/ 0,
                                            /*sparse=*/true, w));
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const int64_t table_rows = ctx->saved_data["rows"].toInt();
    const auto& weights = ctx->saved_data["weights"];
    return {row_sparse_gradient(grads[0].contiguous(), saved[0].contiguous(), saved[1].contiguous(),
                                weights.isTensor() ? weights.toTensor() : torch::Tensor(), table_rows),
            torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }

 private:
  static torch::Tensor row_sparse_gradient(const torch::Tensor& grad, const torch::Tensor& indices,
                                           const torch::Tensor& offsets, const torch::Tensor& per_sample,
                                           int64_t table_rows) {
    const int64_t nnz = indices.numel();
    const int64_t bags = offsets.numel();
    const int64_t dim = grad.size(1);
    const int64_t* ip = indices.data_ptr<int64_t>();
    const int64_t* op = offsets.data_ptr<int64_t>();

    // Distinct rows, sorted; slot_of[row] = its position. The map persists (all -1 between calls)
    // so a step costs O(nnz + distinct log distinct), not O(table).
    thread_local std::vector<int64_t> slot_of;
    if (static_cast<int64_t>(slot_of.size()) < table_rows) slot_of.resize(static_cast<std::size_t>(table_rows), -1);
    std::vector<int64_t> distinct;
    for (int64_t k = 0; k < nnz; ++k) {
      auto& s = slot_of[static_cast<std::size_t>(ip[k])];
      if (s < 0) {
        s = 0;
        distinct.push_back(ip[k]);
      }
    }
    std::sort(distinct.begin(), distinct.end());
    const auto count = static_cast<int64_t>(distinct.size());
    for (int64_t u = 0; u < count; ++u) slot_of[static_cast<std::size_t>(distinct[static_cast<std::size_t>(u)])] = u;

    const int64_t* slots = slot_of.data();  // the workers below have their own thread_local map
    auto values = torch::zeros({count, dim}, grad.options());
    const auto weights = per_sample.defined() ? per_sample.to(grad.scalar_type()).contiguous() : torch::Tensor();
    AT_DISPATCH_FLOATING_TYPES(grad.scalar_type(), "kiln_row_sparse_gradient", [&] {
      const scalar_t* gp = grad.data_ptr<scalar_t>();
      const scalar_t* wp = weights.defined() ? weights.data_ptr<scalar_t>() : nullptr;
      scalar_t* vp = values.data_ptr<scalar_t>();
      // Columns split across threads: every column sums its entries in the same order whatever
      // the split, so the result does not depend on the thread count.
      const int64_t grain = std::max<int64_t>(64, (int64_t{1} << 16) / std::max<int64_t>(1, nnz));
      at::parallel_for(0, dim, grain, [&](int64_t c0, int64_t c1) {
        detail::bag_sum_backward(vp, gp, op, ip, slots, wp, bags, nnz, dim, c0, c1);
      });
    });
    for (int64_t row : distinct) slot_of[static_cast<std::size_t>(row)] = -1;

    auto rows = torch::from_blob(distinct.data(), {1, count}, torch::kInt64).clone();
    auto out = at::_sparse_coo_tensor_unsafe(rows, values, {table_rows, dim}, grad.options().layout(torch::kSparse));
    out._coalesced_(true);
    return out;
  }
};

// Whether `bag` can take the fused backward: a sum-mode table with sparse gradients being trained,
// on host float tensors, with constant per-sample weights and no options the fused path ignores.
bool fused_backward_applies(const torch::nn::EmbeddingBag& bag, const SparseBatch& batch, const torch::Tensor& w) {
  const auto& o = bag->options;
  const auto& weight = bag->weight;
  return torch::GradMode::is_enabled() && weight.requires_grad() && o.sparse() &&
         c10::get_if<torch::enumtype::kSum>(&o.mode()) != nullptr && !o.max_norm() && !o.scale_grad_by_freq() &&
         !o.include_last_offset() && !o.padding_idx() && weight.device().is_cpu() && batch.indices.device().is_cpu() &&
         batch.offsets.device().is_cpu() && (weight.scalar_type() == torch::kFloat32 || weight.scalar_type() == torch::kFloat64) &&
         (!w.defined() || !w.requires_grad());
}

}  // namespace

void check_sparse_batch(const SparseBatch& batch, int64_t input_dim) {
  if (!batch.indices.defined() || batch.indices.dim() != 1 || batch.indices.scalar_type() != torch::kInt64) {
    throw DataError("SparseBatch.indices must be an int64 tensor [nnz], got " + describe(batch.indices));
  }
  if (!batch.offsets.defined() || batch.offsets.dim() != 1 || batch.offsets.scalar_type() != torch::kInt64) {
    throw DataError("SparseBatch.offsets must be an int64 tensor [batch], got " + describe(batch.offsets));
  }
  const int64_t nnz = batch.indices.size(0);
  if (batch.weights.defined() &&
      (batch.weights.dim() != 1 || batch.weights.size(0) != nnz || !batch.weights.is_floating_point())) {
    throw DataError("SparseBatch.weights must be undefined or a floating tensor [" + std::to_string(nnz) +
                    "] matching indices, got " + describe(batch.weights));
  }
  const int64_t rows = batch.offsets.size(0);
  if (batch.indices.device().is_cpu() && batch.offsets.device().is_cpu()) {
    check_values_on_host(batch, input_dim);
    return;
  }
  if (nnz > 0) {
    const int64_t lo = batch.indices.min().item<int64_t>();
    const int64_t hi = batch.indices.max().item<int64_t>();
    if (lo < 0 || hi >= input_dim) throw index_error(lo < 0 ? lo : hi, input_dim);
  }
  if (rows > 0) {
    const int64_t first = batch.offsets[0].item<int64_t>();
    const int64_t last = batch.offsets[rows - 1].item<int64_t>();
    if (first != 0) throw first_offset_error(first);
    if (last > nnz) throw last_offset_error(rows, last, nnz);
    if (rows > 1 && (batch.offsets.slice(0, 1) < batch.offsets.slice(0, 0, rows - 1)).any().item<bool>()) {
      throw DataError("SparseBatch.offsets must be non-decreasing");
    }
  } else if (nnz > 0) {
    throw empty_offsets_error(nnz);
  }
}

namespace {

// Inference over many bags that share few table rows (an explanation's coalitions of one text:
// hundreds of bags over the same hundred-odd features): the weighted sums as one GEMM, X [bags,
// distinct rows] · W[distinct rows], instead of one row gather per entry. The same values up to the
// order of the additions. Undefined when it does not apply: gradients on, not a float32 CPU table,
// a table narrower than 32 or with max_norm/padding_idx, fewer than
// 64 bags or 4 entries per bag, or more distinct rows than 4 times the mean bag length
// (then the dense product would do more work than the gathers it replaces).
torch::Tensor pooled_sum_dense(const torch::nn::EmbeddingBag& bag, const SparseBatch& batch, const torch::Tensor& w) {
  const auto& weight = bag->weight;
  const auto& o = bag->options;
  if (torch::GradMode::is_enabled() || !weight.device().is_cpu() || weight.scalar_type() != torch::kFloat ||
      weight.size(1) < 32 || (w.defined() && w.scalar_type() != torch::kFloat) || o.max_norm().has_value() ||
      o.padding_idx().has_value() || o.include_last_offset()) {
    return {};
  }
  const int64_t rows = batch.offsets.size(0), nnz = batch.indices.size(0);
  if (rows < 64 || nnz < 4 * rows) return {};
  const int64_t limit = 4 * nnz / rows;
  // Distinct rows in first-seen order, through a small open-addressing table; gives up past `limit`.
  std::size_t slots = 64;
  while (slots < static_cast<std::size_t>(4 * limit)) slots *= 2;
  std::vector<int64_t> keys(slots, -1);
  std::vector<int32_t> local(slots, 0);
  std::vector<int64_t> distinct;
  std::vector<int32_t> column(static_cast<std::size_t>(nnz));
  const auto indices = batch.indices.contiguous();
  const int64_t* ip = indices.data_ptr<int64_t>();
  for (int64_t e = 0; e < nnz; ++e) {
    const int64_t key = ip[e];
    std::size_t k = static_cast<std::size_t>((static_cast<uint64_t>(key) * 0x9E3779B97F4A7C15ull) >> 20) & (slots - 1);
    while (keys[k] != key && keys[k] != -1) k = (k + 1) & (slots - 1);
    if (keys[k] == -1) {
      if (static_cast<int64_t>(distinct.size()) >= limit) return {};
      keys[k] = key;
      local[k] = static_cast<int32_t>(distinct.size());
      distinct.push_back(key);
    }
    column[static_cast<std::size_t>(e)] = local[k];
  }
  const auto f = static_cast<int64_t>(distinct.size());
  auto x = torch::zeros({rows, f}, weight.options());
  float* xp = x.data_ptr<float>();
  const auto offsets = batch.offsets.contiguous();
  const int64_t* op = offsets.data_ptr<int64_t>();
  const torch::Tensor wc = w.defined() ? w.contiguous() : torch::Tensor();
  const float* wp = wc.defined() ? wc.data_ptr<float>() : nullptr;
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t end = r + 1 < rows ? op[r + 1] : nnz;
    for (int64_t e = op[r]; e < end; ++e) xp[r * f + column[static_cast<std::size_t>(e)]] += wp ? wp[e] : 1.0f;
  }
  const auto ids = torch::from_blob(distinct.data(), {f}, torch::kInt64);
  return x.mm(weight.index_select(0, ids));
}

}  // namespace

torch::Tensor embed_sparse(torch::nn::EmbeddingBag& bag, const SparseBatch& batch, Pooling pooling) {
  const auto& weight = bag->weight;
  check_sparse_batch(batch, weight.size(0));
  const int64_t rows = batch.offsets.size(0);
  if (rows == 0) return torch::zeros({0, weight.size(1)}, weight.options());

  torch::Tensor w;
  if (batch.weights.defined()) w = batch.weights.to(weight.scalar_type());
  if (pooling == Pooling::kSum) {
    if (torch::Tensor dense = pooled_sum_dense(bag, batch, w); dense.defined()) return dense;
  }
  const torch::Tensor pooled = fused_backward_applies(bag, batch, w)
                                   ? SparseRowsBagSum::apply(weight, batch.indices, batch.offsets,
                                                             w.defined() ? c10::optional<torch::Tensor>(w) : c10::nullopt)
                                   : bag->forward(batch.indices, batch.offsets, w);
  if (pooling == Pooling::kSum) return pooled;

  // Mean: divide each row by the sum of its weights (its entry count when unweighted); sqrtn: by the
  // root of the sum of their squares. Dividing the
  // pooled sum equals renormalising the weights, at O(batch) instead of O(nnz) extra work.
  const int64_t nnz = batch.indices.size(0);
  const auto ends = torch::cat({batch.offsets.slice(0, 1), torch::full({1}, nnz, batch.offsets.options())});
  const auto counts = ends - batch.offsets;
  torch::Tensor totals;
  const bool sqrtn = pooling == Pooling::kSqrtN;
  if (w.defined()) {
    const auto row_of_entry = torch::repeat_interleave(torch::arange(rows, counts.options()), counts);
    totals = torch::zeros({rows}, pooled.options()).index_add_(0, row_of_entry, sqrtn ? w * w : w);
  } else {
    totals = counts.to(pooled.scalar_type());
  }
  if (sqrtn) totals = totals.sqrt();
  totals = torch::where(totals == 0, torch::ones_like(totals), totals);
  return pooled / totals.unsqueeze(1);
}

}  // namespace kiln::nn
