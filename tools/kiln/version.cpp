#include <torch/cuda.h>
#include <torch/version.h>

#include <iostream>

#include "kiln/core/parallel.h"
#include "kiln/core/version.h"
#include "verbs.h"

namespace kiln::cli {

void add_version(CLI::App& app) {
  auto* cmd = app.add_subcommand("version", ml_verb_description("version"));
  cmd->callback([]() {
    std::cout << "kiln " << kiln::version() << "\n"
              << "libtorch " << TORCH_VERSION << (torch::cuda::is_available() ? " (CUDA available)" : " (CPU)") << "\n"
              << "threads " << kiln::core::threads() << "\n";
  });
}

}  // namespace kiln::cli
