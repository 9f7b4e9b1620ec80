// main() of every test binary: the same process preparation as kiln-ml (BLAS kernels, OpenMP wait
// policy), so goldens are checked with the kernels Kiln runs with.
#include <gtest/gtest.h>

#include "kiln/core/cpu.h"

int main(int argc, char** argv) {
  kiln::core::prepare_process(argv);
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
