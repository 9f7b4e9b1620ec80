// NumPy arrays on disk: .npy arrays in an uncompressed .npz archive (a zip of stored entries), as
// numpy.savez writes them; numpy.load and scipy.sparse.load_npz read the result. Little-endian
// only, like every file Kiln writes.
//
// Each entry NAME.npy is the .npy format 1.0: "\x93NUMPY", version 1 0, a u16 header length, a
// Python dict literal {'descr': ..., 'fortran_order': False, 'shape': (...), } padded with spaces
// and '\n' so that the data starts at a multiple of 64 bytes, then the row-major data.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace kiln::core {

class AtomicFile;

/// CRC-32 (zip's, polynomial 0xEDB88320) of `n` bytes, continuing from `crc` (0 to start):
/// crc32(b, crc32(a)) == crc32(a + b).
[[nodiscard]] std::uint32_t crc32(const void* data, std::size_t n, std::uint32_t crc = 0);

/// One array of an .npz archive, viewing memory the caller keeps alive until write_npz returns.
struct NpyArray {
  /// Entry name without ".npy" (numpy.load(...)[name]).
  std::string name;
  /// NumPy's dtype string: "<f4", "<f8", "<i4", "<i8", "|u1", "|S3" (bytes of length 3), ...
  std::string descr;
  /// Dimensions; empty for a 0-d array (one element).
  std::vector<std::int64_t> shape;
  const void* data = nullptr;
  /// Bytes at `data`: the product of shape times the element size.
  std::size_t nbytes = 0;
};

/// The .npy header (magic to the '\n' before the data) of `a`.
[[nodiscard]] std::string npy_header(const NpyArray& a);

/// Writes `arrays` as an .npz archive into `out` (the caller commits it). Entries larger than 4 GiB
/// or starting past it use zip64 records, as Python's zipfile writes them; `force_zip64` uses them
/// for every entry (for tests). The entries' CRCs are computed first, in parallel
/// (kiln::core threads). Throws kiln::Error for a duplicate or empty name; IoError from `out`.
void write_npz(AtomicFile& out, const std::vector<NpyArray>& arrays, bool force_zip64 = false);

}  // namespace kiln::core
