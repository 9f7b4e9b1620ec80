// `kiln plan --gpu cpu` times a training step's ops on this machine: each kernel of
// plan::ModelShape::kernels runs at the job's shapes, forward and backward through autograd, as the
// model and the trainer run it (Kiln's dropout, fused AdamW and clipping kernels).
#pragma once

#include <nlohmann/json.hpp>

namespace kiln::train {

/// request: {"kernels": [{"op", "dims", "count", "backward", "input_grad"}, ...] (plan::kernels_to_json),
/// "threads": per rank, "ranks": data-parallel ranks on this machine (default 1; each kernel then
/// runs in that many copies at once, and its time is their mean)}.
/// Answers {"forward_s": [...], "backward_s": [...], "runtime_bytes", "runtime_start_bytes",
/// "threads", "source"}: the median seconds per call of each kernel at LibTorch's current thread
/// count; this process's resident memory once one copy of each op has run and its tensors are
/// freed (LibTorch loaded, its thread pools and buffers up, no data), and at the start, before any
/// probe tensor. Throws ConfigError for an
/// unknown op or dims of the wrong arity, naming the kernel.
[[nodiscard]] nlohmann::json time_step_kernels(const nlohmann::json& request);

}  // namespace kiln::train
