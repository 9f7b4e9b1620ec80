#include "image_sets.h"

#include <algorithm>
#include <fstream>

#include "kiln/core/atomic_output.h"
#include "kiln/core/error.h"
#include "kiln/data/dataset.h"

namespace kiln::data {

namespace fs = std::filesystem;

void write_image_set(const fs::path& csv, const std::string& name, const std::vector<ImageSetRow>& rows) {
  core::AtomicDirectory folder(csv.parent_path() / name);
  Dataset table;
  table.base_dir = csv.parent_path().string();
  for (const auto& row : rows) {
    const fs::path rel = fs::path(row.label) / row.file;
    fs::create_directories(folder.path() / row.label);
    std::ofstream out(folder.path() / rel, std::ios::binary);
    out.write(row.png.data(), static_cast<std::streamsize>(row.png.size()));
    if (!out) throw IoError("cannot write " + (folder.target() / rel).string() + "; check free space");
    Example e;
    e.text = row.text;
    e.image = ImageRef{name + "/" + rel.generic_string(), {}};
    e.label = row.label;
    table.push_back(e);
  }
  std::vector<std::size_t> all(table.size());
  for (std::size_t i = 0; i < all.size(); ++i) all[i] = i;
  folder.commit();
  core::write_file_atomic(csv, to_csv(table, all));
}

std::vector<ImageSetRow> collect_icons(const fs::path& size_dir, std::size_t min_class_size, IconStats* stats) {
  IconStats st;
  std::error_code ec;
  std::vector<fs::path> contexts;
  for (const auto& e : fs::directory_iterator(size_dir, ec)) {
    if (e.is_directory(ec) && !e.is_symlink(ec)) contexts.push_back(e.path());
  }
  if (ec || contexts.empty()) {
    throw DataError(size_dir.string() + ": no icon context folders (actions, apps, ...); the package layout is not the "
                    "expected one");
  }
  std::sort(contexts.begin(), contexts.end());
  std::vector<ImageSetRow> out;
  for (const auto& dir : contexts) {
    std::vector<ImageSetRow> rows;
    for (const auto& e : fs::directory_iterator(dir)) {
      if (e.path().extension() != ".png") continue;
      if (e.is_symlink()) {
        ++st.symlinks;
        continue;
      }
      if (!e.is_regular_file()) continue;
      ++st.files;
      ImageSetRow row;
      std::string text = e.path().stem().string();
      std::replace(text.begin(), text.end(), '-', ' ');
      row.text = text;
      row.png = core::read_file(e.path());
      row.label = dir.filename().string();
      row.file = e.path().filename().string();
      rows.push_back(std::move(row));
    }
    if (rows.size() < min_class_size) {
      if (!rows.empty()) st.small_classes[dir.filename().string()] = static_cast<std::int64_t>(rows.size());
      continue;
    }
    std::sort(rows.begin(), rows.end(), [](const ImageSetRow& a, const ImageSetRow& b) { return a.file < b.file; });
    for (auto& r : rows) out.push_back(std::move(r));
  }
  if (stats) *stats = st;
  return out;
}

}  // namespace kiln::data
