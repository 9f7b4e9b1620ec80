// Labelled feedback as JSON lines, one item per line: {"text": ..., "label": ..., ("image": PATH,)
// ("id": ...)}; a relative image PATH is relative to the stream file's folder (stdin's: the current
// directory), as a data file's image column is. Reads a stream incrementally (a file or stdin) and names the line of every problem.
#pragma once

#include <cstdint>
#include <istream>
#include <optional>
#include <string>

#include "kiln/data/dataset.h"

namespace kiln::learn {

struct FeedbackItem {
  data::Example example;
  std::string id;     ///< optional; a repeated id is a duplicate
  std::string where;  ///< "FILE:LINE", for messages
  /// Position in a durable feedback log (the server's), 0 when none: the Learner persists the last
  /// one it has learnt from, so a restart feeds it the rest again.
  int64_t seq = 0;
};

/// Parses one line (`where` = "FILE:LINE"). Throws DataError naming `where` for malformed JSON, a
/// line that is not an object, a missing or non-string "label", no "text" and no "image", or a field
/// of the wrong type.
[[nodiscard]] FeedbackItem parse_feedback_line(const std::string& line, const std::string& where);

/// Reads items one at a time from `in` (named `name` in messages; "-" reads as "stdin"), skipping
/// blank lines. Relative image paths become absolute, resolved against `name`'s folder (the current
/// directory for "-"): items from several streams, the replay buffer and the artifact's held-out
/// sample then mix in one data set without a shared base folder.
class FeedbackReader {
 public:
  FeedbackReader(std::istream& in, std::string name);
  /// The next item, or nullopt at the end of the stream. Throws what parse_feedback_line throws.
  [[nodiscard]] std::optional<FeedbackItem> next();
  [[nodiscard]] int64_t line() const { return line_; }

 private:
  std::istream& in_;
  std::string name_;
  std::string base_dir_;
  int64_t line_ = 0;
};

}  // namespace kiln::learn
