// Times a training step's ops on this machine for `kiln plan --gpu cpu` (kiln/train/step_probe.h).
#include "kiln/train/step_probe.h"

#include <torch/torch.h>

#include <malloc.h>

#include <algorithm>
#include <chrono>
#include <exception>
#include <fstream>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "fused_update.h"
#include "kiln/core/error.h"
#include "kiln/core/cpu.h"
#include "kiln/core/process_memory.h"
#include "kiln/nn/dropout.h"
#include "kiln/nn/sparse_embed.h"
#include "kiln/train/data_parallel.h"

namespace kiln::train {
namespace {

using Clock = std::chrono::steady_clock;
constexpr std::size_t kRowSets = 8;  // row-sparse ops cycle through this many random row sets

double resident_bytes() { return core::process_status_bytes("VmRSS:"); }

/// Bytes glibc's malloc has handed out and not taken back (every arena, and the mmapped blocks).
double allocated_bytes() {
  const struct mallinfo2 m = mallinfo2();
  return static_cast<double>(m.uordblks) + static_cast<double>(m.hblkhd);
}

double seconds(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); }

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

/// One kernel ready to run: `forward` builds the output from leaves that require gradients (as in
/// the model); `update` is an in-place step without autograd (the optimizer's).
struct Runnable {
  std::function<torch::Tensor()> forward;
  std::function<void()> update;
  std::vector<torch::Tensor> leaves;  ///< their gradients are dropped after each call, as zero_grad does
};

Runnable prepare(const std::string& op, const std::vector<int64_t>& d, bool input_grad, const std::string& where) {
  auto need = [&](std::size_t n) {
    if (d.size() != n) {
      throw ConfigError("plan probe: " + where + " (" + op + ") needs " + std::to_string(n) + " dims, got " +
                        std::to_string(d.size()));
    }
    for (std::size_t i = 0; i < d.size(); ++i) {
      // A convolution's padding (its last dim) may be 0.
      if (d[i] < (op == "conv2d" && i == 7 ? 0 : 1)) {
        throw ConfigError("plan probe: " + where + " (" + op + ") has a dimension < 1");
      }
    }
  };
  Runnable r;
  auto leaf = [&r](std::vector<int64_t> shape, bool grad) {
    auto t = torch::randn(shape).mul_(0.1).requires_grad_(grad);
    if (grad) r.leaves.push_back(t);
    return t;
  };
  if (op == "linear") {
    need(3);
    auto x = leaf({d[0], d[1]}, input_grad), w = leaf({d[2], d[1]}, true), b = leaf({d[2]}, true);
    r.forward = [x, w, b] { return torch::linear(x, w, b); };
  } else if (op == "matmul") {
    need(4);
    auto a = leaf({d[0], d[1], d[2]}, input_grad), b = leaf({d[0], d[2], d[3]}, input_grad);
    r.forward = [a, b] { return torch::matmul(a, b); };
  } else if (op == "softmax") {
    need(2);
    auto x = leaf({d[0], d[1]}, input_grad), mask = torch::zeros({1, d[1]});
    r.forward = [x, mask] { return torch::softmax(x + mask, -1); };
  } else if (op == "layer_norm") {
    need(2);
    auto x = leaf({d[0], d[1]}, input_grad), res = leaf({d[0], d[1]}, input_grad);
    auto g = leaf({d[1]}, true), b = leaf({d[1]}, true);
    r.forward = [x, res, g, b, h = d[1]] { return torch::layer_norm(x + res, {h}, g, b, 1e-12); };
  } else if (op == "gelu" || op == "relu" || op == "tanh" || op == "dropout" || op == "scale" || op == "copy") {
    need(1);
    if (op == "copy") {
      // A transposed view made contiguous, as the heads' context is reshaped back to [B, s, H].
      const int64_t rows = std::max<int64_t>(1, d[0] / 64);
      auto x = leaf({64, rows}, input_grad);
      r.forward = [x] { return x.t().contiguous(); };
    } else {
      auto x = leaf({d[0]}, input_grad);
      if (op == "gelu") r.forward = [x] { return torch::gelu(x); };
      if (op == "relu") r.forward = [x] { return torch::relu(x); };
      if (op == "tanh") r.forward = [x] { return torch::tanh(x); };
      if (op == "dropout") r.forward = [x] { return nn::dropout(x, 0.1, true); };
      if (op == "scale") r.forward = [x] { return x / 8.0; };
    }
  } else if (op == "add") {
    need(1);
    auto x = leaf({d[0]}, input_grad), y = leaf({d[0]}, input_grad);
    r.forward = [x, y] { return x + y; };
  } else if (op == "conv2d") {
    need(8);
    auto x = leaf({d[0], d[1], d[2], d[3]}, input_grad), w = leaf({d[4], d[1], d[5], d[5]}, true);
    r.forward = [x, w, stride = d[6], pad = d[7]] { return torch::conv2d(x, w, {}, stride, pad); };
  } else if (op == "batch_norm") {
    need(4);
    auto x = leaf({d[0], d[1], d[2], d[3]}, input_grad), g = leaf({d[1]}, true), b = leaf({d[1]}, true);
    auto mean = torch::zeros({d[1]}), var = torch::ones({d[1]});
    r.forward = [x, g, b, mean, var] { return torch::batch_norm(x, g, b, mean, var, true, 0.1, 1e-5, false); };
  } else if (op == "max_pool" || op == "mean_pool") {
    need(4);
    auto x = leaf({d[0], d[1], d[2], d[3]}, input_grad);
    if (op == "max_pool") r.forward = [x] { return torch::max_pool2d(x, 3, 2, 1); };
    else r.forward = [x] { return x.mean({2, 3}); };
  } else if (op == "embedding") {
    need(3);
    auto w = leaf({d[0], d[1]}, true);
    auto ids = torch::randint(0, d[0], {d[2]}, torch::kInt64);
    r.forward = [w, ids] { return torch::embedding(w, ids); };
  } else if (op == "embedding_bag") {
    need(d.size() == 5 ? 5 : 4);
    // The bag models' first layer as they run it (nn::embed_sparse: weighted sum, row-sparse gradient),
    // its ids falling in d[4] distinct rows of the table (the rows a batch touches).
    auto bag = torch::nn::EmbeddingBag(torch::nn::EmbeddingBagOptions(d[0], d[1]).mode(torch::kSum).sparse(true));
    r.leaves.push_back(bag->weight);
    // Successive calls take successive batches of kRowSets, each its own random rows: as in training,
    // where every step reads and writes other rows, the rows are not still in the core's cache.
    const int64_t distinct = d.size() == 5 ? std::min(d[4], d[0]) : d[0];
    std::vector<nn::SparseBatch> batches(kRowSets);
    for (auto& batch : batches) {
      const torch::Tensor rows = torch::randperm(d[0], torch::kInt64).narrow(0, 0, distinct);
      batch.indices = rows.index_select(0, torch::randint(0, distinct, {d[2] * d[3]}, torch::kInt64));
      batch.offsets = torch::arange(0, d[2] * d[3], d[3], torch::kInt64);
      batch.weights = torch::rand({d[2] * d[3]});
    }
    r.forward = [bag, batches, next = std::size_t{0}]() mutable {
      return nn::embed_sparse(bag, batches[next++ % batches.size()], nn::Pooling::kSum);
    };
  } else if (op == "cross_entropy") {
    need(2);
    auto x = leaf({d[0], d[1]}, true);
    auto y = torch::randint(0, d[1], {d[0]}, torch::kInt64);
    r.forward = [x, y] { return torch::nn::functional::cross_entropy(x, y); };
  } else if (op == "adamw") {
    need(1);
    auto w = torch::randn({d[0]}), m = torch::zeros({d[0]}), v = torch::zeros({d[0]}), g = torch::randn({d[0]});
    r.update = [w, m, v, g]() mutable {
      AdamWStep s;
      s.lr = 1e-4, s.weight_decay = 0.01;
      adamw_dense(w, m, v, g, s);
    };
  } else if (op == "adamw_rows") {
    need(3);
    // Scattered rows of a table and its moments, as the bag models' row-sparse AdamW updates them.
    const int64_t updated = std::min(d[2], d[0]);
    auto w = torch::randn({d[0], d[1]}), m = torch::zeros({d[0], d[1]}), v = torch::zeros({d[0], d[1]});
    std::vector<torch::Tensor> row_sets(kRowSets);  // other rows each call (embedding_bag's reason)
    for (auto& rows : row_sets) rows = std::get<0>(torch::randperm(d[0], torch::kInt64).narrow(0, 0, updated).sort());
    auto g = torch::randn({updated, d[1]});
    r.update = [w, m, v, row_sets, g, next = std::size_t{0}]() mutable {
      AdamWStep s;
      s.lr = 1e-4, s.weight_decay = 0.01;
      adamw_rows(w, m, v, row_sets[next++ % row_sets.size()], g, s);
    };
  } else if (op == "grad_norm") {
    need(1);
    auto g = torch::randn({d[0]});
    r.update = [g]() mutable {
      const double n = std::sqrt(sum_of_squares(g));
      scale_in_place(g, 1.0 / std::max(n, 1.0));
    };
  } else {
    throw ConfigError("plan probe: " + where + " has the unknown op \"" + op + "\"");
  }
  return r;
}

/// Calls `r` until at least kMinReps timed calls and 150 ms have passed (at most kMaxReps): the
/// seconds of each forward and backward (or update) after the first call, which pays first touch.
/// The first few calls of an op run slower (malloc and the BLAS pools settling): with 2 calls and
/// 40 ms, BERT-mini's planned step swung between 0.95 and 1.65 s from one plan to the next; with 4
/// and 150 ms, 0.73 to 0.87 s (a training step measured about 1.0 s).
void time_calls(Runnable& r, bool backward, std::vector<double>& f, std::vector<double>& b) {
  constexpr double kMinSeconds = 0.15;
  constexpr int kMinReps = 4, kMaxReps = 40;
  torch::Tensor grad_out;
  const auto start = Clock::now();
  for (int rep = 0; rep < kMaxReps + 1; ++rep) {
    if (rep > kMinReps && seconds(start, Clock::now()) > kMinSeconds) break;
    if (r.update) {
      const auto t0 = Clock::now();
      r.update();
      if (rep > 0) f.push_back(seconds(t0, Clock::now()));
      continue;
    }
    const auto t0 = Clock::now();
    torch::Tensor out = r.forward();
    const auto t1 = Clock::now();
    if (backward) {
      if (!grad_out.defined()) grad_out = torch::randn_like(out).detach();
      out.backward(grad_out);
    }
    const auto t2 = Clock::now();
    for (auto& l : r.leaves) l.mutable_grad().reset();
    if (rep > 0) {
      f.push_back(seconds(t0, t1));
      b.push_back(seconds(t1, t2));
    }
  }
}

}  // namespace

