#include "kiln/nn/batch.h"

#include <algorithm>
#include <cstring>

#include "kiln/core/error.h"
#include "kiln/nn/input_spec.h"

namespace kiln::nn {
namespace {

constexpr const char* kOffsetsSuffix = "_offsets";

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// The ragged group a tensor belongs to ("bag" for bag_indices, bag_offsets, bag_weights), or "" when
// the tensor has the examples on dimension 0.
std::string ragged_group(const std::map<std::string, torch::Tensor>& tensors, const std::string& name) {
  for (const char* suffix : {"_indices", "_weights", kOffsetsSuffix}) {
    if (!ends_with(name, suffix)) continue;
    const std::string group = name.substr(0, name.size() - std::strlen(suffix));
    if (tensors.count(group + kOffsetsSuffix)) return group;
  }
  return "";
}

torch::Tensor offsets_cpu(const torch::Tensor& offsets) {
  return offsets.to(torch::kCPU, torch::kInt64).contiguous();
}

// Entries of a ragged member tensor: its first dimension.
int64_t entries(const torch::Tensor& t) { return t.dim() == 0 ? 0 : t.size(0); }

}  // namespace

const torch::Tensor& Batch::at(const std::string& name) const {
  const auto it = tensors_.find(name);
  if (it != tensors_.end()) return it->second;
  std::string held;
  for (const auto& [n, t] : tensors_) held += (held.empty() ? "" : ", ") + n;
  throw DataError("the batch has no tensor '" + name + "' (it holds: " + (held.empty() ? "nothing" : held) +
                  "); the model and the preprocessors do not match");
}

torch::Tensor Batch::get(const std::string& name) const {
  const auto it = tensors_.find(name);
  return it == tensors_.end() ? torch::Tensor() : it->second;
}

Batch Batch::to(torch::Device device) const {
  Batch out(size_);
  for (const auto& [name, t] : tensors_) out.tensors_[name] = t.defined() ? t.to(device) : t;
  return out;
}

Batch Batch::slice(int64_t start, int64_t count) const {
  if (start < 0 || count < 0 || start + count > size_) {
    throw Error("Batch::slice: examples [" + std::to_string(start) + ", " + std::to_string(start + count) +
                ") outside a batch of " + std::to_string(size_));
  }
  Batch out(count);
  for (const auto& [name, t] : tensors_) {
    if (!t.defined()) continue;
    const std::string group = ragged_group(tensors_, name);
    if (group.empty()) {
      out.tensors_[name] = t.narrow(0, start, count);
      continue;
    }
    const auto off = offsets_cpu(tensors_.at(group + kOffsetsSuffix));
    const int64_t* o = off.data_ptr<int64_t>();
    const int64_t total = entries(tensors_.count(group + "_indices") ? tensors_.at(group + "_indices") : t);
    const int64_t begin = start < size_ ? o[start] : total;
    const int64_t end = start + count < size_ ? o[start + count] : total;
    if (ends_with(name, kOffsetsSuffix)) {
      out.tensors_[name] = t.narrow(0, start, count) - begin;
    } else {
      out.tensors_[name] = t.narrow(0, begin, end - begin);
    }
  }
  return out;
}

Batch Batch::select(const int64_t* ids, int64_t count) const {
  BatchGatherer g;
  Batch view = g.gather(*this, ids, count);
  Batch out(count);
  for (const auto& [name, t] : view.tensors_) out.tensors_[name] = t.clone();
  return out;
}

Batch Batch::concat(const std::vector<Batch>& parts) {
  if (parts.empty()) return Batch();
  if (parts.size() == 1) return parts.front();
  int64_t total = 0;
  for (const auto& p : parts) {
    total += p.size_;
    if (p.tensors_.size() != parts.front().tensors_.size()) {
      throw Error("Batch::concat: the parts hold different tensors; encode them with the same preprocessors");
    }
  }
  Batch out(total);
  for (const auto& [name, first] : parts.front().tensors_) {
    std::vector<torch::Tensor> pieces;
    pieces.reserve(parts.size());
    for (const auto& p : parts) pieces.push_back(p.at(name));
    const std::string group = ragged_group(parts.front().tensors_, name);
    if (!group.empty() && ends_with(name, kOffsetsSuffix)) {
      // One pass over the parts' offsets, each shifted by the entries before it (no tensor op per
      // part: the learner concatenates hundreds of one-example parts).
      auto joined = torch::empty({total}, torch::kInt64);
      int64_t* o = joined.data_ptr<int64_t>();
      int64_t shift = 0;
      const std::string member = parts.front().has(group + "_indices") ? group + "_indices" : group + "_weights";
      for (std::size_t i = 0; i < parts.size(); ++i) {
        const auto off = offsets_cpu(pieces[i]);
        const int64_t* src = off.data_ptr<int64_t>();
        for (int64_t k = 0; k < off.numel(); ++k) *o++ = src[k] + shift;
        shift += entries(parts[i].at(member));
      }
      out.tensors_[name] = joined.to(first.device(), first.scalar_type());
      continue;
    }
    if (group.empty() && first.dim() >= 2) {
      // Pad every dimension after the first to the parts' longest (sequences; windows of sequences).
      std::vector<int64_t> longest(first.sizes().begin(), first.sizes().end());
      for (const auto& t : pieces) {
        if (t.dim() != first.dim()) {
          throw Error("Batch::concat: tensor '" + name + "' has " + std::to_string(t.dim()) + " dimensions in one part and " +
                      std::to_string(first.dim()) + " in another; encode the parts with the same preprocessors");
        }
        for (int64_t d = 1; d < t.dim(); ++d) longest[d] = std::max(longest[d], t.size(d));
      }
      for (auto& t : pieces) {
        for (int64_t d = 1; d < t.dim(); ++d) {
          if (t.size(d) == longest[d]) continue;
          std::vector<int64_t> shape(t.sizes().begin(), t.sizes().end());
          shape[d] = longest[d] - t.size(d);
          t = torch::cat({t, torch::zeros(shape, t.options())}, d);
        }
      }
    }
    out.tensors_[name] = torch::cat(pieces, 0);
  }
  return out;
}

bool has_windows(const Batch& batch) {
  const auto ids = batch.get(kInputIds);
  return ids.defined() && ids.dim() == 3;
}

FlatWindows flatten_windows(const Batch& batch) {
  const auto& ids = batch.at(kInputIds);
  const auto& mask = batch.at(kAttentionMask);
  const auto types = batch.get(kTokenTypeIds);
  if (mask.sizes() != ids.sizes()) {
    throw DataError("attention_mask must have input_ids' shape [batch, window, sequence]; the preprocessor and the "
                    "batch do not match");
  }
  if (types.defined() && types.sizes() != ids.sizes()) {
    throw DataError("token_type_ids must have input_ids' shape [batch, window, sequence]; the preprocessor and the "
                    "batch do not match");
  }
  const int64_t B = ids.size(0), W = ids.size(1), L = ids.size(2);
  FlatWindows out;
  out.examples = B;
  // A window is real when its first token ([CLS]) is attended.
  const auto real = L > 0 ? mask.select(2, 0).ne(0).reshape({B * W})
                          : torch::zeros({B * W}, mask.options().dtype(torch::kBool));
  const auto index = real.nonzero().reshape({-1});
  out.owner = torch::div(index, W, "floor");
  out.windows = Batch(index.size(0));
  out.windows.set(kInputIds, ids.reshape({B * W, L}).index_select(0, index));
  out.windows.set(kAttentionMask, mask.reshape({B * W, L}).index_select(0, index));
  if (types.defined()) out.windows.set(kTokenTypeIds, types.reshape({B * W, L}).index_select(0, index));
  return out;
}

torch::Tensor average_windows(const torch::Tensor& values, const torch::Tensor& owner, int64_t examples) {
  std::vector<int64_t> shape(values.sizes().begin(), values.sizes().end());
  shape[0] = examples;
  auto sum = torch::zeros(shape, values.options()).index_add(0, owner, values);
  auto count = torch::zeros({examples}, values.options()).index_add(0, owner, torch::ones({owner.size(0)}, values.options()));
  std::vector<int64_t> view(shape.size(), 1);
  view[0] = examples;
  return sum / count.clamp_min(1).view(view);
}

Batch BatchGatherer::gather(const Batch& source, const int64_t* ids, int64_t count) {
  Batch out(count);
  auto grow = [this](const std::string& key, int64_t n, torch::Dtype dtype) -> torch::Tensor& {
    auto& t = buffers_[key];
    if (!t.defined() || t.numel() < n || t.scalar_type() != dtype) {
      t = torch::empty({std::max<int64_t>(n, t.defined() ? 2 * t.numel() : n)}, dtype);
    }
    return t;
  };
  const auto& tensors = source.tensors();
  for (const auto& [name, t] : tensors) {
    if (!ends_with(name, kOffsetsSuffix) || !t.device().is_cpu()) continue;
    const std::string group = name.substr(0, name.size() - std::strlen(kOffsetsSuffix));
    const auto off = offsets_cpu(t);
    const int64_t* o = off.data_ptr<int64_t>();
    const torch::Tensor idx = source.get(group + "_indices");
    const torch::Tensor w = source.get(group + "_weights");
    const int64_t total = idx.defined() ? entries(idx) : entries(w);
    auto row_end = [&](int64_t r) { return r + 1 < source.size() ? o[r + 1] : total; };
    int64_t nnz = 0;
    for (int64_t b = 0; b < count; ++b) nnz += row_end(ids[b]) - o[ids[b]];
    auto& offsets = grow(name, count, torch::kInt64);
    int64_t* op = offsets.data_ptr<int64_t>();
    int64_t pos = 0;
    for (int64_t b = 0; b < count; ++b) {
      op[b] = pos;
      pos += row_end(ids[b]) - o[ids[b]];
    }
    out.set(name, offsets.narrow(0, 0, count));
    auto copy_member = [&](const torch::Tensor& src, const std::string& member, torch::Dtype dtype, std::size_t size) {
      if (!src.defined()) return;
      if (src.scalar_type() != dtype || !src.is_contiguous()) {
        throw Error("BatchGatherer: '" + member + "' must be a contiguous " + std::string(c10::toString(dtype)) +
                    " tensor");
      }
      auto& buf = grow(member, nnz, dtype);
      auto* dst = static_cast<char*>(buf.data_ptr());
      const auto* s = static_cast<const char*>(src.data_ptr());
      int64_t at = 0;
      for (int64_t b = 0; b < count; ++b) {
        const int64_t begin = o[ids[b]], len = row_end(ids[b]) - begin;
        std::memcpy(dst + at * static_cast<int64_t>(size), s + begin * static_cast<int64_t>(size),
                    static_cast<std::size_t>(len) * size);
        at += len;
      }
      out.set(member, buf.narrow(0, 0, nnz));
    };
    copy_member(idx, group + "_indices", torch::kInt64, sizeof(int64_t));
    copy_member(w, group + "_weights", torch::kFloat32, sizeof(float));
  }
  bool need_ids = false;
  for (const auto& [name, t] : tensors) need_ids = need_ids || !out.has(name);
  if (need_ids) {
    if (!ids_.defined() || ids_.numel() < count) ids_ = torch::empty({std::max<int64_t>(count, 1)}, torch::kInt64);
    std::memcpy(ids_.data_ptr<int64_t>(), ids, static_cast<std::size_t>(count) * sizeof(int64_t));
    const auto index = ids_.narrow(0, 0, count);
    for (const auto& [name, t] : tensors) {
      if (out.has(name)) continue;
      out.set(name, t.index_select(0, t.device().is_cpu() ? index : index.to(t.device())));
    }
  }
  return out;
}

}  // namespace kiln::nn
