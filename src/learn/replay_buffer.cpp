#include "kiln/learn/replay_buffer.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <numeric>
#include <sstream>

#include <nlohmann/json.hpp>

#include "kiln/core/atomic_output.h"
#include "kiln/core/error.h"

namespace kiln::learn {
namespace {

constexpr const char* kFormat = "kiln-replay-buffer";
/// Version of the buffer file. Bump only with a reader for the older one.
constexpr int kVersion = 1;

int64_t uniform(std::mt19937_64& rng, int64_t lo, int64_t hi) {
  return std::uniform_int_distribution<int64_t>(lo, hi)(rng);
}

}  // namespace

std::string to_string(BufferMode mode) {
  switch (mode) {
    case BufferMode::kReservoir: return "reservoir";
    case BufferMode::kBalanced: return "balanced";
    case BufferMode::kRecent: return "recent";
  }
  return "?";
}

BufferMode parse_buffer_mode(const std::string& name, const std::string& where) {
  if (name == "reservoir") return BufferMode::kReservoir;
  if (name == "balanced") return BufferMode::kBalanced;
  if (name == "recent") return BufferMode::kRecent;
  throw ConfigError(where + " must be reservoir, balanced or recent, got '" + name + "'");
}

void validate(const ReplayBufferOptions& o) {
  if (o.capacity < 1) {
    throw ConfigError("replay buffer capacity must be >= 1 item, got " + std::to_string(o.capacity));
  }
  if (o.batch_size < 1) throw ConfigError("replay batch size must be >= 1, got " + std::to_string(o.batch_size));
  if (!std::isfinite(o.replay_ratio) || o.replay_ratio < 0 || o.replay_ratio > 100) {
    std::ostringstream v;
    v << o.replay_ratio;
    throw ConfigError("replay ratio must be in [0, 100] replayed items per new item, got " + v.str() +
                      "; 0 turns replay off, 1 mixes as many old items as new ones");
  }
}

ReplayBufferOptions seed_preset() {
  ReplayBufferOptions o;
  o.mode = BufferMode::kRecent;
  o.capacity = 1000;
  o.batch_size = 32;
  return o;
}

ReplayBuffer::ReplayBuffer(ReplayBufferOptions options) : options_(options), rng_(options.seed) { validate(options_); }

std::size_t ReplayBuffer::quota(std::size_t class_index) const {
  const auto cap = static_cast<std::size_t>(options_.capacity);
  const std::size_t k = std::max<std::size_t>(classes_.size(), 1);
  return cap / k + (class_index < cap % k ? 1 : 0);
}

void ReplayBuffer::shrink_to_quotas() {
  // A uniform subsample of a uniform sample is uniform: evicting at random keeps algorithm R's promise.
  for (std::size_t c = 0; c < classes_.size(); ++c) {
    auto& items = reservoirs_[classes_[c]].items;
    const std::size_t q = quota(c);
    while (items.size() > q) {
      const auto j = static_cast<std::size_t>(uniform(rng_, 0, static_cast<int64_t>(items.size()) - 1));
      items[j] = std::move(items.back());
      items.pop_back();
    }
  }
}

bool ReplayBuffer::add(const data::Example& e) {
  if (e.label.empty()) throw DataError("replay buffer: an item without a label cannot be replayed; label it first");
  Item item;
  item.has_text = e.text.has_value();
  if (e.text) item.text = *e.text;
  if (e.image) {
    if (e.image->path.empty()) {
      throw DataError("replay buffer: items with in-memory image bytes are not kept; give the image as a file path");
    }
    item.image = e.image->path;
  }
  item.label = e.label;
  ++seen_;
  const bool balanced = options_.mode == BufferMode::kBalanced;
  const std::string key = balanced ? e.label : std::string();
  if (!reservoirs_.count(key)) {
    classes_.push_back(key);
    reservoirs_[key];
    if (balanced) shrink_to_quotas();
  }
  Reservoir& r = reservoirs_[key];
  ++r.seen;
  const std::size_t cap = balanced ? quota(static_cast<std::size_t>(
                                         std::find(classes_.begin(), classes_.end(), key) - classes_.begin()))
                                   : static_cast<std::size_t>(options_.capacity);
  if (r.items.size() < cap) {
    r.items.push_back(std::move(item));
    return true;
  }
  if (options_.mode == BufferMode::kRecent) {
    r.items[r.next] = std::move(item);
    r.next = (r.next + 1) % cap;
    return true;
  }
  // Algorithm R: the n-th item replaces a random slot with probability cap / n.
  const int64_t j = uniform(rng_, 0, r.seen - 1);
  if (j < static_cast<int64_t>(cap)) {
    r.items[static_cast<std::size_t>(j)] = std::move(item);
    return true;
  }
  return false;
}

std::vector<const ReplayBuffer::Item*> ReplayBuffer::all() const {
  std::vector<const Item*> out;
  for (const auto& c : classes_) {
    for (const auto& it : reservoirs_.at(c).items) out.push_back(&it);
  }
  return out;
}

namespace {
void append(data::Dataset& ds, const std::string& text, bool has_text, const std::string& image, const std::string& label) {
  data::Example e;
  if (has_text) e.text = text;
  if (!image.empty()) e.image = data::ImageRef{image, {}};
  e.label = label;
  ds.push_back(e);
}
}  // namespace

data::Dataset ReplayBuffer::items() const {
  data::Dataset ds;
  for (const Item* it : all()) append(ds, it->text, it->has_text, it->image, it->label);
  return ds;
}

data::Dataset ReplayBuffer::sample(std::size_t n) {
  auto pool = all();
  n = std::min(n, pool.size());
  // Partial Fisher-Yates: the first n slots become a uniform sample without replacement.
  for (std::size_t i = 0; i < n; ++i) {
    const auto j = static_cast<std::size_t>(uniform(rng_, static_cast<int64_t>(i), static_cast<int64_t>(pool.size()) - 1));
    std::swap(pool[i], pool[j]);
  }
  data::Dataset ds;
  for (std::size_t i = 0; i < n; ++i) append(ds, pool[i]->text, pool[i]->has_text, pool[i]->image, pool[i]->label);
  return ds;
}

std::size_t ReplayBuffer::size() const {
  std::size_t n = 0;
  for (const auto& [k, r] : reservoirs_) n += r.items.size();
  return n;
}

std::map<std::string, int64_t> ReplayBuffer::class_counts() const {
  std::map<std::string, int64_t> out;
  for (const Item* it : all()) ++out[it->label];
  return out;
}

void ReplayBuffer::save(const std::string& path) const {
  nlohmann::json j;
  j["format"] = kFormat;
  j["version"] = kVersion;
  j["mode"] = to_string(options_.mode);
  j["capacity"] = options_.capacity;
  j["batch_size"] = options_.batch_size;
  j["replay_ratio"] = options_.replay_ratio;
  j["seed"] = options_.seed;
  j["seen"] = seen_;
  std::ostringstream rng;
  rng << rng_;
  j["rng"] = rng.str();
  j["reservoirs"] = nlohmann::json::array();
  for (const auto& c : classes_) {
    const Reservoir& r = reservoirs_.at(c);
    nlohmann::json items = nlohmann::json::array();
    for (const auto& it : r.items) {
      nlohmann::json item = {{"label", it.label}};
      if (it.has_text) item["text"] = it.text;
      if (!it.image.empty()) item["image"] = it.image;
      items.push_back(std::move(item));
    }
    j["reservoirs"].push_back({{"key", c}, {"seen", r.seen}, {"next", r.next}, {"items", std::move(items)}});
  }
  core::write_file_atomic(path, j.dump() + "\n");
}

ReplayBuffer ReplayBuffer::load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError(path + ": cannot open the replay buffer file; check the path (it is written by kiln learn)");
  std::stringstream content;
  content << in.rdbuf();
  const auto bad = [&](const std::string& what) {
    return DataError(path + ": corrupt replay buffer: " + what +
                     "; delete the file to start with an empty buffer (or restore it from a backup)");
  };
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(content.str());
  } catch (const nlohmann::json::parse_error& e) {
    throw bad(std::string("not valid JSON (") + e.what() + ")");
  }
  if (!j.is_object() || j.value("format", std::string()) != kFormat) throw bad("not a Kiln replay buffer file");
  if (!j.contains("version") || !j["version"].is_number_integer()) throw bad("no \"version\"");
  if (j["version"].get<int>() > kVersion) {
    throw DataError(path + ": replay buffer version " + std::to_string(j["version"].get<int>()) +
                    " is newer than this Kiln reads (" + std::to_string(kVersion) + "); upgrade Kiln");
  }
  try {
    ReplayBufferOptions o;
    o.mode = parse_buffer_mode(j.at("mode").get<std::string>(), path + ": mode");
    o.capacity = j.at("capacity").get<int64_t>();
    o.batch_size = j.at("batch_size").get<int64_t>();
    o.replay_ratio = j.at("replay_ratio").get<double>();
    o.seed = j.at("seed").get<uint64_t>();
    ReplayBuffer b(o);
    b.seen_ = j.at("seen").get<int64_t>();
    std::istringstream rng(j.at("rng").get<std::string>());
    rng >> b.rng_;
    if (rng.fail()) throw bad("the generator state is malformed");
    const auto& rs = j.at("reservoirs");
    for (std::size_t ri = 0; ri < rs.size(); ++ri) {
      const auto& r = rs[ri];
      const auto key = r.at("key").get<std::string>();
      Reservoir res;
      res.seen = r.at("seen").get<int64_t>();
      res.next = r.at("next").get<std::size_t>();
      const auto& items = r.at("items");
      for (std::size_t i = 0; i < items.size(); ++i) {
        const auto& item = items[i];
        Item it;
        it.label = item.at("label").get<std::string>();
        if (item.contains("text")) {
          it.has_text = true;
          it.text = item["text"].get<std::string>();
        }
        if (item.contains("image")) it.image = item["image"].get<std::string>();
        if (it.label.empty() || (!it.has_text && it.image.empty())) {
          throw bad("reservoirs[" + std::to_string(ri) + "].items[" + std::to_string(i) + "] has no label or no input");
        }
        res.items.push_back(std::move(it));
      }
      b.classes_.push_back(key);
      b.reservoirs_[key] = std::move(res);
    }
    if (static_cast<int64_t>(b.size()) > o.capacity) throw bad("it holds more items than its capacity");
    return b;
  } catch (const nlohmann::json::exception& e) {
    throw bad(std::string("a field is missing or has the wrong type (") + e.what() + ")");
  } catch (const ConfigError& e) {
    throw bad(e.what());
  }
}

}  // namespace kiln::learn
