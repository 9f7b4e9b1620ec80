// kiln-env COMMAND [ARGS...]: runs COMMAND with the environment Kiln chooses for this CPU before any
// library loads (core::prepare_process: OpenBLAS kernel core, OpenMP wait policy; values already in
// the environment win), the same that `kiln` gives kiln-ml. The test suite runs its binaries through
// it, and benchmarks can run other programs under the same settings. Links no LibTorch or BLAS.
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "kiln/core/cpu.h"

int main(int argc, char** argv) {
  if (argc < 2 || std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0) {
    std::fprintf(argc < 2 ? stderr : stdout,
                 "usage: kiln-env COMMAND [ARGS...]\n"
                 "Runs COMMAND with the BLAS kernel core and OpenMP wait policy Kiln chooses for this CPU\n"
                 "(variables you set win; KILN_NO_TUNE_ENV=1 changes nothing).\n");
    return argc < 2 ? 2 : 0;
  }
  kiln::core::prepare_process(nullptr);  // nothing is loaded here: sets the environment, never re-executes
  execvp(argv[1], argv + 1);
  std::fprintf(stderr, "kiln-env: cannot run '%s': %s; check the command and PATH\n", argv[1], std::strerror(errno));
  return 127;
}
