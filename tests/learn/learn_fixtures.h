// Small topic data and tiny models for the continual-learning tests (seconds, not minutes).
#pragma once

#include <unistd.h>

#include <filesystem>
#include <iterator>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "kiln/data/dataset.h"
#include "kiln/pipeline/pipeline.h"
#include "kiln/train/run_config.h"

namespace kiln::learn_test {

// Topics with their own words, mixed with shared ones.
inline data::Dataset topics(int n, uint32_t seed, const std::vector<std::string>& labels = {"astro", "cook", "sail"}) {
  static const std::map<std::string, std::vector<std::string>> words = {
      {"astro", {"star", "planet", "orbit", "comet", "galaxy", "moon"}},
      {"cook", {"bread", "flour", "oven", "salt", "butter", "sugar"}},
      {"sail", {"boat", "wind", "harbor", "wave", "anchor", "mast"}},
      {"music", {"song", "guitar", "drum", "piano", "choir", "tune"}}};
  const std::vector<std::string> common = {"the", "a", "of", "and", "to", "in", "is"};
  std::mt19937 rng(seed);
  data::Dataset ds;
  for (int i = 0; i < n; ++i) {
    const std::string& label = labels[rng() % labels.size()];
    std::string text;
    const int len = 5 + static_cast<int>(rng() % 8);
    for (int k = 0; k < len; ++k) {
      const auto& pool = rng() % 2 ? words.at(label) : common;
      text += (k ? " " : "") + pool[rng() % pool.size()];
    }
    // A stray word of any topic now and then: every topic's words are in the vocabulary, so a
    // class learnt later (music) has features to learn from.
    if (rng() % 2) {
      const auto& other = std::next(words.begin(), static_cast<long>(rng() % words.size()))->second;
      text += " " + other[rng() % other.size()];
    }
    ds.texts.push_back(text);
    ds.labels.push_back(label);
  }
  return ds;
}

inline train::RunConfig small_config(const std::string& family = "linear") {
  train::RunConfig c = train::preset_config(family);
  c.featurizer = {{"type", "tfidf"}};
  c.trainer.epochs = 3;
  c.trainer.batch_size = 16;
  return c;
}

inline std::filesystem::path fresh_dir(const std::string& name) {
  auto p = std::filesystem::temp_directory_path() / ("kiln_learn_" + name + "_" + std::to_string(::getpid()));
  std::filesystem::remove_all(p);
  return p;
}

}  // namespace kiln::learn_test
