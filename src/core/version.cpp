#include "kiln/core/version.h"

#include <torch/cuda.h>
#include <torch/version.h>

namespace kiln {

std::string version() { return KILN_VERSION; }

std::string torch_version() {
  std::string v = TORCH_VERSION;
  v += torch::cuda::is_available() ? " (CUDA available)" : " (CPU)";
  return v;
}

}  // namespace kiln