nlohmann::json time_step_kernels(const nlohmann::json& request) {
  const double runtime_start = resident_bytes();
  if (!request.contains("kernels") || !request.at("kernels").is_array()) {
    throw ConfigError("plan probe: the request has no \"kernels\" list");
  }
  const int threads_before = at::get_num_threads();
  const int threads = request.value("threads", threads_before);
  if (threads < 1) throw ConfigError("plan probe: threads must be >= 1, got " + std::to_string(threads));
  at::set_num_threads(threads);
  core::set_blas_threads(threads);
  struct Restore {
    int n;
    ~Restore() {
      at::set_num_threads(n);
      core::set_blas_threads(n);
    }
  } restore{threads_before};
  const int ranks = request.value("ranks", 1);
  if (ranks < 1 || ranks > 256) throw ConfigError("plan probe: ranks must be in [1, 256], got " + std::to_string(ranks));
  struct Spec {
    std::string where, op;
    std::vector<int64_t> dims;
    bool backward = true, input_grad = true;
  };
  std::vector<Spec> specs;
  for (const auto& k : request.at("kernels")) {
    Spec spec;
    spec.where = "kernel " + std::to_string(specs.size());
    try {
      spec.op = k.at("op").get<std::string>();
      spec.dims = k.at("dims").get<std::vector<int64_t>>();
      spec.backward = k.value("backward", true);
      spec.input_grad = k.value("input_grad", true);
    } catch (const nlohmann::json::exception&) {
      throw ConfigError("plan probe: " + spec.where + " is not {\"op\": ..., \"dims\": [...]}");
    }
    specs.push_back(std::move(spec));
  }
  std::vector<double> fwd(specs.size()), bwd(specs.size()), saved(specs.size());
  // Pass 1, one copy of each op on this thread, as one rank's process runs its step: the bytes its
  // forward keeps, and the memory the step leaves resident (below). With one rank, its times too.
  for (std::size_t i = 0; i < specs.size(); ++i) {
    const Spec& k = specs[i];
    Runnable r = prepare(k.op, k.dims, k.input_grad, k.where);
    std::vector<double> f, b;
    time_calls(r, k.backward, f, b);
    if (ranks == 1) {
      fwd[i] = median(f);
      bwd[i] = k.backward && !r.update ? median(b) : 0.0;
    }
    if (r.forward && k.backward) {
      // What the forward pass leaves allocated until backward: its output and what autograd saved
      // beyond the inputs (dropout's noise, LayerNorm's statistics, a softmax's result).
      const double before = allocated_bytes();
      torch::Tensor out = r.forward();
      saved[i] = std::max(0.0, allocated_bytes() - before);
    }
  }
  // Thread pools, BLAS buffers, the code the ops paged in and the heap malloc keeps after their
  // tensors are freed: what one rank's process holds besides its live tensors. Read before pass 2,
  // whose copies run on threads of this one process (each thread's malloc arena keeps its own heap).
  const double runtime = std::max(runtime_start, resident_bytes());
  // Pass 2, with several ranks: one copy per rank, run at once: ranks on one machine share its
  // cores, caches and memory bandwidth, and a rank's op is as fast as it is next to the others'.
  for (std::size_t i = 0; ranks > 1 && i < specs.size(); ++i) {
    const Spec& k = specs[i];
    std::vector<Runnable> copies;
    for (int k2 = 0; k2 < ranks; ++k2) copies.push_back(prepare(k.op, k.dims, k.input_grad, k.where));
    std::vector<std::vector<double>> f(static_cast<std::size_t>(ranks)), b(static_cast<std::size_t>(ranks));
    std::vector<std::thread> pool;
    std::vector<std::exception_ptr> errors(static_cast<std::size_t>(ranks));
    for (int k2 = 0; k2 < ranks; ++k2) {
      const auto c = static_cast<std::size_t>(k2);
      pool.emplace_back([&, c] {
        try {
          time_calls(copies[c], k.backward, f[c], b[c]);
        } catch (...) {
          errors[c] = std::current_exception();
        }
      });
    }
    for (auto& t : pool) t.join();
    for (auto& e : errors) {
      if (e) std::rethrow_exception(e);
    }
    double fs = 0, bs = 0;
    for (int k2 = 0; k2 < ranks; ++k2) {
      fs += median(f[static_cast<std::size_t>(k2)]);
      bs += median(b[static_cast<std::size_t>(k2)]);
    }
    fwd[i] = fs / ranks;
    bwd[i] = k.backward && !copies[0].update ? bs / ranks : 0.0;
  }
  const int64_t link_bytes = request.value("link_bytes", int64_t{0});
  nlohmann::json answer = {{"forward_s", fwd},
          {"backward_s", bwd},
          {"saved_bytes", saved},
          {"runtime_bytes", runtime},
          {"runtime_start_bytes", runtime_start},
          {"threads", threads},
          {"ranks", ranks},
          {"source", "median of timed calls at " + std::to_string(threads) + " thread(s)" +
                         (ranks > 1 ? ", " + std::to_string(ranks) + " copies at once (one per rank)" : "")}};
  if (link_bytes > 0 && ranks > 1) {
    const AllreduceTiming t = time_allreduce(link_bytes, ranks);
    answer["allreduce_bytes_per_s"] = t.bytes_per_s;
    answer["collective_latency_s"] = t.latency_s;
  }
  return answer;
}

}  // namespace kiln::train
