// Small topic data for the pipeline and continual-learning tests: three (or more) topics with their
// own words, mixed with shared ones.
#pragma once

#include <cstdint>
#include <iterator>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "kiln/data/dataset.h"

namespace kiln::pipeline_test {

/// `stray_words`: a word of any topic now and then, so that every topic's words are in the
/// vocabulary and a class learnt later (music) has features to learn from.
inline data::Dataset topics(int n, uint32_t seed, const std::vector<std::string>& labels = {"astro", "cook", "sail"},
                            bool stray_words = false) {
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
    if (stray_words && rng() % 2) {
      const auto& other = std::next(words.begin(), static_cast<long>(rng() % words.size()))->second;
      text += " " + other[rng() % other.size()];
    }
    ds.texts.push_back(text);
    ds.labels.push_back(label);
  }
  return ds;
}

}  // namespace kiln::pipeline_test
