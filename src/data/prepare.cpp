#include "kiln/data/prepare.h"

#include <algorithm>
#include <filesystem>
#include <cstdio>
#include <fstream>
#include <set>
#include <sstream>

#include "kiln/core/atomic_output.h"
#include "kiln/core/error.h"
#include "kiln/core/parallel.h"

namespace kiln::data {
namespace {

nlohmann::json split_json(const Dataset& ds, const std::vector<std::size_t>& rows) {
  return {{"rows", rows.size()}, {"class_counts", count_labels(ds, rows)}};
}

std::string fixed(double v, int decimals = 1) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

std::string pad_left(const std::string& s, std::size_t w) { return s.size() >= w ? s : std::string(w - s.size(), ' ') + s; }
std::string pad_right(const std::string& s, std::size_t w) { return s.size() >= w ? s : s + std::string(w - s.size(), ' '); }

std::int64_t count_of(const ClassCounts& m, const std::string& k) {
  const auto it = m.find(k);
  return it == m.end() ? 0 : it->second;
}

}  // namespace

ClassCounts count_labels(const Dataset& ds, const std::vector<std::size_t>& rows) {
  ClassCounts c;
  for (std::size_t i : rows) ++c[ds.labels.at(i)];
  return c;
}

const char* rare_class_policy_name(RareClassPolicy policy) {
  switch (policy) {
    case RareClassPolicy::kError: return "error";
    case RareClassPolicy::kDrop: return "drop";
    case RareClassPolicy::kTrainOnly: return "train-only";
  }
  return "error";
}

PreparedData prepare_data(const std::string& path, const PrepareOptions& options) {
  PreparedData p;
  if (!options.idx_labels.empty()) {
    p.dataset = load_idx(path, options.idx_labels, options.load, &p.report);
  } else {
    std::error_code ec;
    if (path != "-" && std::filesystem::is_regular_file(path, ec) && is_idx_images_file(path)) {
      throw ConfigError(path + " is an IDX images file (MNIST format); pass its labels file too: --idx-labels "
                        "FILE (e.g. train-labels-idx1-ubyte)");
    }
    p.dataset = load_labeled(path, options.load, &p.report);
  }
  if (options.on_bad_image && p.dataset.has_images()) {
    (void)check_images(p.dataset, options.image_limits, *options.on_bad_image, &p.report, path);
  }
  p.split = stratified_split(p.dataset.labels, options.split);
  p.has_val = options.split.val_size > 0;
  const Dataset& ds = p.dataset;
  nlohmann::json splits = {
      {"seed", options.split.seed},
      {"test_size", options.split.test_size},
      {"val_size", options.split.val_size},
      {"rare_classes_policy", rare_class_policy_name(options.split.rare_classes)},
      {"rare_classes", p.split.rare_classes},
      {"train", split_json(ds, p.split.train)},
      {"test", split_json(ds, p.split.test)},
  };
  if (p.has_val) splits["val"] = split_json(ds, p.split.val);
  if (!p.split.dropped.empty()) splits["dropped"] = split_json(ds, p.split.dropped);
  p.report.splits = std::move(splits);
  return p;
}

void write_prepared(const std::filesystem::path& out_dir, const PreparedData& p, const nlohmann::json& report) {
  core::AtomicDirectory out(out_dir);
  // Image paths are written relative to the split files' final folder.
  const std::string csv_dir = out.target().string();
  const Dataset* ds = &p.dataset;
  Dataset saved;  // images held as bytes (IDX input), saved as files under images/
  if (ds->has_images() && std::any_of(ds->images.begin(), ds->images.end(), [](const ImageRef& r) { return r.path.empty(); })) {
    saved = p.dataset;
    saved.base_dir = csv_dir;
    std::set<std::string> labels(saved.labels.begin(), saved.labels.end());
    for (const auto& l : labels) std::filesystem::create_directories(out.path() / "images" / l);
    // Plain writes inside the new directory (it is renamed whole): one fsync per image would cost minutes.
    core::parallel_chunks(saved.size(), [&](std::size_t begin, std::size_t end, std::size_t) {
      for (std::size_t i = begin; i < end; ++i) {
        ImageRef& ref = saved.images[i];
        if (!ref.path.empty()) continue;
        char name[32];
        std::snprintf(name, sizeof name, "%06zu.png", i + 1);
        const std::string rel = "images/" + saved.labels[i] + "/" + name;
        std::ofstream f(out.path() / rel, std::ios::binary);
        f.write(ref.bytes.data(), static_cast<std::streamsize>(ref.bytes.size()));
        f.close();
        if (!f) throw IoError("cannot write " + (out.target() / rel).string() + "; check free space and permissions");
        ref = ImageRef{rel, {}};
      }
    });
    ds = &saved;
  }
  auto write_split = [&](const char* name, const std::vector<std::size_t>& rows) {
    core::AtomicFile f(out, name);
    write_csv(f, *ds, rows, csv_dir);
    f.commit();
  };
  write_split("train.csv", p.split.train);
  write_split("test.csv", p.split.test);
  if (p.has_val) write_split("val.csv", p.split.val);
  out.write_file("report.json", report.dump(2) + "\n");
  out.commit();
}

std::string summary_table(const PreparedData& prepared, const PrepareOptions& options) {
  const DataReport& r = prepared.report;
  std::ostringstream o;
  o << "input          " << r.input << "\n";
  o << "rows read      " << r.rows_read << "\n";
  o << "rows kept      " << r.rows_kept << "\n";
  o << "rows dropped\n";
  std::vector<std::string> reasons = drop_reasons(options.load);
  for (const auto& [reason, n] : r.dropped) {  // reasons of other loaders (image folders, bad images)
    if (std::find(reasons.begin(), reasons.end(), reason) == reasons.end()) reasons.push_back(reason);
  }
  for (const std::string& reason : reasons) {
    o << "  " << pad_right(reason, 17) << "  " << pad_left(std::to_string(count_of(r.dropped, reason)), 8) << "\n";
  }
  o << "imbalance      " << fixed(r.imbalance_ratio, 2) << " (largest class / smallest, after cleaning)\n";
  if (r.has_text) {
    const auto& L = r.text_length;
    o << "text length    min " << L.min << ", p50 " << fixed(L.p50) << ", p90 " << fixed(L.p90) << ", p99 "
      << fixed(L.p99) << ", max " << L.max << ", mean " << fixed(L.mean) << " (code points)\n";
  }
  const auto& rare = prepared.split.rare_classes;
  if (!rare.empty()) {
    o << "rare classes   " << rare.size() << " with one row, "
      << (options.split.rare_classes == RareClassPolicy::kDrop ? "dropped" : "kept in train only") << "\n";
  }
  o << "\n";

  const Dataset& ds = prepared.dataset;
  const ClassCounts train = count_labels(ds, prepared.split.train), val = count_labels(ds, prepared.split.val),
                    test = count_labels(ds, prepared.split.test);
  std::set<std::string> classes;
  for (const auto& [c, n] : r.class_counts_before) classes.insert(c);
  for (const auto& [c, n] : r.class_counts_after) classes.insert(c);
  std::size_t cw = 5;
  for (const auto& c : classes) cw = std::max(cw, std::min<std::size_t>(c.size(), 40));
  std::vector<std::string> cols = {"before", "after", "train"};
  if (prepared.has_val) cols.push_back("val");
  cols.push_back("test");
  o << pad_right("class", cw);
  for (const auto& c : cols) o << "  " << pad_left(c, 8);
  o << "\n";
  std::vector<std::int64_t> totals(cols.size(), 0);
  for (const auto& c : classes) {
    std::string name = c.size() > 40 ? c.substr(0, 37) + "..." : c;
    std::vector<std::int64_t> v = {count_of(r.class_counts_before, c), count_of(r.class_counts_after, c),
                                   count_of(train, c)};
    if (prepared.has_val) v.push_back(count_of(val, c));
    v.push_back(count_of(test, c));
    o << pad_right(name, cw);
    for (std::size_t i = 0; i < v.size(); ++i) {
      o << "  " << pad_left(std::to_string(v[i]), 8);
      totals[i] += v[i];
    }
    o << "\n";
  }
  o << pad_right("total", cw);
  for (std::int64_t t : totals) o << "  " << pad_left(std::to_string(t), 8);
  o << "\n\n";
  return o.str();
}

}  // namespace kiln::data
