// Private text helpers shared by src/tune's samplers, studies and objectives (messages for people;
// nothing here is persisted).
#pragma once

#include <string>

namespace kiln::tune::format_detail {

/// `v` with 17 significant digits as an std::ostream prints it (0.1 -> "0.10000000000000001"):
/// every double in a message reads back exactly.
[[nodiscard]] std::string precise_number(double v);

/// What last_lines() does with spaces and carriage returns at the end of each line.
enum class TrailingSpace {
  kKeep,  ///< lines stay as written (a line of spaces counts as non-empty)
  kTrim,  ///< trailing ' ' and '\r' are removed first (CRLF output, padded lines)
};

/// The last `n` non-empty lines of `text`, joined by '\n' (no trailing newline).
[[nodiscard]] std::string last_lines(const std::string& text, int n, TrailingSpace trailing);

}  // namespace kiln::tune::format_detail
