#include "kiln/core/decimal.h"

#include <charconv>
#include <cstdint>
#include <cstring>

namespace kiln::core {
namespace {

using u128 = unsigned __int128;

// v * 10^s is computed exactly as m * 5^s * 2^(e + s).
constexpr int kMaxPow5 = 44;

struct Pow5Table {
  u128 v[kMaxPow5 + 1];
  constexpr Pow5Table() : v() {
    u128 p = 1;
    for (int i = 0; i <= kMaxPow5; ++i) {
      v[i] = p;
      p *= 5;
    }
  }
};
constexpr Pow5Table kPow5;

constexpr std::uint64_t kPow10[] = {1ULL,
                                    10ULL,
                                    100ULL,
                                    1000ULL,
                                    10000ULL,
                                    100000ULL,
                                    1000000ULL,
                                    10000000ULL,
                                    100000000ULL,
                                    1000000000ULL,
                                    10000000000ULL,
                                    100000000000ULL,
                                    1000000000000ULL,
                                    10000000000000ULL,
                                    100000000000000ULL,
                                    1000000000000000ULL,
                                    10000000000000000ULL,
                                    100000000000000000ULL,
                                    1000000000000000000ULL};

/// The P significant digits of m * 2^e (m > 0) rounded half to even, and the decimal exponent of
/// the first one (after rounding). False when the value is outside the fast path's range.
template <int P>
bool decimal_digits(std::uint64_t m, int e, std::uint64_t& digits, int& exponent) {
  // m * 5^s must fit in 128 bits: float's m < 2^24 allows s <= 44, double's m < 2^53 s <= 32.
  constexpr int kMaxS = P <= 9 ? 44 : 32;
  static_assert(kMaxS <= kMaxPow5);
  const int bits = e + 63 - __builtin_clzll(m);                                 // floor(log2(v))
  int k = static_cast<int>((static_cast<std::int64_t>(bits) * 78913) >> 18);  // ~floor(log10(v))
  for (int attempt = 0; attempt < 3; ++attempt) {
    const int s = P - 1 - k;  // v * 10^s has P digits before the point
    if (s < 0 || s > kMaxS) return false;
    const u128 n = static_cast<u128>(m) * kPow5.v[s];
    const int shift = -(e + s);
    if (shift < -8 || shift > 127) return false;
    // floor(v * 10^s) < 10^(P+1) whichever k was tried, so it fits in 64 bits.
    const u128 q = shift <= 0 ? n << -shift : n >> shift;
    if ((q >> 64) != 0) return false;
    std::uint64_t d = static_cast<std::uint64_t>(q);
    if (d >= kPow10[P]) {  // k one too small
      ++k;
      continue;
    }
    if (d < kPow10[P - 1]) {  // k one too large
      --k;
      continue;
    }
    if (shift > 0) {
      const u128 rem = n & ((static_cast<u128>(1) << shift) - 1);
      const u128 half = static_cast<u128>(1) << (shift - 1);
      if (rem > half || (rem == half && (d & 1) != 0)) ++d;
    }
    if (d == kPow10[P]) {  // rounded up to one more digit
      d = kPow10[P - 1];
      ++k;
    }
    digits = d;
    exponent = k;
    return true;
  }
  return false;
}

constexpr char kDigitPairs[] =
    "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
    "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
    "8081828384858687888990919293949596979899";

/// Writes the P digits of `d` (d < 10^P) at `out`, two at a time.
template <int P>
void write_digits(char* out, std::uint64_t d) {
  int i = P;
  while (i >= 2) {
    const auto pair = static_cast<std::size_t>(d % 100) * 2;
    d /= 100;
    i -= 2;
    out[i] = kDigitPairs[pair];
    out[i + 1] = kDigitPairs[pair + 1];
  }
  if (i == 1) out[0] = static_cast<char>('0' + d);
}

/// printf's %g layout of `digits` (exactly P digits, first one nonzero) times 10^(exponent-P+1).
template <int P>
char* layout(char* out, std::uint64_t digits, int exponent) {
  char buf[20];
  write_digits<P>(buf, digits);
  int sig = P;  // significant digits once trailing zeros go
  while (sig > 1 && buf[sig - 1] == '0') --sig;
  if (exponent >= -4 && exponent < P) {
    if (exponent >= 0) {
      const int whole = exponent + 1;
      std::memcpy(out, buf, static_cast<std::size_t>(whole));
      out += whole;
      if (sig > whole) {
        *out++ = '.';
        std::memcpy(out, buf + whole, static_cast<std::size_t>(sig - whole));
        out += sig - whole;
      }
      return out;
    }
    *out++ = '0';
    *out++ = '.';
    for (int z = -exponent - 1; z > 0; --z) *out++ = '0';
    std::memcpy(out, buf, static_cast<std::size_t>(sig));
    return out + sig;
  }
  *out++ = buf[0];
  if (sig > 1) {
    *out++ = '.';
    std::memcpy(out, buf + 1, static_cast<std::size_t>(sig - 1));
    out += sig - 1;
  }
  *out++ = 'e';
  int x = exponent;
  if (x < 0) {
    *out++ = '-';
    x = -x;
  } else {
    *out++ = '+';
  }
  if (x >= 100) {
    *out++ = static_cast<char>('0' + x / 100);
    x %= 100;
  }
  *out++ = static_cast<char>('0' + x / 10);
  *out++ = static_cast<char>('0' + x % 10);
  return out;
}

/// The eight decimal digits of `d` (d < 10^8) as bytes 0..9, most significant in the lowest byte
/// (first in memory once stored with store_le).
inline std::uint64_t digit_bytes8(std::uint32_t d) {
  // [hi4, lo4] -> four pairs -> eight digits, each split with a multiply-shift divide.
  const std::uint64_t fours = (d / 10000) | (static_cast<std::uint64_t>(d % 10000) << 32);
  const std::uint64_t hundreds = (fours * 10486) >> 20 & 0x0000007F0000007FULL;  // x / 100 in each half
  const std::uint64_t pairs = hundreds | (fours - 100 * hundreds) << 16;
  const std::uint64_t tens = (pairs * 103) >> 10 & 0x000F000F000F000FULL;  // x / 10 in each quarter
  return tens | (pairs - 10 * tens) << 8;
}

constexpr std::uint64_t kAsciiZeros = 0x3030303030303030ULL;

/// Stores `x` at `out` lowest byte first.
inline void store_le(char* out, std::uint64_t x) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
  x = __builtin_bswap64(x);
#endif
  std::memcpy(out, &x, 8);
}

/// printf's %.9g text of first * 10^8 + rest (first in 1..9, rest < 10^8) times 10^(exponent-8),
/// for -9 <= exponent <= 9. Writes up to 17 bytes at `out` whatever the length returned.
inline char* layout9(char* out, std::uint32_t first, std::uint32_t rest, int exponent) {
  const std::uint64_t raw = digit_bytes8(rest);
  // Significant digits once trailing zeros go: a zero digit is a zero byte, the last digit the top byte.
  const int sig = raw == 0 ? 1 : 9 - (__builtin_clzll(raw) >> 3);
  const std::uint64_t rest_text = raw + kAsciiZeros;
  const char lead = static_cast<char>('0' + first);
  if (exponent < 0 && exponent >= -4) {  // 0.000ddddddddd
    std::memcpy(out, "0.000000", 8);
    char* p = out + 1 - exponent;
    p[0] = lead;
    store_le(p + 1, rest_text);
    return p + sig;
  }
  if (exponent >= 0 && exponent < 9) {  // ddd.dddddd with the '.' dropped when nothing follows it
    char digits[17];  // the nine digits, then padding so that any eight from digits[1..9] can be copied
    digits[0] = lead;
    store_le(digits + 1, rest_text);
    store_le(digits + 9, kAsciiZeros);
    const int whole = exponent + 1;
    std::memcpy(out, digits, 9);
    out[whole] = '.';
    std::memcpy(out + whole + 1, digits + whole, 8);  // 9 - whole <= 8 digits follow the point
    return sig > whole ? out + sig + 1 : out + whole;
  }
  out[0] = lead;
  out[1] = '.';
  store_le(out + 2, rest_text);
  char* p = sig > 1 ? out + sig + 1 : out + 1;
  const int x = exponent < 0 ? -exponent : exponent;  // 5..9
  p[0] = 'e';
  p[1] = exponent < 0 ? '-' : '+';
  p[2] = '0';
  p[3] = static_cast<char>('0' + x);
  return p + 4;
}

/// Biased exponents of the floats write_float9 takes: 2^-29 <= |v| < 2^30, where 0 <= s <= 17 below.
constexpr std::uint32_t kFloat9MinBiased = 127 - 29;
constexpr std::uint32_t kFloat9MaxBiased = 127 + 29;

/// write_general for normal floats m * 2^e with kFloat9MinBiased <= e + 150 <= kFloat9MaxBiased
/// (the usual case), all in 64-bit integers: v * 10^s = m * 5^s * 2^(e+s), and 5^s <= 5^17 keeps
/// m * 5^s below 2^64.
inline char* write_float9(char* out, std::uint32_t m, int e) {
  const int bits = e + 23;                                       // floor(log2(v)), m in [2^23, 2^24)
  const int k = static_cast<int>((static_cast<std::int64_t>(bits) * 78913) >> 18);  // floor(bits*log10 2)
  // floor(log10(v)) is k or k + 1; v * 10^(8-k) has nine or ten digits before the point.
  const int s = 8 - k;  // 0 <= s <= 17 for -29 <= bits <= 29
  const std::uint64_t n = m * static_cast<std::uint64_t>(kPow5.v[s]);
  const int shift = -(e + s);  // -6 <= shift <= 35 for these bits
  std::uint64_t d;
  bool up;
  int exponent = k;
  if (shift <= 0) {
    d = n << -shift;
    up = false;
    if (d >= kPow10[9]) {
      const std::uint64_t r = d % 10;
      d /= 10;
      ++exponent;
      up = r > 5 || (r == 5 && (d & 1) != 0);
    }
  } else {
    d = n >> shift;
    const std::uint64_t rem = n & ((std::uint64_t{1} << shift) - 1);
    if (d >= kPow10[9]) {  // ten digits: round at the last one, the bits below only break ties
      const std::uint64_t r = d % 10;
      d /= 10;
      ++exponent;
      up = r > 5 || (r == 5 && (rem != 0 || (d & 1) != 0));
    } else {
      const std::uint64_t half = std::uint64_t{1} << (shift - 1);
      up = rem > half || (rem == half && (d & 1) != 0);
    }
  }
  if (up && ++d == kPow10[9]) {
    d = kPow10[8];
    ++exponent;
  }
  const auto first = static_cast<std::uint32_t>(d / kPow10[8]);
  const auto rest = static_cast<std::uint32_t>(d - first * kPow10[8]);
  return layout9(out, first, rest, exponent);
}

/// write_general for the floats write_float9 does not take: the u128 path, then std::to_chars for
/// zero, denormals, inf, nan and the extremes. Out of line so the fast path needs no stack frame.
[[gnu::noinline]] char* write_general_slow(char* out, float v) {
  std::uint32_t b;
  std::memcpy(&b, &v, 4);
  const std::uint32_t biased = (b >> 23) & 0xFF;
  const std::uint32_t frac = b & 0x7FFFFF;
  if (biased != 0 && biased != 0xFF) {  // normal: zero, denormals, inf and nan go to to_chars
    std::uint64_t digits;
    int exponent;
    if (decimal_digits<9>(frac | 0x800000, static_cast<int>(biased) - 150, digits, exponent)) {
      if (b >> 31) *out++ = '-';
      return layout<9>(out, digits, exponent);
    }
  }
  return std::to_chars(out, out + kGeneralMaxChars, v, std::chars_format::general, 9).ptr;
}

}  // namespace

char* write_general(char* out, float v) {
  std::uint32_t b;
  std::memcpy(&b, &v, 4);
  const std::uint32_t biased = (b >> 23) & 0xFF;
  if (biased - kFloat9MinBiased > kFloat9MaxBiased - kFloat9MinBiased) return write_general_slow(out, v);
  *out = '-';
  return write_float9(out + (b >> 31), (b & 0x7FFFFF) | 0x800000, static_cast<int>(biased) - 150);
}

char* write_general(char* out, double v) {
  std::uint64_t b;
  std::memcpy(&b, &v, 8);
  const auto biased = static_cast<std::uint32_t>((b >> 52) & 0x7FF);
  const std::uint64_t frac = b & ((std::uint64_t{1} << 52) - 1);
  if (biased != 0 && biased != 0x7FF) {
    std::uint64_t digits;
    int exponent;
    if (decimal_digits<17>(frac | (std::uint64_t{1} << 52), static_cast<int>(biased) - 1075, digits, exponent)) {
      if (b >> 63) *out++ = '-';
      return layout<17>(out, digits, exponent);
    }
  }
  return std::to_chars(out, out + kGeneralMaxChars, v, std::chars_format::general, 17).ptr;
}

}  // namespace kiln::core
