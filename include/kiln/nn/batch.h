// A Batch: the model's input for a number of examples, as named tensors (like Hugging Face's
// BatchEncoding): bag_indices/bag_offsets/bag_weights for bags of features, input_ids/
// attention_mask/token_type_ids for token sequences, pixel_values for images.
//
// Layout rules (what slice, select and concat rely on):
//  - a tensor named "<g>_offsets" (int64 [batch]) makes "<g>_indices" and "<g>_weights" a ragged
//    group: example b owns entries [offsets[b], offsets[b+1]) of them (the last to their end);
//  - every other tensor has the examples on dimension 0. Concatenating tensors of rank >= 2 whose
//    dimensions 1.. differ (sequences, or windows of sequences, of different lengths) pads them
//    with zeros to the longest;
//  - token windows (the wordpiece preprocessor's long_text: window): input_ids, attention_mask and
//    token_type_ids of rank 3, [batch, window, sequence]; a window whose first token is not attended
//    (attention_mask[b][w][0] == 0) is padding. Model::forward averages a text's window logits.
// A Batch shares its tensors' storage when copied; it is not thread-safe to mutate while shared.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace kiln::nn {

class Batch {
 public:
  Batch() = default;
  /// An empty batch of `size` examples (tensors added with set()).
  explicit Batch(int64_t size) : size_(size) {}

  /// Number of examples.
  [[nodiscard]] int64_t size() const { return size_; }
  [[nodiscard]] bool has(const std::string& name) const { return tensors_.count(name) > 0; }
  /// The tensor `name`; throws DataError naming it and the tensors the batch holds.
  [[nodiscard]] const torch::Tensor& at(const std::string& name) const;
  /// The tensor `name`, or an undefined tensor when absent.
  [[nodiscard]] torch::Tensor get(const std::string& name) const;
  void set(const std::string& name, torch::Tensor tensor) { tensors_[name] = std::move(tensor); }
  [[nodiscard]] const std::map<std::string, torch::Tensor>& tensors() const { return tensors_; }

  /// Every tensor moved to `device` (no copy when already there).
  [[nodiscard]] Batch to(torch::Device device) const;
  /// Examples [start, start + count).
  [[nodiscard]] Batch slice(int64_t start, int64_t count) const;
  /// Examples `ids[0..count)`, in that order (copies).
  [[nodiscard]] Batch select(const int64_t* ids, int64_t count) const;
  /// The examples of `parts`, in order. Every part must hold the same tensor names.
  [[nodiscard]] static Batch concat(const std::vector<Batch>& parts);

 private:
  int64_t size_ = 0;
  std::map<std::string, torch::Tensor> tensors_;
};

/// Whether `batch` holds token windows: input_ids of rank 3 [batch, window, sequence].
[[nodiscard]] bool has_windows(const Batch& batch);

/// A windowed batch's real windows as examples of their own.
struct FlatWindows {
  /// input_ids/attention_mask/token_type_ids [windows, sequence] of the real windows, in example
  /// then window order (padding windows left out).
  Batch windows;
  /// int64 [windows]: the example each window belongs to.
  torch::Tensor owner;
  /// Examples of the windowed batch.
  int64_t examples = 0;
};

/// The real windows of `batch` (has_windows). Throws DataError naming the tensor when
/// attention_mask or token_type_ids do not have input_ids' shape.
[[nodiscard]] FlatWindows flatten_windows(const Batch& batch);
/// Per-example mean of per-window rows: `values` [windows, ...] averaged by `owner` into
/// [examples, ...] (an example without a window gets zeros).
[[nodiscard]] torch::Tensor average_windows(const torch::Tensor& values, const torch::Tensor& owner, int64_t examples);

/// Gathers examples of a large CPU batch (a whole training split) into reused buffers: the hot path
/// of a training step. Ragged groups of int64 indices and float32 weights are copied by pointer;
/// other tensors go through index_select. The batch returned by gather() views the buffers: it is
/// valid until the next gather().
class BatchGatherer {
 public:
  [[nodiscard]] Batch gather(const Batch& source, const int64_t* ids, int64_t count);

 private:
  std::map<std::string, torch::Tensor> buffers_;
  torch::Tensor ids_;
};

}  // namespace kiln::nn
