// Loads a labelled CSV with kiln::data and fits TF-IDF with kiln::text; prints what it learned.
//   tfidf_example DATA.csv
#include <cstdio>
#include <iostream>
#include <set>

#include <kiln/core/error.h>
#include <kiln/data/dataset.h>
#include <kiln/text/tfidf.h>

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: tfidf_example DATA.csv\n";
    return 2;
  }
  try {
    kiln::data::DataReport report;
    const kiln::data::Dataset ds = kiln::data::load_labeled(argv[1], kiln::data::LoadOptions{}, &report);
    kiln::text::TfidfVectorizer tfidf;
    const auto x = tfidf.fit_transform<float>(ds.texts);

    const std::set<std::string> labels(ds.labels.begin(), ds.labels.end());
    std::cout << "rows " << x.rows << ", labels " << labels.size() << ", nnz " << x.nnz() << "\n";
    std::cout << "vocabulary";
    for (std::size_t i = 0; i < tfidf.vocabulary().size(); ++i) {
      char idf[32];
      std::snprintf(idf, sizeof idf, "%.4f", tfidf.idf()[i]);
      std::cout << " " << tfidf.vocabulary()[i] << "=" << idf;
    }
    std::cout << "\n";
  } catch (const kiln::Error& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
