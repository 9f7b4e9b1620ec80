#include "kiln/text/tfidf_files.h"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <future>
#include <limits>
#include <memory>
#include <mutex>
#include <type_traits>

#include "kiln/core/atomic_output.h"
#include "kiln/core/decimal.h"
#include "kiln/core/error.h"
#include "kiln/core/npz.h"
#include "kiln/core/parallel.h"

namespace fs = std::filesystem;

namespace kiln::text {
namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

/// Reads the documents into a DocumentFeed on this thread while `v` fits on others (vocabulary
/// mode, more than one thread): counting overlaps reading. Errors in the order a serial run meets
/// them: the reader's, then an input without rows, then the fit's.
template <typename T>
CsrMatrix<T> read_and_fit(TfidfVectorizer& v, DocumentFeed& feed, const std::string& input,
                          const TfidfFilesOptions& options, TfidfFilesReport& report,
                          const std::function<void()>& fitted) {
  // Pieces of about 1/16 of a thread's share of the file (at least 64 KiB of text) keep every
  // thread busy to the end; a document also weighs a fixed cost, as in the in-memory split.
  constexpr std::size_t kDocumentCost = 32;
  std::size_t piece_bytes = std::size_t{1} << 16;
  std::error_code ec;
  if (const auto size = fs::file_size(input, ec); !ec && input != "-") {
    piece_bytes = std::max<std::size_t>(piece_bytes, size / (static_cast<std::size_t>(core::threads()) * 16));
  }
  const auto start = Clock::now();
  std::future<CsrMatrix<T>> fit =
      std::async(std::launch::async, [&v, &feed, &fitted] { return v.fit_transform<T>(feed, fitted); });
  std::exception_ptr read_error;
  try {
    const auto reader = data::open_records(input, options.reader, {options.text_col});
    data::Record rec;
    // Documents are copied end to end into the piece's buffer (the record keeps its own for the
    // next row), which comes from a piece already counted once there is one.
    DocumentFeed::Piece piece = feed.piece();
    piece.reserve(piece_bytes + piece_bytes / 4);
    std::size_t bytes = 0;
    while (reader->next(rec)) {
      const std::string_view doc = rec.fields[0] ? std::string_view(*rec.fields[0]) : std::string_view();
      piece.add(doc);
      report.text_bytes += static_cast<std::int64_t>(doc.size());
      bytes += doc.size() + kDocumentCost;
      if (bytes >= piece_bytes) {
        feed.push(std::move(piece));
        piece = feed.piece();
        piece.reserve(piece_bytes + piece_bytes / 4);
        bytes = 0;
      }
    }
    feed.push(std::move(piece));
  } catch (...) {
    read_error = std::current_exception();
  }
  feed.close();
  report.read_s = seconds_since(start);
  CsrMatrix<T> m;
  std::exception_ptr fit_error;
  try {
    m = fit.get();
  } catch (...) {
    fit_error = std::current_exception();
  }
  report.fit_s = seconds_since(start);
  report.fit_overlaps_read = true;
  if (read_error) std::rethrow_exception(read_error);
  if (feed.documents() == 0) throw DataError(input + ": no rows; kiln tfidf needs at least one document");
  if (fit_error) std::rethrow_exception(fit_error);
  return m;
}

template <typename T>
void fit_and_write(TfidfVectorizer& v, const std::string& input, const TfidfFilesOptions& options,
                   const fs::path& out_dir, TfidfFilesReport& report) {
  core::AtomicDirectory out(out_dir);
  // The small files (vocabulary, idf, fitted state) are known once the vectorizer is fitted, before
  // its rows are built: another thread writes them then, while the rows are built and the matrix
  // written, and their fsyncs are mostly waiting. Declared after `out`, the future waits in its
  // destructor before `out` can remove the temporary on an exception.
  std::future<void> small;
  const std::function<void()> write_small = [&v, &out, &small] {
    small = std::async(std::launch::async, [&v, &out] {
      if (!v.options().hashing) out.write_file("vocabulary.txt", vocabulary_lines(v.vocabulary()));
      if (v.options().use_idf) out.write_file("idf.txt", idf_lines(v.idf(), std::is_same_v<T, float>));
      out.write_file("tfidf.json", v.to_json() + "\n");
    });
  };
  std::vector<std::string> docs;
  std::unique_ptr<DocumentFeed> feed;  // holds the documents when read through one
  CsrMatrix<T> m;
  if (!options.tfidf.hashing && core::threads() > 1) {
    feed = std::make_unique<DocumentFeed>();
    m = read_and_fit<T>(v, *feed, input, options, report, write_small);
  } else {
    auto t = Clock::now();
    docs = data::read_column(input, options.reader, options.text_col);
    report.read_s = seconds_since(t);
    if (docs.empty()) throw DataError(input + ": no rows; kiln tfidf needs at least one document");
    for (const auto& d : docs) report.text_bytes += static_cast<std::int64_t>(d.size());
    t = Clock::now();
    m = v.fit_transform<T>(docs, write_small);
    report.fit_s = seconds_since(t);
  }
  auto t = Clock::now();
  {
    // The texts are freed on another thread while the matrix is written (both cores).
    std::future<void> freeing = std::async(std::launch::async, [docs = std::move(docs), feed = std::move(feed)]() mutable {
      std::vector<std::string>().swap(docs);
      feed.reset();
    });
    core::AtomicFile matrix(out, matrix_file_name(options.matrix_format));
    if (options.matrix_format == MatrixFormat::kNpz) {
      write_csr_npz(matrix, m);
    } else {
      write_matrix_market(matrix, m);
    }
    matrix.commit();
    freeing.get();
    small.get();
  }
  out.commit();
  report.out_dir = out.target().string();
  report.write_s = seconds_since(t);
  report.documents = m.rows;
  report.columns = v.n_columns();
  report.nnz = m.nnz();
}

}  // namespace

