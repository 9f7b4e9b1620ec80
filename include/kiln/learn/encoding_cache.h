// Encodings of examples kept across a learner's updates. A warm start keeps the served model's
// preprocessors as they are (pipeline::warm_start does not refit them), so while a learner runs an
// example's encoding never changes: the prediction that scores a feedback item (progressive
// validation), the updates that train on it, first as a new item and then each time it is replayed,
// and the gate's scoring of the served model and of the candidate can all use one encoding of it.
#pragma once

#include <cstdint>
#include <list>
#include <string>
#include <unordered_map>

#include "kiln/data/dataset.h"
#include "kiln/nn/batch.h"
#include "kiln/prep/preprocessor.h"

namespace kiln::learn {

class EncodingCache {
 public:
  /// Keeps at most `max_bytes` of encoded tensors; the least recently used go first. 0 = keeps
  /// nothing (every call encodes).
  explicit EncodingCache(int64_t max_bytes = kDefaultBytes);

  /// The encodings of `examples`, in order, as prep::encode_all(preprocessors, examples) gives them
  /// (sequences of different lengths padded with zeros to the longest, as nn::Batch::concat pads):
  /// examples seen before are taken from the cache, the others encoded together in one call and
  /// kept. An example is known by its text and its image (the path resolved against
  /// examples.base_dir, or the bytes). Every call must pass preprocessors in the same state: the
  /// owner clears the cache when they change.
  [[nodiscard]] nn::Batch encode(const prep::Preprocessors& preprocessors, const data::Examples& examples);
  void clear();

  [[nodiscard]] std::size_t size() const { return index_.size(); }
  /// Bytes of the tensors kept (each example's share of its batch).
  [[nodiscard]] int64_t bytes() const { return bytes_; }
  /// Examples taken from the cache / encoded, since construction.
  [[nodiscard]] int64_t hits() const { return hits_; }
  [[nodiscard]] int64_t misses() const { return misses_; }

  static constexpr int64_t kDefaultBytes = int64_t{128} << 20;

 private:
  struct Entry {
    std::string key;
    nn::Batch row;  ///< one example: a view into the batch it was encoded in
    int64_t bytes = 0;
  };
  void keep(std::string key, nn::Batch row);

  int64_t max_bytes_;
  int64_t bytes_ = 0, hits_ = 0, misses_ = 0;
  std::list<Entry> entries_;  ///< most recently used first
  std::unordered_map<std::string, std::list<Entry>::iterator> index_;
};

}  // namespace kiln::learn
