// Times a training step's ops on this machine for `kiln plan --gpu cpu` (kiln/train/step_probe.h).
#include "kiln/train/step_probe.h"

#include <torch/torch.h>

#include <arpa/inet.h>
#include <malloc.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

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
#include "kiln/nn/dropout.h"
#include "kiln/nn/sparse_embed.h"

namespace kiln::train {
namespace {

using Clock = std::chrono::steady_clock;

double resident_bytes() {
  std::ifstream in("/proc/self/status");
  std::string key;
  while (in >> key) {
    if (key == "VmRSS:") {
      double kb = 0;
      in >> kb;
      return kb * 1024.0;
    }
    in.ignore(1 << 20, '\n');
  }
  return 0;
}

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
    need(4);
    // The bag models' first layer as they run it (nn::embed_sparse: weighted sum, row-sparse gradient).
    auto bag = torch::nn::EmbeddingBag(torch::nn::EmbeddingBagOptions(d[0], d[1]).mode(torch::kSum));
    r.leaves.push_back(bag->weight);
    nn::SparseBatch batch;
    batch.indices = torch::randint(0, d[0], {d[2] * d[3]}, torch::kInt64);
    batch.offsets = torch::arange(0, d[2] * d[3], d[3], torch::kInt64);
    batch.weights = torch::rand({d[2] * d[3]});
    r.forward = [bag, batch]() mutable { return nn::embed_sparse(bag, batch, nn::Pooling::kSum); };
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

/// Calls `r` until at least kMinReps timed calls and 40 ms have passed (at most kMaxReps): the
/// seconds of each forward and backward (or update) after the first call, which pays first touch.
void time_calls(Runnable& r, bool backward, std::vector<double>& f, std::vector<double>& b) {
  constexpr double kMinSeconds = 0.04;
  constexpr int kMinReps = 2, kMaxReps = 40;
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

/// Bytes a second one TCP connection on 127.0.0.1 carries from one thread to another (Gloo's
/// transport between ranks on one machine), sending `bytes` in 1 MiB writes; 0 when a socket call fails.
double loopback_bytes_per_s(int64_t bytes) {
  const int listener = ::socket(AF_INET, SOCK_STREAM, 0);
  if (listener < 0) return 0;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(listener, 1) != 0 ||
      ::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    ::close(listener);
    return 0;
  }
  int64_t received = 0;
  std::thread reader([&] {
    const int c = ::accept(listener, nullptr, nullptr);
    if (c < 0) return;
    std::vector<char> buf(1 << 20);
    for (ssize_t n; received < bytes && (n = ::read(c, buf.data(), buf.size())) > 0;) received += n;
    ::close(c);
  });
  const int out = ::socket(AF_INET, SOCK_STREAM, 0);
  const auto t0 = Clock::now();
  bool ok = out >= 0 && ::connect(out, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  std::vector<char> chunk(1 << 20, 1);
  for (int64_t sent = 0; ok && sent < bytes;) {
    const ssize_t n = ::write(out, chunk.data(), static_cast<std::size_t>(std::min<int64_t>(bytes - sent, 1 << 20)));
    ok = n > 0;
    sent += n;
  }
  if (out >= 0) ::close(out);
  if (!ok) ::shutdown(listener, SHUT_RDWR);
  reader.join();
  const double s = seconds(t0, Clock::now());
  ::close(listener);
  return ok && received == bytes && s > 0 ? static_cast<double>(bytes) / s : 0;
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
  std::vector<double> fwd, bwd, saved;
  int index = 0;
  for (const auto& k : request.at("kernels")) {
    const std::string where = "kernel " + std::to_string(index++);
    std::string op;
    std::vector<int64_t> dims;
    bool backward = true, input_grad = true;
    try {
      op = k.at("op").get<std::string>();
      dims = k.at("dims").get<std::vector<int64_t>>();
      backward = k.value("backward", true);
      input_grad = k.value("input_grad", true);
    } catch (const nlohmann::json::exception&) {
      throw ConfigError("plan probe: " + where + " is not {\"op\": ..., \"dims\": [...]}");
    }
    // One copy per rank, run at once: ranks on one machine share its cores, caches and memory
    // bandwidth, and a rank's op is as fast as it is next to the others'.
    std::vector<Runnable> copies;
    for (int k2 = 0; k2 < ranks; ++k2) copies.push_back(prepare(op, dims, input_grad, where));
    std::vector<std::vector<double>> f(static_cast<std::size_t>(ranks)), b(static_cast<std::size_t>(ranks));
    if (ranks == 1) {
      time_calls(copies[0], backward, f[0], b[0]);
    } else {
      std::vector<std::thread> pool;
      std::vector<std::exception_ptr> errors(static_cast<std::size_t>(ranks));
      for (int k2 = 0; k2 < ranks; ++k2) {
        const auto i = static_cast<std::size_t>(k2);
        pool.emplace_back([&, i] {
          try {
            time_calls(copies[i], backward, f[i], b[i]);
          } catch (...) {
            errors[i] = std::current_exception();
          }
        });
      }
      for (auto& t : pool) t.join();
      for (auto& e : errors) {
        if (e) std::rethrow_exception(e);
      }
    }
    double fs = 0, bs = 0;
    for (int k2 = 0; k2 < ranks; ++k2) {
      fs += median(f[static_cast<std::size_t>(k2)]);
      bs += median(b[static_cast<std::size_t>(k2)]);
    }
    Runnable& r = copies[0];
    fwd.push_back(fs / ranks);
    bwd.push_back(backward && !r.update ? bs / ranks : 0.0);
    double kept = 0;
    if (r.forward && backward) {
      // What the forward pass leaves allocated until backward: its output and what autograd saved
      // beyond the inputs (dropout's noise, LayerNorm's statistics, a softmax's result).
      const double before = allocated_bytes();
      torch::Tensor out = r.forward();
      kept = std::max(0.0, allocated_bytes() - before);
    }
    saved.push_back(kept);
  }
  // Thread pools, BLAS buffers and the code the ops paged in stay after their tensors are freed.
  const double runtime = std::max(runtime_start, resident_bytes());
  const int64_t link_bytes = request.value("link_bytes", int64_t{0});
  nlohmann::json answer = {{"forward_s", fwd},
          {"backward_s", bwd},
          {"saved_bytes", saved},
          {"runtime_bytes", runtime},
          {"threads", threads},
          {"ranks", ranks},
          {"source", "median of timed calls at " + std::to_string(threads) + " thread(s)" +
                         (ranks > 1 ? ", " + std::to_string(ranks) + " copies at once (one per rank)" : "")}};
  if (link_bytes > 0) answer["loopback_bytes_per_s"] = loopback_bytes_per_s(link_bytes);
  return answer;
}

}  // namespace kiln::train
