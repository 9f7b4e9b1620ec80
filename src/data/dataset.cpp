#include "kiln/data/dataset.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <functional>
#include <limits>
#include <set>
#include <string_view>
#include <unordered_set>

#include "kiln/core/atomic_output.h"
#include "kiln/core/error.h"
#include "kiln/core/utf8.h"

namespace kiln::data {
namespace {

// Reasons, in the order a row is checked. Persisted in report.json: never rename.
constexpr const char* kMissingText = "missing_text";
constexpr const char* kMissingImage = "missing_image";
constexpr const char* kMissingLabel = "missing_label";
constexpr const char* kLabelNotAllowed = "label_not_allowed";
constexpr const char* kDuplicate = "duplicate";
constexpr const char* kBadUtf8 = "bad_utf8";

bool is_space(char32_t c) {
  // Python's str.isspace() set.
  return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

// True for absent, empty or whitespace-only values.
bool is_blank(const std::optional<std::string>& v) {
  if (!v) return true;
  std::string_view s = *v;
  if (core::find_invalid_utf8(s) != std::string_view::npos) {
    for (char c : s) {
      if (!is_space(static_cast<unsigned char>(c))) return false;
    }
    return true;
  }
  std::size_t i = 0;
  while (i < s.size()) {
    if (!is_space(core::decode_utf8(s, i))) return false;
  }
  return true;
}

// numpy.percentile's default (linear interpolation) over sorted values.
double percentile(const std::vector<std::int64_t>& sorted, double q) {
  if (sorted.empty()) return 0;
  double idx = q / 100.0 * static_cast<double>(sorted.size() - 1);
  auto lo = static_cast<std::size_t>(std::floor(idx));
  auto hi = static_cast<std::size_t>(std::ceil(idx));
  double frac = idx - static_cast<double>(lo);
  return static_cast<double>(sorted[lo]) + (static_cast<double>(sorted[hi]) - static_cast<double>(sorted[lo])) * frac;
}

std::string join_labels(const std::map<std::string, std::int64_t>& counts, std::size_t max = 10) {
  std::string out;
  std::size_t i = 0;
  for (const auto& [label, n] : counts) {
    if (i == max) {
      out += ", ... (" + std::to_string(counts.size()) + " in all)";
      break;
    }
    out += (i++ ? ", " : "") + ("'" + label + "'");
  }
  return out;
}

std::string rows_word(std::int64_t n) { return std::to_string(n) + (n == 1 ? " row" : " rows"); }

bool needs_quotes(std::string_view s) {
  return s.find_first_of(",\"\r\n") != std::string_view::npos;
}

void append_csv_field(std::string& out, std::string_view s) {
  if (!needs_quotes(s)) {
    out.append(s);
    return;
  }
  out.push_back('"');
  for (char c : s) {
    if (c == '"') out.push_back('"');
    out.push_back(c);
  }
  out.push_back('"');
}

}  // namespace

nlohmann::json to_json(const DataReport& r) {
  nlohmann::json j;
  j["input"] = r.input;
  j["rows_read"] = r.rows_read;
  j["rows_kept"] = r.rows_kept;
  j["dropped"] = r.dropped;
  j["class_counts_before"] = r.class_counts_before;
  j["class_counts_after"] = r.class_counts_after;
  j["imbalance_ratio"] = r.imbalance_ratio;
  if (r.has_text) j["text_length"] = {{"unit", "code_points"},
                      {"min", r.text_length.min},
                      {"max", r.text_length.max},
                      {"mean", r.text_length.mean},
                      {"p50", r.text_length.p50},
                      {"p90", r.text_length.p90},
                      {"p99", r.text_length.p99}};
  j["splits"] = r.splits;
  return j;
}

void Examples::check_consistent(std::size_t expected) const {
  if (has_text() && texts.size() != expected) {
    throw DataError("examples: " + std::to_string(texts.size()) + " texts for " + std::to_string(expected) +
                    " examples; every example needs its text");
  }
  if (has_images() && images.size() != expected) {
    throw DataError("examples: " + std::to_string(images.size()) + " images for " + std::to_string(expected) +
                    " examples; every example needs its image");
  }
}

void Examples::push_back(const Example& e) {
  const bool first = texts.empty() && images.empty();
  const std::size_t n = size();
  if (!first && has_text() != e.text.has_value()) {
    throw DataError("example " + std::to_string(n) + (e.text ? " has a text but the examples before it have none"
                                                             : " has no text but the examples before it do"));
  }
  if (!first && has_images() != e.image.has_value()) {
    throw DataError("example " + std::to_string(n) + (e.image ? " has an image but the examples before it have none"
                                                              : " has no image but the examples before it do"));
  }
  if (first && !e.text && !e.image) throw DataError("example 0 has neither a text nor an image");
  if (e.text) texts.push_back(*e.text);
  if (e.image) images.push_back(*e.image);
}

Example Examples::example(std::size_t i) const {
  Example e;
  if (has_text()) e.text = texts.at(i);
  if (has_images()) e.image = images.at(i);
  return e;
}

Examples Examples::select(const std::vector<std::size_t>& indices) const {
  Examples out;
  out.base_dir = base_dir;
  if (has_text()) {
    out.texts.reserve(indices.size());
    for (std::size_t i : indices) out.texts.push_back(texts.at(i));
  }
  if (has_images()) {
    out.images.reserve(indices.size());
    for (std::size_t i : indices) out.images.push_back(images.at(i));
  }
  return out;
}

Example Dataset::example(std::size_t i) const {
  Example e = Examples::example(i);
  e.label = labels.at(i);
  return e;
}

void Dataset::push_back(const Example& e) {
  if (labels.size() != Examples::size()) check_consistent(labels.size());
  Examples::push_back(e);
  labels.push_back(e.label);
}

Dataset Dataset::select(const std::vector<std::size_t>& indices) const {
  Dataset out;
  static_cast<Examples&>(out) = Examples::select(indices);
  out.labels.reserve(indices.size());
  for (std::size_t i : indices) out.labels.push_back(labels.at(i));
  return out;
}

std::vector<std::string> drop_reasons(const LoadOptions& options) {
  std::vector<std::string> reasons;
  if (!options.text_col.empty()) reasons.push_back(kMissingText);
  if (!options.image_col.empty()) reasons.push_back(kMissingImage);
  for (const char* r : {kMissingLabel, kLabelNotAllowed, kDuplicate, kBadUtf8}) reasons.push_back(r);
  return reasons;
}

Dataset load_labeled(const std::string& path, const LoadOptions& options, DataReport* report) {
  if (path != "-" && std::filesystem::is_directory(path)) return load_image_folder(path, options, report);
  const bool has_text = !options.text_col.empty(), has_image = !options.image_col.empty();
  if (!has_text && !has_image) {
    throw ConfigError("text_col is empty; name the column that holds the text (or set image_col for images)");
  }
  if (options.label_col.empty()) throw ConfigError("label_col is empty; name the column that holds the label");
  if (options.text_col == options.label_col) {
    throw ConfigError("text_col and label_col are both '" + options.text_col + "'; name two different columns");
  }
  if (options.image_col == options.label_col || options.image_col == options.text_col) {
    throw ConfigError("image_col and " + std::string(options.image_col == options.label_col ? "label_col" : "text_col") +
                      " are both '" + options.image_col + "'; name two different columns");
  }
  // Wanted columns: [text] [image] label, in that order.
  std::vector<std::string> wanted;
  if (has_text) wanted.push_back(options.text_col);
  if (has_image) wanted.push_back(options.image_col);
  wanted.push_back(options.label_col);
  const std::size_t text_at = 0, image_at = has_text ? 1 : 0, label_at = wanted.size() - 1;
  auto reader = open_records(path, options.reader, wanted);
  const std::string name = path == "-" ? "<stdin>" : path;

  DataReport rep;
  rep.input = name;
  rep.has_text = has_text;
  const std::vector<std::string> reasons = drop_reasons(options);
  for (const auto& reason : reasons) rep.dropped[reason] = 0;
  const std::set<std::string> allowed(options.allowed_labels.begin(), options.allowed_labels.end());

  Dataset ds;
  if (has_image && path != "-") ds.base_dir = std::filesystem::path(path).parent_path().string();
  // Indices into the kept rows, hashed and compared by their inputs: survives the vectors reallocating.
  auto hash = [&ds, has_text, has_image](std::size_t i) {
    std::size_t h = has_text ? std::hash<std::string_view>()(ds.texts[i]) : 0;
    if (has_image) h = h * 1000003u ^ std::hash<std::string_view>()(ds.images[i].path);
    return h;
  };
  auto equal = [&ds, has_text, has_image](std::size_t a, std::size_t b) {
    return (!has_text || ds.texts[a] == ds.texts[b]) && (!has_image || ds.images[a].path == ds.images[b].path);
  };
  std::unordered_set<std::size_t, decltype(hash), decltype(equal)> seen(64, hash, equal);

  Record rec;
  while (reader->next(rec)) {
    ++rep.rows_read;
    auto& label = rec.fields[label_at];
    const bool label_blank = is_blank(label);
    if (!label_blank) ++rep.class_counts_before[*label];
    if (has_text && is_blank(rec.fields[text_at])) {
      ++rep.dropped[kMissingText];
      continue;
    }
    if (has_image && is_blank(rec.fields[image_at])) {
      ++rep.dropped[kMissingImage];
      continue;
    }
    if (label_blank) {
      ++rep.dropped[kMissingLabel];
      continue;
    }
    if (!allowed.empty() && !allowed.count(*label)) {
      ++rep.dropped[kLabelNotAllowed];
      continue;
    }
    if (has_text) ds.texts.push_back(std::move(*rec.fields[text_at]));
    if (has_image) ds.images.push_back(ImageRef{std::move(*rec.fields[image_at]), {}});
    ds.labels.push_back(std::move(*label));
    if (options.dedupe && !seen.insert(ds.labels.size() - 1).second) {
      if (has_text) ds.texts.pop_back();
      if (has_image) ds.images.pop_back();
      ds.labels.pop_back();
      ++rep.dropped[kDuplicate];
      continue;
    }
  }
  rep.dropped[kBadUtf8] = reader->skipped_bad_utf8();
  rep.rows_read += rep.dropped[kBadUtf8];
  rep.rows_kept = static_cast<std::int64_t>(ds.size());

  if (rep.rows_read == 0) {
    throw DataError(name + ": no data rows (only a header, or an empty array); add rows with a text and a label");
  }
  if (ds.size() == 0) {
    std::string msg = name + ": every row was dropped (" + std::to_string(rep.rows_read) + " read:";
    const char* sep = " ";
    for (const auto& reason : reasons) {
      if (rep.dropped[reason] == 0) continue;
      msg += sep + reason + " " + std::to_string(rep.dropped[reason]);
      sep = ", ";
    }
    msg += "); ";
    std::vector<std::string> fixes;
    if (has_text && rep.dropped[kMissingText] > 0) {
      fixes.push_back("column '" + options.text_col + "' is empty in " + rows_word(rep.dropped[kMissingText]) +
                      " (is it the text column?)");
    }
    if (has_image && rep.dropped[kMissingImage] > 0) {
      fixes.push_back("column '" + options.image_col + "' is empty in " + rows_word(rep.dropped[kMissingImage]) +
                      " (is it the image column?)");
    }
    if (rep.dropped[kMissingLabel] > 0) {
      fixes.push_back("column '" + options.label_col + "' is empty in " +
                      rows_word(rep.dropped[kMissingLabel]) + " (is it the label column?)");
    }
    if (rep.dropped[kLabelNotAllowed] > 0) {
      std::map<std::string, std::int64_t> allowed_counts;
      for (const auto& l : allowed) allowed_counts[l] = 0;
      fixes.push_back("the labels filter (allowed_labels, --labels) allows only " + join_labels(allowed_counts) +
                      ", which match no label in the data; labels found: " + join_labels(rep.class_counts_before));
    }
    if (rep.dropped[kBadUtf8] > 0) {
      fixes.push_back("every remaining row had invalid UTF-8 and was skipped (on_bad_utf8=skip); re-encode the "
                      "file as UTF-8 or use on_bad_utf8=replace");
    }
    for (std::size_t i = 0; i < fixes.size(); ++i) msg += (i ? "; " : "") + fixes[i];
    throw DataError(msg);
  }

  for (const std::string& l : ds.labels) ++rep.class_counts_after[l];
  std::int64_t lo = std::numeric_limits<std::int64_t>::max(), hi = 0;
  for (const auto& [label, n] : rep.class_counts_after) {
    lo = std::min(lo, n);
    hi = std::max(hi, n);
  }
  rep.imbalance_ratio = static_cast<double>(hi) / static_cast<double>(lo);

  if (!has_text) {
    if (report) *report = std::move(rep);
    return ds;
  }
  std::vector<std::int64_t> lengths;
  lengths.reserve(ds.size());
  double sum = 0;
  for (const std::string& t : ds.texts) {
    auto n = static_cast<std::int64_t>(core::utf8_length(t));
    lengths.push_back(n);
    sum += static_cast<double>(n);
  }
  std::sort(lengths.begin(), lengths.end());
  rep.text_length.min = lengths.front();
  rep.text_length.max = lengths.back();
  rep.text_length.mean = sum / static_cast<double>(lengths.size());
  rep.text_length.p50 = percentile(lengths, 50);
  rep.text_length.p90 = percentile(lengths, 90);
  rep.text_length.p99 = percentile(lengths, 99);

  if (report) *report = std::move(rep);
  return ds;
}

namespace {

// The CSV of rows `indices` of `ds`, passed to `emit` a piece (the header, then one row) at a time.
template <typename Emit>
void csv_pieces(const Dataset& ds, const std::vector<std::size_t>& indices, const std::optional<std::string>& csv_dir,
                Emit&& emit) {
  namespace fs = std::filesystem;
  const bool has_text = ds.has_text(), has_image = ds.has_images();
  ds.check_consistent(ds.size());
  // Relative image paths are relative to ds.base_dir; rewritten relative to csv_dir when asked.
  std::optional<fs::path> base, target;
  if (has_image && csv_dir) {
    base = fs::absolute(ds.base_dir.empty() ? fs::path(".") : fs::path(ds.base_dir)).lexically_normal();
    target = fs::absolute(csv_dir->empty() ? fs::path(".") : fs::path(*csv_dir)).lexically_normal();
    if (*base == *target) base.reset();
  }
  emit(std::string(has_text || !has_image ? "text," : "") + (has_image ? "image," : "") + "label\n");
  std::string out;
  for (std::size_t i : indices) {
    if (i >= ds.size()) {
      throw Error("to_csv: row index " + std::to_string(i) + " out of range (dataset has " +
                  std::to_string(ds.size()) + " rows)");
    }
    out.clear();
    if (has_text) {
      append_csv_field(out, ds.texts[i]);
      out.push_back(',');
    }
    if (has_image) {
      const ImageRef& image = ds.images[i];
      if (image.path.empty()) {
        throw Error("to_csv: row " + std::to_string(i) + " holds its image as bytes, not a path; a CSV holds image "
                    "paths only: save the image to a file first");
      }
      fs::path p = image.path;
      if (base && p.is_relative()) {
        const fs::path full = (*base / p).lexically_normal();
        const fs::path rel = full.lexically_relative(*target);
        p = rel.empty() ? full : rel;
      }
      append_csv_field(out, p.string());
      out.push_back(',');
    }
    append_csv_field(out, ds.labels[i]);
    out.push_back('\n');
    emit(out);
  }
}

}  // namespace

std::string to_csv(const Dataset& ds, const std::vector<std::size_t>& indices,
                   const std::optional<std::string>& csv_dir) {
  std::string out;
  csv_pieces(ds, indices, csv_dir, [&](const std::string& piece) { out += piece; });
  return out;
}

void write_csv(core::AtomicFile& out, const Dataset& ds, const std::vector<std::size_t>& indices,
               const std::optional<std::string>& csv_dir) {
  csv_pieces(ds, indices, csv_dir, [&](const std::string& piece) { out.write(piece); });
}

}  // namespace kiln::data
