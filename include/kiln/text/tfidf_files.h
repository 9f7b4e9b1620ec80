// TF-IDF features on disk: fit on one column of a file and write DIR/{matrix.npz or matrix.mtx,
// vocabulary.txt, idf.txt, tfidf.json} whole or not at all (what `kiln tfidf` does), and the
// writers it uses.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "kiln/data/reader.h"
#include "kiln/text/csr.h"
#include "kiln/text/tfidf.h"

namespace kiln::core {
class AtomicFile;
}  // namespace kiln::core

namespace kiln::text {

/// "MIN,MAX" n-gram lengths, 1 <= MIN <= MAX (e.g. "1,2"). Throws ConfigError naming `field` and
/// the value otherwise.
[[nodiscard]] std::pair<int, int> parse_ngram_range(const std::string& text, const std::string& field);

/// Writes `m` as a Matrix Market coordinate file (1-based; values as printf's %.9g for float,
/// %.17g for double). Rows are formatted in parallel (kiln::core threads). Throws IoError naming the
/// path when it cannot be created or written. Streamed through one core::AtomicFile: `path` is
/// replaced only by the complete, synced file.
template <typename T>
void write_matrix_market(const std::filesystem::path& path, const CsrMatrix<T>& m);

/// The same bytes, streamed into `out` (the caller commits it), e.g. a file of an AtomicDirectory.
template <typename T>
void write_matrix_market(core::AtomicFile& out, const CsrMatrix<T>& m);

/// Writes `m` as scipy.sparse.save_npz(..., compressed=False) does: an .npz archive (core::write_npz)
/// of data (float32/float64), indices (int32), indptr (int32, or int64 when nnz exceeds 2^31 - 1),
/// shape (int64 [rows, cols]) and format (b"csr"), loadable with scipy.sparse.load_npz.
/// Streamed into `out` (the caller commits it).
template <typename T>
void write_csr_npz(core::AtomicFile& out, const CsrMatrix<T>& m);

/// How the matrix goes to disk: matrix.npz (binary, scipy.sparse.load_npz) or matrix.mtx (Matrix
/// Market text, scipy.io.mmread).
enum class MatrixFormat { kNpz, kMtx };
/// "npz" or "mtx"; throws ConfigError naming `field` and the value otherwise.
[[nodiscard]] MatrixFormat parse_matrix_format(const std::string& name, const std::string& field);
/// The file name in the output directory: "matrix.npz" or "matrix.mtx".
[[nodiscard]] const char* matrix_file_name(MatrixFormat format);

/// One term per line, each ending in "\n" (vocabulary.txt).
[[nodiscard]] std::string vocabulary_lines(const std::vector<std::string>& terms);
/// One idf value per line (idf.txt), formatted as float (%.9g) or double (%.17g).
[[nodiscard]] std::string idf_lines(const std::vector<double>& idf, bool as_float);

struct TfidfFilesOptions {
  /// Input format and invalid-UTF-8 policy (see ReaderOptions; its defaults).
  data::ReaderOptions reader;
  /// Column (CSV/TSV) or key (JSON) holding the documents. Default "text".
  std::string text_col = "text";
  /// The featurizer (validated by fit_tfidf_files; see TfidfOptions for the defaults).
  TfidfOptions tfidf;
  /// matrix.npz (default) or matrix.mtx.
  MatrixFormat matrix_format = MatrixFormat::kNpz;
};

/// What fit_tfidf_files did, with its timings in seconds.
struct TfidfFilesReport {
  std::int64_t documents = 0;
  /// Vocabulary size, or hashed columns with tfidf.hashing.
  std::int64_t columns = 0;
  std::int64_t nnz = 0;
  /// Bytes of text read.
  std::int64_t text_bytes = 0;
  double read_s = 0, fit_s = 0, write_s = 0;
  /// fit_s counts from the start of reading, which the fit overlapped (more than one thread,
  /// vocabulary mode: documents are counted as they are read).
  bool fit_overlaps_read = false;
  /// The directory written (out_dir without a trailing '/').
  std::string out_dir;
};

/// Reads the documents of `input` ("-" = standard input), fits options.tfidf on them and writes
/// `out_dir`/matrix.npz (or matrix.mtx, options.matrix_format), vocabulary.txt (not with hashing), idf.txt (with use_idf) and tfidf.json
/// through one core::AtomicDirectory: the directory is replaced whole or not at all. Throws
/// ConfigError for invalid options, DataError for an input without rows (and what the reader throws),
/// IoError for write failures. Does not check what `out_dir` held before: callers that must not
/// replace a foreign directory check first.
[[nodiscard]] TfidfFilesReport fit_tfidf_files(const std::string& input, const std::filesystem::path& out_dir,
                                               const TfidfFilesOptions& options);

}  // namespace kiln::text
