// The image data sets of `kiln data fetch` on disk: a folder of PNG files per class beside a CSV
// whose image paths are relative to it, and the collection of Debian's Oxygen icons into such a set.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace kiln::data {

/// One image of a fetched set: its PNG bytes, label, optional text, and the file name it gets
/// under `<set>/<label>/`.
struct ImageSetRow {
  std::optional<std::string> text;
  std::string png;
  std::string label;
  std::string file;
};

/// Writes `csv`'s folder/<name>/<label>/<file> for every row and then `csv` itself: `image,label` or
/// `text,image,label` (when the rows have text), image paths relative to the CSV. The folder is
/// built in a temporary sibling and renamed whole, then the CSV is written atomically: a cached CSV
/// always has all its images. Throws IoError naming the file that could not be written.
void write_image_set(const std::filesystem::path& csv, const std::string& name, const std::vector<ImageSetRow>& rows);

/// What collect_icons kept and dropped.
struct IconStats {
  std::int64_t files = 0;           ///< regular .png files seen
  std::int64_t symlinks = 0;        ///< links skipped (aliases of another icon: the same pixels)
  std::map<std::string, std::int64_t> small_classes;  ///< context → icons, dropped (< min_class_size)
};

/// The icons of one size folder of an icon theme (`.../oxygen/base/64x64`): every regular
/// `<context>/<name>.png` (links skipped), text = name with '-' as spaces, label = context; contexts
/// with fewer than `min_class_size` icons are dropped. Sorted by context, then name. Throws
/// DataError when `size_dir` holds no context folder (naming it).
[[nodiscard]] std::vector<ImageSetRow> collect_icons(const std::filesystem::path& size_dir, std::size_t min_class_size,
                                                     IconStats* stats);

}  // namespace kiln::data
