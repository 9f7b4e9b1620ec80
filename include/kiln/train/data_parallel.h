// Data-parallel training: N processes, each holding the whole model and training on its own shard of
// every global batch, kept identical by summing their gradients (DDP's scheme). The trainer talks to
// this interface only; the implementation (src/train/data_parallel.cpp) runs on LibTorch's c10d
// (TCPStore rendezvous, ProcessGroupGloo), whose headers stay out of this one.
#pragma once

#include <torch/torch.h>

#include <memory>
#include <string>
#include <vector>

namespace kiln::train {

/// Where a process sits in a data-parallel job and how to reach the others. The CLI fills it from
/// flags or from torchrun's environment (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT, ...).
struct DistOptions {
  /// This process's rank in [0, world_size). Default 0.
  int rank = 0;
  /// Processes in the job (all nodes). >= 1. Default 1.
  int world_size = 1;
  /// Host of the rendezvous store (rank 0 serves it). Default "127.0.0.1".
  std::string master_addr = "127.0.0.1";
  /// Port of the rendezvous store, in [1, 65535]. Default 29500 (torchrun's).
  int master_port = 29500;
  /// Seconds a collective (or the rendezvous) may wait for the other ranks before failing with an
  /// error naming the rank that did not answer. > 0. Default 300.
  double timeout_s = 300;
  /// Network interface Gloo binds (GLOO_SOCKET_IFNAME); empty = the one that reaches master_addr
  /// (loopback when master_addr is local). Default empty.
  std::string interface;
  /// Dense gradients are all-reduced in buckets of about this many bytes, each started as soon as
  /// backward has produced all of its gradients (overlapping communication with backward). > 0.
  /// Default 25 MiB (DDP's bucket_cap_mb).
  int64_t bucket_bytes = 25 << 20;
};

/// Throws ConfigError naming the field and the value.
void validate(const DistOptions& options);

/// Installs a std::terminate handler for the data-parallel run `options` (GlooDataParallel does, once
/// per process; a later call replaces the options). LibTorch 1.13's TCPStore client lets a reset
/// connection escape its listener thread as an uncaught std::system_error when rank 0, which serves
/// the store, dies with data unread on its socket. The handler turns that into the error the
/// collectives give ("data-parallel rank R of W: the rendezvous store's connection failed: rank 0
/// ... is gone ...") on stderr and exits 1; any other uncaught exception goes to the previous handler.
void install_store_reset_handler(const DistOptions& options);

/// Per-step totals over every rank, from DataParallel::reduce_gradients.
struct StepTotals {
  double weight = 0;         ///< Σ over ranks of the loss normaliser (Σ class weight of the targets)
  double weighted_loss = 0;  ///< Σ over ranks of normaliser · local loss; / weight = the global loss
  int64_t examples = 0;      ///< examples in the global batch
  [[nodiscard]] double loss() const { return weighted_loss / weight; }
};

/// One process's end of a data-parallel job. Every rank must make the same calls in the same order
/// (collectives); a rank that dies or stops answering makes the others' next call throw an Error
/// naming it within timeout_s. Not thread-safe: one training loop per process.
class DataParallel {
 public:
  virtual ~DataParallel() = default;
  [[nodiscard]] virtual int rank() const = 0;
  [[nodiscard]] virtual int world_size() const = 0;

  /// Copies rank 0's values into every rank's `tensors` (parameters and buffers at the start).
  virtual void broadcast(const std::vector<torch::Tensor>& tensors) = 0;

  /// Registers gradient hooks on `params` (the model's parameters, the same list and order on every
  /// rank): from the next backward on, each bucket of dense gradients starts its all-reduce as soon
  /// as backward has produced all of it. `sparse[k]` marks a parameter whose gradient is row-sparse
  /// (an EmbeddingBag table with sparse gradients): it is reduced over the union of the rows the
  /// ranks touched (their ids all-gathered, then one dense all-reduce of those rows), never
  /// densified to the whole table. Call once, before the first step.
  virtual void attach(const std::vector<torch::Tensor>& params, const std::vector<bool>& sparse) = 0;

  /// Removes attach's hooks: backward passes on the model are this process's own again (calibration,
  /// explanations). attach may be called again afterwards.
  virtual void detach() = 0;