std::pair<int, int> parse_ngram_range(const std::string& s, const std::string& field) {
  auto fail = [&]() -> std::pair<int, int> {
    throw ConfigError(field + " must be MIN,MAX with 1 <= MIN <= MAX (e.g. 1,2), got '" + s + "'");
  };
  const auto comma = s.find(',');
  if (comma == std::string::npos) return fail();
  int lo = 0, hi = 0;
  const char* b = s.data();
  const char* e = s.data() + s.size();
  auto r1 = std::from_chars(b, b + comma, lo);
  auto r2 = std::from_chars(b + comma + 1, e, hi);
  if (r1.ec != std::errc() || r1.ptr != b + comma || r2.ec != std::errc() || r2.ptr != e) return fail();
  if (lo < 1 || hi < lo) return fail();
  return {lo, hi};
}

/// The 1-based text of each column index followed by ' ', up to 8 bytes, for the matrix writer to
/// copy with one fixed-size store instead of formatting the index per entry.
class ColumnTexts {
 public:
  /// Columns 0..cols-1; empty (usable() false) when an index needs more than 7 digits or the table
  /// would cost more to build than it saves (more columns than entries).
  ColumnTexts(std::int64_t cols, std::int64_t entries) {
    if (cols <= 0 || cols >= 9999999 || cols > entries) return;
    const auto n = static_cast<std::size_t>(cols);
    text_.resize(n);
    size_.resize(n);
    for (std::size_t c = 0; c < n; ++c) {
      char buf[16] = {};
      char* end = std::to_chars(buf, buf + 8, static_cast<std::int64_t>(c) + 1).ptr;
      *end++ = ' ';
      std::memcpy(&text_[c], buf, 8);
      size_[c] = static_cast<std::uint8_t>(end - buf);
    }
  }
  [[nodiscard]] bool usable() const { return !text_.empty(); }
  [[nodiscard]] std::size_t size() const { return text_.size(); }
  /// Writes 8 bytes at `out` and returns the end of column `c`'s text; c < size().
  char* write(char* out, std::size_t c) const {
    std::memcpy(out, &text_[c], 8);
    return out + size_[c];
  }

 private:
  std::vector<std::uint64_t> text_;
  std::vector<std::uint8_t> size_;
};

template <typename T>
void write_matrix_market(const fs::path& path, const CsrMatrix<T>& m) {
  core::AtomicFile out(path);
  write_matrix_market(out, m);
  out.commit();
}

