#include "kiln/core/decimal.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <random>
#include <string>

using kiln::core::kGeneralMaxChars;
using kiln::core::write_general;

namespace {

std::string printf_g(float v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.9g", static_cast<double>(v));
  return buf;
}
std::string printf_g(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}
template <typename T>
std::string ours(T v) {
  char buf[kGeneralMaxChars];
  return std::string(buf, write_general(buf, v));
}

const double kEdges[] = {0.0,
                         1.0,
                         0.1,
                         0.2,
                         1.0 / 3,
                         2.0 / 3,
                         1e-5,
                         1e-4,
                         9.9999999999999995e-5,
                         0.5,
                         1.5,
                         100,
                         123456789,
                         999999999,
                         999999999.5,
                         1e9,
                         1e16,
                         9.999999999999999e16,
                         1e17,
                         1e21,
                         1e-16,
                         1e-17,
                         1e-36,
                         1e-38,
                         6.103515625e-05,  // 2^-14: ten significant digits ending in 5 (a tie at 9)
                         0.70710678118654757,
                         std::numeric_limits<float>::min(),
                         std::numeric_limits<float>::denorm_min(),
                         std::numeric_limits<float>::max(),
                         std::numeric_limits<double>::min(),
                         std::numeric_limits<double>::denorm_min(),
                         std::numeric_limits<double>::max(),
                         std::numeric_limits<double>::infinity(),
                         std::numeric_limits<double>::quiet_NaN()};

}  // namespace

TEST(Decimal, EdgeValuesMatchPrintf) {
  for (double d : kEdges) {
    for (double v : {d, -d}) {
      EXPECT_EQ(ours(v), printf_g(v)) << "double " << printf_g(v);
      const auto f = static_cast<float>(v);
      EXPECT_EQ(ours(f), printf_g(f)) << "float " << printf_g(f);
    }
  }
  EXPECT_EQ(ours(0.1f), "0.100000001");
  EXPECT_EQ(ours(1e-5f), "9.99999975e-06");
  EXPECT_EQ(ours(2.0f), "2");
  EXPECT_EQ(ours(6.103515625e-05f), "6.10351562e-05");  // ties go to even, as glibc's printf
}

TEST(Decimal, PowersOfTwoAndIntegersMatchPrintf) {
  for (int k = -160; k < 130; ++k) {
    EXPECT_EQ(ours(std::ldexp(1.0f, k)), printf_g(std::ldexp(1.0f, k))) << k;
    EXPECT_EQ(ours(std::ldexp(1.0, k * 8)), printf_g(std::ldexp(1.0, k * 8))) << k;
  }
  for (std::int64_t i = 1; i < 100000000000LL; i = i * 3 + 1) {
    EXPECT_EQ(ours(static_cast<float>(i)), printf_g(static_cast<float>(i))) << i;
    EXPECT_EQ(ours(static_cast<double>(i)), printf_g(static_cast<double>(i))) << i;
  }
}

TEST(Decimal, RandomValuesMatchPrintf) {
  std::mt19937_64 rng(7);
  int mismatches = 0;
  for (int i = 0; i < 300000 && mismatches < 5; ++i) {
    const std::uint64_t bits = rng();
    float f;
    double d;
    const auto bits32 = static_cast<std::uint32_t>(bits);
    std::memcpy(&f, &bits32, 4);
    std::memcpy(&d, &bits, 8);
    // TF-IDF-like values: l2-normalized weights in (0, 1].
    const float w = std::uniform_real_distribution<float>(1e-6f, 1.0f)(rng);
    const double x = std::ldexp(static_cast<double>(bits >> 11), -static_cast<int>(bits % 90));
    for (float v : {f, w, static_cast<float>(x)}) {
      if (ours(v) != printf_g(v)) {
        ADD_FAILURE() << "float " << printf_g(v) << " written as " << ours(v);
        ++mismatches;
      }
    }
    for (double v : {d, static_cast<double>(w), x}) {
      if (ours(v) != printf_g(v)) {
        ADD_FAILURE() << "double " << printf_g(v) << " written as " << ours(v);
        ++mismatches;
      }
    }
  }
}

namespace {

// Samples per test below; KILN_DECIMAL_SAMPLES raises it for a longer soak (e.g. 50000000).
long samples(long fallback) {
  const char* env = std::getenv("KILN_DECIMAL_SAMPLES");
  return env ? std::atol(env) : fallback;
}

float float_from_bits(std::uint32_t b) {
  float f;
  std::memcpy(&f, &b, 4);
  return f;
}

}  // namespace

// Every float exponent, with random mantissas and both signs: covers the 64-bit fast path
// (2^-29 <= |v| < 2^30), the 128-bit path and to_chars' share (zero, denormals, inf, nan).
TEST(Decimal, RandomFloatsOfEveryExponentMatchPrintf) {
  std::mt19937 rng(11);
  const long n = samples(1000000);
  int mismatches = 0;
  for (long i = 0; i < n && mismatches < 5; ++i) {
    const auto biased = static_cast<std::uint32_t>(i % 256);
    const std::uint32_t b = (rng() & 0x807FFFFFu) | biased << 23;
    const float v = float_from_bits(b);
    if (ours(v) != printf_g(v)) {
      ADD_FAILURE() << "float bits " << std::hex << b << ": " << printf_g(v) << " written as " << ours(v);
      ++mismatches;
    }
  }
}

// The floats next to each power of ten and to each nine-digit rounding boundary (d.dddddddd5):
// where the digit count changes, rounding carries into a new digit, and ties go to even.
TEST(Decimal, FloatsNearDecimalBoundariesMatchPrintf) {
  int mismatches = 0;
  auto check = [&](float v) {
    for (float w : {v, -v}) {
      if (ours(w) != printf_g(w) && mismatches++ < 5) {
        ADD_FAILURE() << "float " << printf_g(w) << " written as " << ours(w);
      }
    }
  };
  for (int k = -45; k <= 38; ++k) {
    for (double mantissa : {1.0, 9.9999999950000000, 9.99999999, 1.00000000500000, 5.0, 2.5}) {
      float v = static_cast<float>(mantissa * std::pow(10.0, k));
      for (int step = 0; step < 40; ++step) v = std::nextafter(v, 0.0f);
      for (int step = 0; step < 80; ++step, v = std::nextafter(v, std::numeric_limits<float>::infinity())) check(v);
    }
  }
  for (std::uint32_t m = 0; m < (1u << 23); m += 4099) {  // every mantissa step, a few exponents
    for (std::uint32_t biased : {97u, 98u, 120u, 126u, 127u, 156u, 157u}) check(float_from_bits(biased << 23 | m));
  }
  check(1e9f);
  check(999999999.0f);
  check(1073741824.0f);  // 2^30, the first float past the fast path
  check(std::ldexp(1.0f, -29));
  check(std::nextafter(std::ldexp(1.0f, -29), 0.0f));
}

// Random doubles of every exponent (the %.17g path).
TEST(Decimal, RandomDoublesOfEveryExponentMatchPrintf) {
  std::mt19937_64 rng(13);
  const long n = samples(300000);
  int mismatches = 0;
  for (long i = 0; i < n && mismatches < 5; ++i) {
    const auto biased = static_cast<std::uint64_t>(i % 2048);
    const std::uint64_t b = (rng() & 0x800FFFFFFFFFFFFFull) | biased << 52;
    double v;
    std::memcpy(&v, &b, 8);
    if (ours(v) != printf_g(v)) {
      ADD_FAILURE() << "double " << printf_g(v) << " written as " << ours(v);
      ++mismatches;
    }
  }
}
