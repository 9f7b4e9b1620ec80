// This process's memory as Linux reports it (/proc/self/status), for measurements that must see
// what the operating system sees: resident pages, not allocator counts.
#pragma once

#include <cstddef>
#include <string>

namespace kiln::core {

/// A memory field of /proc/self/status in bytes: "VmRSS:" (resident now), "VmHWM:" (the resident
/// high-water mark), ...; 0 when the field is absent (not Linux).
[[nodiscard]] double process_status_bytes(const std::string& field);

/// Resets the resident high-water mark (VmHWM) to the current resident set, through
/// /proc/self/clear_refs (Linux 4.0+). False when the kernel refuses.
bool reset_peak_resident();

}  // namespace kiln::core

namespace kiln::core {

/// Prepares the allocator for one short batch job (a CLI command that reads, computes and exits)
/// that will touch about `bytes` of heap: one malloc arena for every thread, allocations up to
/// 32 MiB from the heap, freed memory kept for reuse instead of returned to the system, and the
/// heap grown by `bytes` at once and marked for transparent huge pages. A fresh 4 KiB page costs a
/// page fault on first touch; on a 2.5 MB TF-IDF fit those faults were a third of the run. Call it
/// once, first thing, before other threads start; not for long-lived processes (the server), which
/// should give memory back. glibc on Linux only; elsewhere, and when the kernel refuses huge
/// pages, it changes nothing or less.
void reserve_batch_heap(std::size_t bytes);

}  // namespace kiln::core
