// Private helpers of the study storage (sql_storage.cpp and the connections). The public
// interface is kiln/tune/storage.h.
#pragma once

#include <string>

namespace kiln::tune::storage_detail {

/// Current time, Unix seconds (UTC), microsecond resolution.
[[nodiscard]] double now_unix_seconds();

/// Decimal text of `v` that reads back exactly, in the fewest of 15..17 significant digits
/// (0.2 stays "0.2"): for SQL text parameters and messages.
[[nodiscard]] std::string format_double(double v);

}  // namespace kiln::tune::storage_detail
