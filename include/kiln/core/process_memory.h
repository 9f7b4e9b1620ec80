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

/// Sets the allocator up for one short batch job (a CLI command that reads, computes and exits):
/// allocations up to 32 MiB come from the heap instead of fresh mappings, and freed memory is kept
/// for the next allocation instead of being given back to the system. Each fresh 4 KiB page costs
/// a page fault on first touch; in `kiln tfidf` the faults of memory allocated, freed and allocated
/// again were a fifth of the run on small corpora. Not for long-lived processes (the server), which
/// should give memory back. glibc only; elsewhere it does nothing.
void keep_heap_for_batch();

}  // namespace kiln::core

namespace kiln::core {

/// Asks the kernel to back [data, data + bytes) with transparent huge pages (2 MiB) where whole
/// ones fit, before its pages are first touched: for large tables read at random rows (an
/// embedding table of hundreds of MB), where each 4 KiB page would cost a TLB miss. Does nothing
/// for ranges under 8 MiB, where THP is off, or off Linux; the memory's contents are unaffected.
void advise_huge_pages(void* data, std::size_t bytes);

}  // namespace kiln::core
