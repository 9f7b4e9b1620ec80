#include "kiln/core/cpu.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>

namespace kiln::core {
namespace {

CpuInfo avx512_cpu(bool bf16) {
  CpuInfo c;
  c.os_avx = c.os_avx512 = true;
  c.avx = c.avx2 = c.fma = true;
  c.avx512f = c.avx512dq = c.avx512bw = c.avx512vl = true;
  c.avx512_bf16 = bf16;
  return c;
}

TEST(Cpu, CoreLevelsOrderOpenBlasKernels) {
  EXPECT_LT(blas_core_level("Prescott"), blas_core_level("Sandybridge"));
  EXPECT_LT(blas_core_level("Sandybridge"), blas_core_level("Haswell"));
  EXPECT_LT(blas_core_level("Haswell"), blas_core_level("SkylakeX"));
  EXPECT_LT(blas_core_level("SkylakeX"), blas_core_level("Cooperlake"));
  EXPECT_EQ(blas_core_level("Zen"), BlasCoreLevel::kAvx2);
  EXPECT_EQ(blas_core_level("skylakex"), BlasCoreLevel::kAvx512) << "OpenBLAS compares names case-insensitively";
  EXPECT_EQ(blas_core_level("NeoverseN1"), BlasCoreLevel::kUnknown) << "unknown names are left alone";
}

TEST(Cpu, BestCoreFollowsUsableFeatures) {
  EXPECT_EQ(best_openblas_core(avx512_cpu(true)), "Cooperlake");
  EXPECT_EQ(best_openblas_core(avx512_cpu(false)), "SkylakeX");
  CpuInfo no_os_state = avx512_cpu(false);
  no_os_state.os_avx512 = false;  // the OS does not save ZMM registers: AVX-512 unusable
  EXPECT_EQ(best_openblas_core(no_os_state), "Haswell");
  CpuInfo partial = avx512_cpu(false);
  partial.avx512bw = false;  // F without BW (Knights Landing): SkylakeX kernels would fault
  EXPECT_EQ(best_openblas_core(partial), "Haswell");
  CpuInfo avx_only;
  avx_only.avx = avx_only.os_avx = true;
  EXPECT_EQ(best_openblas_core(avx_only), "Sandybridge");
  EXPECT_EQ(best_openblas_core(CpuInfo{}), "") << "an old CPU keeps OpenBLAS's own choice";
  // AMD Zen without AVX-512 gets OpenBLAS's own Zen core (the same level as Haswell); with
  // AVX-512 (Zen 4) the SkylakeX kernels.
  CpuInfo zen = no_os_state;
  zen.vendor = "AuthenticAMD";
  zen.family = 0x19;
  EXPECT_EQ(best_openblas_core(zen), "Zen");
  EXPECT_EQ(blas_core_level(best_openblas_core(zen)), blas_core_level("Haswell"));
  CpuInfo zen4 = avx512_cpu(true);
  zen4.vendor = "AuthenticAMD";
  zen4.family = 0x19;
  EXPECT_EQ(best_openblas_core(zen4), "Cooperlake");
}

TEST(Cpu, PeakRatesFromFeatures) {
  EXPECT_EQ(avx512_cpu(false).fp32_flops_per_cycle(), 64);
  CpuInfo avx2;
  avx2.avx2 = avx2.fma = avx2.os_avx = true;
  EXPECT_EQ(avx2.fp32_flops_per_cycle(), 32);
  CpuInfo vnni = avx512_cpu(false);
  vnni.avx512_vnni = true;
  EXPECT_EQ(vnni.int8_ops_per_cycle(), 256);
  vnni.amx_int8 = true;
  EXPECT_EQ(vnni.int8_ops_per_cycle(), 2048);
  EXPECT_EQ(avx2.int8_ops_per_cycle(), 64) << "vpmaddubsw + vpmaddwd on two ports";
}

TEST(Cpu, MeasuresTheCoreClock) {
#if defined(__x86_64__)
  const double mhz = measure_core_mhz();
  // Any x86 core of the last decades runs between 0.5 and 7 GHz; a loaded machine only slows the
  // slowest runs, and the fastest of 20 is taken.
  EXPECT_GT(mhz, 500.0);
  EXPECT_LT(mhz, 7000.0);
#else
  EXPECT_EQ(measure_core_mhz(), 0.0);
#endif
}

TEST(Cpu, ReadsThisMachine) {
  const CpuInfo& c = cpu_info();
  EXPECT_GE(c.logical_cores, 1);
#if defined(__x86_64__)
  EXPECT_FALSE(c.vendor.empty());
  EXPECT_GT(c.family, 0);
  const auto f = c.features();
  EXPECT_NE(std::find(f.begin(), f.end(), "sse4_2"), f.end()) << "every x86-64 CPU Kiln supports has SSE4.2";
  if (c.has_avx512_core()) {
    EXPECT_TRUE(c.has_avx2_fma());
  }
#endif
}

TEST(Cpu, BlasIsIdentified) {
  const BlasInfo b = blas_info();
  ASSERT_FALSE(b.library.empty()) << "libblas.so.3 not found";
  EXPECT_EQ(b.vendor, "OpenBLAS") << b.library << ": scripts/setup.sh requires OpenBLAS as libblas.so.3";
  EXPECT_FALSE(b.core.empty());
}

// The test binary's main() ran prepare_process: OpenBLAS now runs kernels at least as good as the CPU's
// best (or the user's explicit choice), and OpenMP threads do not spin unless the user asked.
TEST(Cpu, ProcessRunsWithTheChosenKernels) {
  if (std::getenv("KILN_NO_TUNE_ENV")) GTEST_SKIP() << "KILN_NO_TUNE_ENV is set";
  const BlasInfo b = blas_info();
  const std::string best = best_openblas_core(cpu_info());
  if (const char* chosen = std::getenv("OPENBLAS_CORETYPE")) {
    EXPECT_EQ(blas_core_level(b.core), blas_core_level(chosen)) << "OpenBLAS runs " << b.core << ", not " << chosen;
  } else if (!best.empty() && blas_core_level(b.core) != BlasCoreLevel::kUnknown) {
    EXPECT_GE(blas_core_level(b.core), blas_core_level(best)) << "OpenBLAS kept its weaker " << b.core;
  }
  ASSERT_NE(std::getenv("OMP_WAIT_POLICY"), nullptr);
}

}  // namespace
}  // namespace kiln::core