template <typename T>
void write_matrix_market(core::AtomicFile& out, const CsrMatrix<T>& m) {
  // Rows go out in batches of about kBatchEntries entries. Each batch's chunks of rows are formatted
  // in parallel, each into its own buffer sized for its longest possible entries and reused by the
  // next batch (a few MB touched in all, not the whole file's size). Fixed-size copies may write
  // past an entry's text into the next one's space; kSlack keeps the last entry's inside the buffer.
  constexpr std::int64_t kBatchEntries = 1 << 16;
  constexpr std::size_t kIndexChars = 20;  // a 1-based int64 index and its separator
  constexpr std::size_t kRowCopy = 24;     // >= kIndexChars, the fixed copy of the row's text
  constexpr std::size_t kValueChars = std::is_same_v<T, float> ? core::kGeneralFloatChars : core::kGeneralDoubleChars;
  constexpr std::size_t kSlack = kRowCopy + kIndexChars + core::kGeneralMaxChars;
  static_assert(kRowCopy >= kIndexChars);
  auto chars_of = [](std::int64_t n) { return static_cast<std::size_t>(std::to_string(n).size()) + 1; };
  // Any index value, in range or not: sign, digits and separator.
  using Index = typename decltype(m.indices)::value_type;
  constexpr std::size_t kColChars = std::numeric_limits<Index>::digits10 + 3;
  static_assert(kColChars <= kIndexChars);
  const std::size_t entry_chars = chars_of(m.rows) + kColChars + kValueChars + 1;
  struct Part {
    std::unique_ptr<char[]> bytes;
    std::size_t capacity = 0;
    std::size_t size = 0;
  };
  const ColumnTexts columns(m.cols, m.nnz());
  std::vector<Part> parts;

  std::string header = "%%MatrixMarket matrix coordinate real general\n" + std::to_string(m.rows) + " " +
                       std::to_string(m.cols) + " " + std::to_string(m.nnz()) + "\n";
  out.write(header);
  for (std::int64_t first = 0; first < m.rows;) {
    // The batch: rows [first, last), at least one, ending where kBatchEntries entries are reached.
    const auto reach = std::upper_bound(m.indptr.begin() + first + 1, m.indptr.begin() + m.rows + 1,
                                        m.indptr[static_cast<std::size_t>(first)] + kBatchEntries);
    const std::int64_t last = std::max(first + 1, static_cast<std::int64_t>(reach - m.indptr.begin()) - 1);
    const auto batch_rows = static_cast<std::size_t>(last - first);
    const int max_chunks = 4 * core::threads();  // small chunks: the first write starts early
    const std::size_t n_chunks = core::chunk_count(batch_rows, max_chunks);
    parts.resize(std::max(parts.size(), n_chunks));
    // Chunks go to the file in order as soon as they and every chunk before them are formatted, by
    // whichever thread is free: the writes (copies into the page cache) overlap the formatting of
    // later chunks. One thread writes at a time; a failed write leaves `writing` set, so no other
    // thread writes after it and parallel_chunks rethrows it.
    std::mutex order;
    std::vector<char> formatted(n_chunks, 0);
    std::size_t next_write = 0;
    bool writing = false;
    core::parallel_chunks(batch_rows, [&](std::size_t chunk_begin, std::size_t chunk_end, std::size_t k) {
      const std::size_t begin = static_cast<std::size_t>(first) + chunk_begin;
      const std::size_t end = static_cast<std::size_t>(first) + chunk_end;
      const std::size_t entries = static_cast<std::size_t>(m.indptr[end] - m.indptr[begin]);
      Part& part = parts[k];
      const std::size_t need = entries * entry_chars + kSlack;
      if (part.capacity < need) {
        part.bytes.reset(new char[need]);
        part.capacity = need;
      }
      char* p = part.bytes.get();
      for (std::size_t r = begin; r < end; ++r) {
        char row[kRowCopy] = {};
        char* row_end = std::to_chars(row, row + kIndexChars, static_cast<std::int64_t>(r) + 1).ptr;
        *row_end++ = ' ';
        const auto row_len = static_cast<std::size_t>(row_end - row);
        for (std::int64_t e = m.indptr[r]; e < m.indptr[r + 1]; ++e) {
          std::memcpy(p, row, kRowCopy);
          p += row_len;
          const auto c = static_cast<std::size_t>(m.indices[e]);
          if (c < columns.size()) {
            p = columns.write(p, c);
          } else {
            p = std::to_chars(p, p + kIndexChars, static_cast<std::int64_t>(m.indices[e]) + 1).ptr;
            *p++ = ' ';
          }
          p = core::write_general(p, m.data[e]);
          *p++ = '\n';
        }
      }
      part.size = static_cast<std::size_t>(p - part.bytes.get());
      std::unique_lock<std::mutex> lock(order);
      formatted[k] = 1;
      if (writing) return;  // the thread writing now will take this chunk when its turn comes
      writing = true;
      while (next_write < n_chunks && formatted[next_write]) {
        const Part& done = parts[next_write++];
        lock.unlock();
        out.write(done.bytes.get(), done.size);
        lock.lock();
      }
      writing = false;
    }, max_chunks);
    first = last;
  }
}

