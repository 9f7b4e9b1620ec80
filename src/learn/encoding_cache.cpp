#include "kiln/learn/encoding_cache.h"

#include <filesystem>
#include <string>
#include <utility>
#include <vector>

namespace kiln::learn {
namespace {

// The text, length first (so no text can pass for a text and an image), then the image.
std::string key_of(const data::Examples& examples, std::size_t i) {
  std::string k;
  if (examples.has_text()) k += std::to_string(examples.texts[i].size()) + ":" + examples.texts[i];
  if (examples.has_images()) {
    const auto& image = examples.images[i];
    if (!image.bytes.empty()) {
      k.append("\0b", 2);
      k += image.bytes;
    } else {
      std::filesystem::path p(image.path);
      if (p.is_relative() && !examples.base_dir.empty()) p = std::filesystem::path(examples.base_dir) / p;
      k.append("\0p", 2);
      k += p.lexically_normal().string();
    }
  }
  return k;
}

// An example's share of the tensors (a row view's own elements).
int64_t bytes_of(const nn::Batch& row) {
  int64_t n = 0;
  for (const auto& [name, t] : row.tensors()) {
    if (t.defined()) n += t.numel() * static_cast<int64_t>(t.element_size());
  }
  return n;
}

}  // namespace

EncodingCache::EncodingCache(int64_t max_bytes) : max_bytes_(max_bytes) {}

void EncodingCache::clear() {
  entries_.clear();
  index_.clear();
  bytes_ = 0;
}

void EncodingCache::keep(std::string key, nn::Batch row) {
  const int64_t b = bytes_of(row) + static_cast<int64_t>(key.size());
  if (b > max_bytes_) return;
  entries_.push_front(Entry{key, std::move(row), b});
  index_.emplace(std::move(key), entries_.begin());
  bytes_ += b;
  while (bytes_ > max_bytes_) {
    bytes_ -= entries_.back().bytes;
    index_.erase(entries_.back().key);
    entries_.pop_back();
  }
}

nn::Batch EncodingCache::encode(const prep::Preprocessors& preprocessors, const data::Examples& examples) {
  const std::size_t n = examples.size();
  std::vector<std::string> keys(n);
  std::vector<nn::Batch> rows(n);
  std::vector<bool> found(n, false);
  std::vector<std::size_t> missing;
  for (std::size_t i = 0; i < n; ++i) {
    keys[i] = key_of(examples, i);
    const auto it = index_.find(keys[i]);
    if (it == index_.end()) {
      missing.push_back(i);
      continue;
    }
    entries_.splice(entries_.begin(), entries_, it->second);  // now the most recently used
    rows[i] = it->second->row;
    found[i] = true;
  }
  hits_ += static_cast<int64_t>(n - missing.size());
  misses_ += static_cast<int64_t>(missing.size());
  if (missing.empty() && n > 0) return nn::Batch::concat(rows);
  nn::Batch encoded = prep::encode_all(preprocessors, missing.size() == n ? examples : examples.select(missing));
  for (std::size_t j = 0; j < missing.size(); ++j) {
    const std::size_t i = missing[j];
    rows[i] = encoded.slice(static_cast<int64_t>(j), 1);
    if (!index_.count(keys[i])) keep(keys[i], rows[i]);
  }
  if (missing.size() == n) return encoded;
  return nn::Batch::concat(rows);
}

}  // namespace kiln::learn
