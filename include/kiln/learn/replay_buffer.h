// The experience-replay buffer of continual learning: a bounded memory of the labelled items seen,
// sampled to mix old items into each update so the model does not forget old classes.
//   reservoir: Vitter's algorithm R — after n items every one of them is kept with probability
//              capacity / n (uniform over the whole stream);
//   balanced:  one reservoir per class, the capacity shared evenly among the classes seen so far
//              (a class that arrives shrinks the others by uniform eviction), so rare and late
//              classes keep their share;
//   recent:    the last `capacity` items (the flow's buffer: the preset "seed" is recent, 1,000 items,
//              batches of 32).
// Seeded: the same options and items give the same buffer. Persisted as one JSON file written
// through the core atomic writer. Not thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "kiln/data/dataset.h"

namespace kiln::learn {

/// Persisted in the buffer file: never rename.
enum class BufferMode { kReservoir, kBalanced, kRecent };
[[nodiscard]] std::string to_string(BufferMode mode);
/// "reservoir", "balanced" or "recent"; ConfigError naming `where` and the choices otherwise.
[[nodiscard]] BufferMode parse_buffer_mode(const std::string& name, const std::string& where);

struct ReplayBufferOptions {
  BufferMode mode = BufferMode::kReservoir;
  /// Items kept at most. Default 1000.
  int64_t capacity = 1000;
  /// Examples per optimizer step of an update (the flow samples 32). Default 32.
  int64_t batch_size = 32;
  /// Replayed items mixed into an update per new item (0 = no replay, fine-tune on new items only;
  /// 1 = as many old items as new ones). Default 1.
  double replay_ratio = 1.0;
  /// Seeds the buffer's choices. Default 0.
  uint64_t seed = 0;
};
/// Throws ConfigError naming the field, the value and the allowed range.
void validate(const ReplayBufferOptions& options);
/// The flow's buffer: recent, capacity 1,000, batches of 32 (`--buffer seed`).
[[nodiscard]] ReplayBufferOptions seed_preset();

class ReplayBuffer {
 public:
  explicit ReplayBuffer(ReplayBufferOptions options = {});

  /// Offers one labelled item (label must not be empty); whether it was kept.
  bool add(const data::Example& item);
  /// `n` items (fewer when the buffer holds fewer) drawn uniformly without replacement.
  [[nodiscard]] data::Dataset sample(std::size_t n);
  /// Every item kept, in storage order.
  [[nodiscard]] data::Dataset items() const;
  [[nodiscard]] std::size_t size() const;
  /// Items offered so far (all classes).
  [[nodiscard]] int64_t seen() const { return seen_; }
  /// Items kept per class.
  [[nodiscard]] std::map<std::string, int64_t> class_counts() const;
  [[nodiscard]] const ReplayBufferOptions& options() const { return options_; }

  /// Writes the buffer (options, items, counts and the generator's state) to `path` atomically.
  void save(const std::string& path) const;
  /// Reads a buffer written by save(). Throws DataError naming the file and the problem (not JSON,
  /// not a Kiln replay buffer, a newer version, a malformed item) and how to fix it.
  [[nodiscard]] static ReplayBuffer load(const std::string& path);

 private:
  struct Item {
    std::string text, image, label;
    bool has_text = false;
  };
  struct Reservoir {
    std::vector<Item> items;
    int64_t seen = 0;
    std::size_t next = 0;  ///< recent mode: the slot the next item overwrites
  };
  [[nodiscard]] std::size_t quota(std::size_t class_index) const;
  void shrink_to_quotas();
  [[nodiscard]] std::vector<const Item*> all() const;

  ReplayBufferOptions options_;
  int64_t seen_ = 0;
  /// One reservoir for reservoir/recent mode (key ""), one per class (first-seen order) for balanced.
  std::vector<std::string> classes_;
  std::map<std::string, Reservoir> reservoirs_;
  std::mt19937_64 rng_;
};

}  // namespace kiln::learn