template void write_matrix_market<float>(const fs::path&, const CsrMatrix<float>&);
template void write_matrix_market<double>(const fs::path&, const CsrMatrix<double>&);
template void write_matrix_market<float>(core::AtomicFile&, const CsrMatrix<float>&);
template void write_matrix_market<double>(core::AtomicFile&, const CsrMatrix<double>&);

template <typename T>
void write_csr_npz(core::AtomicFile& out, const CsrMatrix<T>& m) {
  static_assert(std::is_same_v<typename decltype(m.indices)::value_type, std::int32_t>);
  const std::int64_t shape[2] = {m.rows, m.cols};
  const auto n = [](std::size_t v) { return static_cast<std::int64_t>(v); };
  std::vector<core::NpyArray> arrays;
  arrays.push_back({"format", "|S3", {}, "csr", 3});
  arrays.push_back({"shape", "<i8", {2}, shape, sizeof shape});
  arrays.push_back({"data", std::is_same_v<T, float> ? "<f4" : "<f8", {n(m.data.size())}, m.data.data(),
                    m.data.size() * sizeof(T)});
  arrays.push_back({"indices", "<i4", {n(m.indices.size())}, m.indices.data(), m.indices.size() * sizeof(std::int32_t)});
  std::vector<std::int32_t> indptr32;  // scipy's choice: int32 while nnz fits
  if (m.nnz() <= std::numeric_limits<std::int32_t>::max()) {
    indptr32.assign(m.indptr.begin(), m.indptr.end());
    arrays.push_back({"indptr", "<i4", {n(indptr32.size())}, indptr32.data(), indptr32.size() * sizeof(std::int32_t)});
  } else {
    arrays.push_back({"indptr", "<i8", {n(m.indptr.size())}, m.indptr.data(), m.indptr.size() * sizeof(std::int64_t)});
  }
  core::write_npz(out, arrays);
}

template void write_csr_npz<float>(core::AtomicFile&, const CsrMatrix<float>&);
template void write_csr_npz<double>(core::AtomicFile&, const CsrMatrix<double>&);

MatrixFormat parse_matrix_format(const std::string& name, const std::string& field) {
  if (name == "npz") return MatrixFormat::kNpz;
  if (name == "mtx") return MatrixFormat::kMtx;
  throw ConfigError(field + " must be npz (scipy.sparse.load_npz) or mtx (Matrix Market text), got '" + name + "'");
}

const char* matrix_file_name(MatrixFormat format) {
  return format == MatrixFormat::kNpz ? "matrix.npz" : "matrix.mtx";
}

std::string vocabulary_lines(const std::vector<std::string>& terms) {
  std::string s;
  std::size_t total = 0;
  for (const auto& t : terms) total += t.size() + 1;
  s.reserve(total);
  for (const auto& t : terms) {
    s += t;
    s += '\n';
  }
  return s;
}

std::string idf_lines(const std::vector<double>& idf, bool as_float) {
  std::string s;
  s.resize(idf.size() * (core::kGeneralMaxChars + 1));
  char* p = s.data();
  for (double v : idf) {
    p = as_float ? core::write_general(p, static_cast<float>(v)) : core::write_general(p, v);
    *p++ = '\n';
  }
  s.resize(static_cast<std::size_t>(p - s.data()));
  return s;
}

TfidfFilesReport fit_tfidf_files(const std::string& input, const fs::path& out_dir, const TfidfFilesOptions& options) {
  options.tfidf.validate();
  TfidfFilesReport report;
  TfidfVectorizer v(options.tfidf);
  if (options.tfidf.dtype == Dtype::kFloat32) {
    fit_and_write<float>(v, input, options, out_dir, report);
  } else {
    fit_and_write<double>(v, input, options, out_dir, report);
  }
  return report;
}

}  // namespace kiln::text
