// `kiln version`: answered by the front binary, without loading LibTorch (milliseconds); the LibTorch
// version is the one kiln-ml was compiled against (header only). Devices and kernels: `kiln doctor`.
#include <torch/version.h>

#include <iostream>

#include "kiln/core/parallel.h"
#include "kiln/core/version.h"
#include "verbs.h"

namespace kiln::cli {

void add_version(CLI::App& app) {
  auto* cmd = app.add_subcommand("version", "Print Kiln's and LibTorch's versions");
  cmd->callback([]() {
    std::cout << "kiln " << kiln::version() << "\n"
              << "libtorch " << TORCH_VERSION << " (kiln doctor: devices, BLAS kernels, speed)\n"
              << "threads " << kiln::core::threads() << "\n";
  });
}

}  // namespace kiln::cli
