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
#include "pipeline/topic_data.h"

namespace kiln::learn_test {

// Topics with their own words, mixed with shared ones, and a stray word of any topic now and then.
inline data::Dataset topics(int n, uint32_t seed, const std::vector<std::string>& labels = {"astro", "cook", "sail"}) {
  return pipeline_test::topics(n, seed, labels, /*stray_words=*/true);
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