  /// Optional, once per step, after the forward pass and before backward: starts summing the step's
  /// totals (the arguments reduce_gradients takes, the same values) so that the reduction runs while
  /// backward does instead of after it. Every rank makes the same collectives in the same order:
  /// a rank without examples in the step skips it, and reduce_gradients sends its totals first.
  virtual void begin_step(double local_weight, double local_loss, int64_t local_examples) = 0;

  /// After this rank's backward of (local loss · `local_weight`) — or no backward at all when the
  /// rank has no examples in this step or a non-finite loss — waits for the reductions and leaves
  /// every rank with the global gradient: Σ_ranks grad / Σ_ranks weight (a parameter no rank produced
  /// a gradient for keeps none). `local_weight` is the local loss's normaliser (Σ class weights of
  /// the local targets; the example count when unweighted), `local_loss` its value (NaN when not
  /// finite: every rank then sees a non-finite total and skips the step alike).
  [[nodiscard]] virtual StepTotals reduce_gradients(double local_weight, double local_loss, int64_t local_examples) = 0;

  /// Element-wise sum over ranks of a few values (small: metrics, decisions).
  [[nodiscard]] virtual std::vector<double> all_reduce_sum(std::vector<double> values) = 0;

  /// Rank 0's `values` on every rank (decisions every rank must take alike: early stopping).
  [[nodiscard]] virtual std::vector<double> broadcast_values(std::vector<double> values) = 0;

  /// Waits until every rank got here.
  virtual void barrier() = 0;

  /// Leaves `message` where the other ranks look when their next collective fails, so their error
  /// names this rank and why it stopped. Call before leaving on an error. Never throws.
  virtual void announce_failure(const std::string& message) noexcept = 0;

  /// Seconds this rank spent waiting for gradient reductions, summed since the start: after its
  /// backward, and within it for row-sparse tables' row ids (communication not hidden behind
  /// backward), and the steps they cover.
  [[nodiscard]] virtual double exposed_comm_seconds() const = 0;
  [[nodiscard]] virtual int64_t reduced_steps() const = 0;
};

/// Joins the job `options` describes: rank 0 serves the TCPStore at master_addr:master_port, every
/// rank connects to it and builds a Gloo process group. Throws Error naming the address and the fix
/// when the rendezvous fails or times out.
[[nodiscard]] std::unique_ptr<DataParallel> join_data_parallel(const DistOptions& options);

/// The interval [begin, end) of a global batch of `count` examples that `rank` of `world_size` trains on:
/// contiguous, sizes differing by at most one, earlier ranks taking the remainder. The union over ranks is
/// the batch a single process with the same global batch trains on, so N processes visit exactly the
/// examples one process does, in the same steps.
struct ShardRange {
  int64_t begin = 0;
  int64_t end = 0;
};
[[nodiscard]] ShardRange shard_of_batch(int64_t count, int rank, int world_size);

/// What a Gloo all-reduce of `bytes` (float32) achieves between `ranks` process groups on 127.0.0.1
/// (the transport and ring algorithm local ranks use): the bandwidth the ring formula needs (from the
/// median seconds of one all-reduce after a warm-up, rank 0's clock), and a collective's fixed cost
/// (the mean seconds of 8-float all-reduces back to back: a step's collectives follow each other,
/// and on a busy machine their cost has a long tail a job pays in full). The ranks run as processes
/// of the program set_collective_peer_program names, as a job's do (threads of one process wake
/// each other at other costs); without one, as threads of this process.
/// For `kiln plan --gpu cpu --n N`. Throws Error when the groups cannot connect or a peer fails.
struct AllreduceTiming {
  double bytes_per_s = 0;  ///< 2(N-1)/N x bytes / seconds of the all-reduce of `bytes`
  double latency_s = 0;    ///< seconds of an all-reduce of 8 floats (a collective's fixed cost)
};
[[nodiscard]] AllreduceTiming time_allreduce(int64_t bytes, int ranks);

/// The command time_allreduce starts for ranks 1..N-1, which it runs with `--rank R --ranks N
/// --port P --bytes B` appended; that command must call run_collective_peer with them (kiln-ml's
/// hidden `collective-peer` verb). Empty (the default): ranks are threads.
void set_collective_peer_program(std::vector<std::string> argv);

/// Rank `rank` of a time_allreduce run: joins the store rank 0 serves on 127.0.0.1:`port` and runs
/// the same collectives. Throws on a failed connection or collective (60 s timeout).
void run_collective_peer(int rank, int ranks, int port, int64_t bytes);

}  // namespace kiln::train
