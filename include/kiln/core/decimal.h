// Fast, exact decimal text for floating-point values in data files (Matrix Market, idf lists).
#pragma once

namespace kiln::core {

/// Longest text write_general writes (sign, 17 digits, '.', "e-308"), with room to spare: the
/// bytes it may touch at `out`.
constexpr int kGeneralMaxChars = 32;
/// Longest text write_general(float) returns: "-1.23456789e-38" (%.9g: sign, 9 digits, '.', "e-XX").
constexpr int kGeneralFloatChars = 15;
/// Longest text write_general(double) returns: "-1.2345678901234567e-308".
constexpr int kGeneralDoubleChars = 24;

/// Writes `v` exactly as printf's "%.9g" does (round half to even on the exact binary value,
/// trailing zeros and a trailing '.' removed) at `out` and returns the end; no terminating NUL.
/// `out` must have kGeneralMaxChars bytes (bytes past the returned end may be overwritten).
/// Thread-safe. The usual case (2^-29 <= |v| < 2^30) is computed in 64-bit integers, the rest of
/// 1e-36 <= |v| < 1e9 in 128-bit ones, and the remainder by std::to_chars.
char* write_general(char* out, float v);
/// The same for double and "%.17g" (fast path for 1e-16 <= |v| < 1e17).
char* write_general(char* out, double v);

}  // namespace kiln::core
