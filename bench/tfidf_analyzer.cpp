// Single-thread throughput of the TF-IDF analyzer on a real corpus (the Kiln half of
// bench/tfidf_vs_sklearn.sh's "analyzer MB/s per thread" column). Megabytes are 10^6 bytes of
// document text (the column as read, before lowercasing); each figure is the best of REPEATS runs.
//
//   tfidf_analyzer CSV [ANALYZER [NGRAM_MIN NGRAM_MAX [REPEATS [PHASE]]]]
//
// PHASE (default all) runs one of analyze, count, fit, or none (only read the CSV): for
// instruction counts under `valgrind --tool=callgrind`, whose total minus the `none` run's is the
// phase's cost on any machine load.
// Prints three lines, each "name MB/s (by CPU time and by wall time) CPU seconds"; CPU time is
// the figure to compare on a shared machine, where wall time measures the load:
//   analyze        Analyzer::analyze over every document (str.lower, \w or whitespace
//                  classification, n-grams), terms as views, nothing counted
//   analyze+count  the counting pass of fit (src/text/document_counts.h): analyze, hash every term
//                  into the term table, count it per document (what fit does per thread before
//                  merging the threads' vocabularies)
//   fit_transform  TfidfVectorizer::fit_transform<float> with --threads 1 (adds the merge, sort,
//                  idf and the normalized CSR matrix)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <string>
#include <vector>

#include "kiln/core/parallel.h"
#include "kiln/data/reader.h"
#include "kiln/text/tfidf.h"
#include "document_counts.h"

using namespace kiln;

namespace {

struct Timing {
  double wall = 1e300;  ///< best wall-clock seconds
  double cpu = 1e300;   ///< best CPU seconds of this process (load-independent on a busy machine)
};

double cpu_now() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

template <typename Fn>
Timing best_of(int repeats, Fn&& fn) {
  Timing best;
  for (int r = 0; r < repeats; ++r) {
    const auto t = std::chrono::steady_clock::now();
    const double c = cpu_now();
    fn();
    best.cpu = std::min(best.cpu, cpu_now() - c);
    best.wall = std::min(best.wall, std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count());
  }
  return best;
}

void report(const char* name, double mb, const Timing& t, const std::string& note) {
  std::printf("%-14s %8.1f MB/s cpu %8.1f MB/s wall  %7.3f s cpu  (%s)\n", name, mb / t.cpu, mb / t.wall, t.cpu,
              note.c_str());
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s CSV [word|char|char_wb [NGRAM_MIN NGRAM_MAX [REPEATS [PHASE]]]]\n", argv[0]);
    return 2;
  }
  text::TfidfOptions o;
  if (argc > 2) o.analyzer = text::parse_analyzer(argv[2]);
  if (argc > 4) {
    o.ngram_min = std::atoi(argv[3]);
    o.ngram_max = std::atoi(argv[4]);
  }
  const int repeats = argc > 5 ? std::atoi(argv[5]) : 5;
  const std::string phase = argc > 6 ? argv[6] : "all";
  auto runs = [&](const char* name) { return phase == "all" || phase == name; };
  core::set_threads(1);
  data::ReaderOptions ro;
  ro.on_bad_utf8 = data::parse_bad_utf8_policy("replace");
  const std::vector<std::string> docs = data::read_column(argv[1], ro, "text");
  double bytes = 0;
  for (const auto& d : docs) bytes += static_cast<double>(d.size());
  const double mb = bytes / 1e6;
  std::printf("# %s: %zu docs, %.1f MB, analyzer %s, ngram_range (%d, %d), best of %d, 1 thread\n", argv[1],
              docs.size(), mb, text::analyzer_name(o.analyzer).c_str(), o.ngram_min, o.ngram_max, repeats);

  const text::Analyzer analyzer(o.analyzer_options());
  if (runs("analyze")) {
    text::AnalyzerScratch scratch;
    std::vector<std::string_view> terms;
    std::size_t n_terms = 0;
    const Timing t = best_of(repeats, [&] {
      n_terms = 0;
      for (const auto& d : docs) {
        analyzer.analyze(d, scratch, terms);
        n_terms += terms.size();
      }
    });
    report("analyze", mb, t, std::to_string(n_terms) + " terms");
  }
  if (runs("count")) {
    std::size_t vocabulary = 0;
    const Timing t = best_of(repeats, [&] {
      text::TermTable table;
      text::detail::RowCounts rows;
      text::detail::count_documents(analyzer, docs, 0, docs.size(), table, rows,
                                    [&](const text::TermKey& k) { return table.insert(k); });
      vocabulary = table.size();
    });
    report("analyze+count", mb, t, std::to_string(vocabulary) + " distinct terms");
  }
  if (runs("fit")) {
    std::int64_t nnz = 0;
    const Timing t = best_of(repeats, [&] {
      text::TfidfVectorizer v(o);
      nnz = v.fit_transform<float>(docs).nnz();
    });
    report("fit_transform", mb, t, "nnz " + std::to_string(nnz));
  }
  return 0;
}
