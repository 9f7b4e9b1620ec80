// This process's memory as Linux reports it (/proc/self/status), for measurements that must see
// what the operating system sees: resident pages, not allocator counts.
#pragma once

#include <string>

namespace kiln::core {

/// A memory field of /proc/self/status in bytes: "VmRSS:" (resident now), "VmHWM:" (the resident
/// high-water mark), ...; 0 when the field is absent (not Linux).
[[nodiscard]] double process_status_bytes(const std::string& field);

/// Resets the resident high-water mark (VmHWM) to the current resident set, through
/// /proc/self/clear_refs (Linux 4.0+). False when the kernel refuses.
bool reset_peak_resident();

}  // namespace kiln::core
