// DataParallel on LibTorch's c10d: TCPStore rendezvous, ProcessGroupGloo collectives, a gradient
// reducer in the manner of DDP's (buckets started from autograd hooks, in a fixed order on every
// rank), and failure attribution through per-rank heartbeats in the store. Compiled with
// -DUSE_C10D_GLOO; the only file that includes c10d's headers (see data_parallel.h).
#include "kiln/train/data_parallel.h"

#include <torch/csrc/distributed/c10d/HashStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstring>
#include <cerrno>
#include <condition_variable>
#include <exception>
#include <future>
#include <iterator>
#include <mutex>
#include <system_error>
#include <thread>

#include "kiln/core/error.h"
#include "kiln/core/subprocess.h"

namespace kiln::train {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr int kHeartbeatMs = 500;
constexpr int64_t kInitialIdCapacity = 1024;    // row ids a rank sends per table before a step needs more
constexpr int64_t kRideAlongBytes = 256 << 10;  // a dense bucket this small rides in a row-sparse one's all-reduce
constexpr const char* kHeartbeatKey = "kiln/heartbeat/";
constexpr const char* kFailedKey = "kiln/failed/";

milliseconds to_ms(double seconds) { return milliseconds(static_cast<int64_t>(std::ceil(seconds * 1000.0))); }

std::string address(const DistOptions& o) { return o.master_addr + ":" + std::to_string(o.master_port); }

std::string what_of(const std::exception& e) {
  const auto* c = dynamic_cast<const c10::Error*>(&e);
  std::string m = c ? c->what_without_backtrace() : e.what();
  while (!m.empty() && (m.back() == '.' || m.back() == ' ' || m.back() == '\n')) m.pop_back();
  return m;
}

// This host's address on the route to `host` (a UDP socket "connected" there sends nothing), or ""
// when `host` does not resolve or has no route.
std::string local_address_towards(const std::string& host, int port) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_DGRAM;
  addrinfo* found = nullptr;
  if (::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &found) != 0 || !found) return "";
  std::string out;
  const int fd = ::socket(found->ai_family, SOCK_DGRAM, 0);
  if (fd >= 0 && ::connect(fd, found->ai_addr, found->ai_addrlen) == 0) {
    sockaddr_storage local{};
    socklen_t len = sizeof local;
    char text[INET6_ADDRSTRLEN] = {0};
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &len) == 0) {
      const void* addr = local.ss_family == AF_INET ? static_cast<const void*>(&reinterpret_cast<sockaddr_in*>(&local)->sin_addr)
                                                   : static_cast<const void*>(&reinterpret_cast<sockaddr_in6*>(&local)->sin6_addr);
      if (::inet_ntop(local.ss_family, addr, text, sizeof text)) out = text;
    }
  }
  if (fd >= 0) ::close(fd);
  ::freeaddrinfo(found);
  return out;
}

// Gloo's transport device: the interface asked for (GLOO_SOCKET_IFNAME), else this host's address
// on the route to master_addr (loopback for a local job, so one machine needs no resolvable
// hostname), else the address the hostname resolves to.
std::shared_ptr<::gloo::transport::Device> make_device(const DistOptions& o) {
  if (!o.interface.empty()) return c10d::ProcessGroupGloo::createDeviceForInterface(o.interface);
  if (o.master_addr == "localhost" || o.master_addr.rfind("127.", 0) == 0) {
    return c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1");
  }
  const std::string local = local_address_towards(o.master_addr, o.master_port);
  if (!local.empty()) return c10d::ProcessGroupGloo::createDeviceForHostname(local);
  return c10d::ProcessGroupGloo::createDefaultDevice();
}

// What the terminate handler reports (install_store_reset_handler): set before the first collective.
std::mutex g_reset_mutex;
DistOptions g_reset_options;
std::terminate_handler g_previous_terminate = nullptr;

[[noreturn]] void on_store_reset() {
  if (const auto current = std::current_exception()) {
    try {
      std::rethrow_exception(current);
    } catch (const std::system_error& e) {
      const int code = e.code().value();
      if (e.code().category() == std::system_category() &&
          (code == ECONNRESET || code == EPIPE || code == ECONNABORTED)) {
        const DistOptions o = [] {
          std::lock_guard<std::mutex> lock(g_reset_mutex);
          return g_reset_options;
        }();
        const std::string who = o.rank == 0 ? "a rank connected to this rank's store reset the connection (killed or crashed)"
                                            : "rank 0 (it serves the rendezvous store at " + address(o) +
                                                  ") is gone (killed or crashed): it reset the connection";
        const std::string message = "kiln: error: data-parallel rank " + std::to_string(o.rank) + " of " +
                                    std::to_string(o.world_size) + ": the rendezvous store's connection failed: " + who +
                                    " (LibTorch's store listener: " + e.what() +
                                    "); the run stops here; restart it with --resume to continue from the last checkpoint\n";
        (void)!::write(STDERR_FILENO, message.data(), message.size());
        std::_Exit(1);
      }
    } catch (...) {
    }
  }
  if (g_previous_terminate) g_previous_terminate();
  std::abort();
}

class GlooDataParallel final : public DataParallel {
 public:
  explicit GlooDataParallel(const DistOptions& o) : options_(o) {
    c10d::TCPStoreOptions so;
    so.port = static_cast<std::uint16_t>(o.master_port);
    so.isServer = o.rank == 0;
    so.numWorkers = static_cast<std::size_t>(o.world_size);
    so.waitWorkers = true;
    so.timeout = to_ms(o.timeout_s);
    try {
      store_ = c10::make_intrusive<c10d::TCPStore>(o.master_addr, so);
    } catch (const std::exception& e) {
      throw Error("data-parallel rank " + std::to_string(o.rank) + ": rendezvous at " + address(o) + " failed: " +
                  what_of(e) +
                  (o.rank == 0 ? "; is the port in use? pick another with --master-port (or MASTER_PORT)"
                               : "; check that rank 0 runs and that MASTER_ADDR/--master-addr and the port are reachable "
                                 "from this host (within --dist-timeout seconds)"));
    }
    auto pg_options = c10d::ProcessGroupGloo::Options::create(to_ms(o.timeout_s));
    try {
      pg_options->devices.push_back(make_device(o));
      pg_ = c10::make_intrusive<c10d::ProcessGroupGloo>(store_, o.rank, o.world_size, pg_options);
    } catch (const std::exception& e) {
      throw Error("data-parallel rank " + std::to_string(o.rank) + ": connecting the Gloo process group (" +
                  std::to_string(o.world_size) + " ranks, store " + address(o) + ") failed: " + what_of(e) +
                  "; check that every rank started and that this host's address is reachable from the others "
                  "(GLOO_SOCKET_IFNAME picks the interface)");
    }
    install_store_reset_handler(o);
    heartbeat_ = std::thread([o, b = beat_] { beat(o, *b); });
  }

  ~GlooDataParallel() override {
    {
      std::lock_guard<std::mutex> lock(beat_->mutex);
      beat_->stop = true;
    }
    beat_->cv.notify_all();
    if (failed_) {
      // Collectives already queued would each wait for the dead or hung rank up to the timeout in
      // the process group's destructor: leave them to the exiting process instead.
      (void)pg_.release();
      (void)store_.release();
      heartbeat_.detach();
      return;
    }
    if (heartbeat_.joinable()) heartbeat_.join();
  }

  int rank() const override { return options_.rank; }
  int world_size() const override { return options_.world_size; }

  void broadcast(const std::vector<torch::Tensor>& tensors) override {
    torch::NoGradGuard no_grad;
    for (const auto& t : tensors) {
      std::vector<torch::Tensor> one{t.is_contiguous() ? t.detach() : t.detach().contiguous()};
      run("broadcasting the initial weights", [&] { return pg_->broadcast(one); });
      if (!t.is_contiguous()) t.detach().copy_(one[0]);
    }
  }

  void attach(const std::vector<torch::Tensor>& params, const std::vector<bool>& sparse) override {
    if (!params_.empty()) throw Error("DataParallel::attach called twice without detach");
    if (params.size() != sparse.size()) throw Error("DataParallel::attach: params and sparse flags differ in length");
    params_ = params;
    sparse_ = sparse;
    bucket_of_.assign(params.size(), 0);
    offset_.assign(params.size(), 0);
    flag_index_.assign(params.size(), 0);
    sparse_present_.assign(params.size(), false);
    sparse_grad_.assign(params.size(), torch::Tensor());
    union_rows_.assign(params.size(), torch::Tensor());
    union_block_.assign(params.size(), torch::Tensor());
    // Buckets in reverse registration order, the order backward roughly produces gradients in.
    Bucket* open = nullptr;
    for (std::size_t k = params.size(); k-- > 0;) {
      const auto& p = params[k];
      if (sparse[k]) {
        buckets_.push_back(Bucket{});
        buckets_.back().params.push_back(k);
        buckets_.back().sparse = true;
        bucket_of_[k] = buckets_.size() - 1;
        open = nullptr;
        continue;
      }
      if (!open || open->dtype != p.scalar_type() || open->numel * p.element_size() >= options_.bucket_bytes) {
        buckets_.push_back(Bucket{});
        open = &buckets_.back();
        open->dtype = p.scalar_type();
      }
      offset_[k] = open->numel;
      open->numel += p.numel();
      flag_index_[k] = static_cast<int64_t>(open->params.size());
      open->params.push_back(k);
      bucket_of_[k] = buckets_.size() - 1;
    }
    // A dense bucket carries, after its gradients, one flag per parameter: 1 where this rank's
    // backward produced its gradient, so the sum says whether any rank did.
    for (auto& b : buckets_) {
      if (!b.sparse) b.flat = torch::zeros({b.numel + static_cast<int64_t>(b.params.size())}, torch::TensorOptions().dtype(b.dtype));
    }
    id_capacity_.assign(params.size(), kInitialIdCapacity);
    pair_riders();
    // The step totals (weight, weighted loss, examples): one small reduction per step.
    totals_ = torch::zeros({3}, torch::kFloat64);
    for (std::size_t k = 0; k < params.size(); ++k) {
      auto p = params[k];
      hooks_.push_back(p.register_hook([this, k](torch::Tensor grad) { on_gradient(k, grad); }));
    }
    reset_step();
  }

  void detach() override {
    for (std::size_t k = 0; k < hooks_.size(); ++k) params_[k].remove_hook(hooks_[k]);
    hooks_.clear();
    params_.clear();
    buckets_.clear();
    sparse_grad_.clear();
    union_rows_.clear();
    union_block_.clear();
  }

  void begin_step(double local_weight, double local_loss, int64_t local_examples) override {
    if (params_.empty()) throw Error("DataParallel::begin_step before attach");
    if (totals_work_) throw Error("DataParallel::begin_step twice in one step");
    auto* t = totals_.data_ptr<double>();
    t[0] = local_weight;
    t[1] = std::isfinite(local_loss) ? local_weight * local_loss : std::numeric_limits<double>::quiet_NaN();
    t[2] = static_cast<double>(local_examples);
    std::vector<torch::Tensor> totals{totals_};
    totals_work_ = start("reducing the step's loss", [&] { return pg_->allreduce(totals); });
  }

  StepTotals reduce_gradients(double local_weight, double local_loss, int64_t local_examples) override {
    if (params_.empty()) throw Error("DataParallel::reduce_gradients before attach");
    const auto t0 = Clock::now();
    // The totals go first on every rank: begin_step sent them before backward; a rank that skipped
    // it (no examples here, or a caller without it) sends them now, before any bucket.
    if (!totals_work_) begin_step(local_weight, local_loss, local_examples);
    // Buckets backward did not complete (no examples here, a skipped backward, unused parameters)
    // go out now, in the same order as on every other rank.
    for (auto& b : buckets_) b.pending = 0;
    launch_ready();
    for (auto& b : buckets_) finish(b.work, "all-reducing gradients");
    finish(totals_work_, "reducing the step's loss");
    for (std::size_t s = 0; s < buckets_.size(); ++s) {
      if (rider_of_[s] < 0) continue;
      const auto& carried = buckets_[s].carried;
      auto& rider = buckets_[static_cast<std::size_t>(rider_of_[s])].flat;
      const std::size_t k = buckets_[s].params.front();
      const int64_t rows = union_block_[k].numel();
      union_block_[k].reshape(-1).copy_(carried.narrow(0, 0, rows));
      rider.copy_(carried.narrow(0, rows, rider.numel()));
    }
    totals_work_.reset();
    comm_seconds_ += std::chrono::duration<double>(Clock::now() - t0).count();
    ++steps_;
    const auto* t = totals_.data_ptr<double>();

    StepTotals out;
    out.weight = t[0];
    out.weighted_loss = t[1];
    out.examples = static_cast<int64_t>(std::llround(t[2]));
    const double scale = out.weight > 0 ? 1.0 / out.weight : 0.0;
    torch::NoGradGuard no_grad;
    for (std::size_t k = 0; k < params_.size(); ++k) {
      auto& g = params_[k].mutable_grad();
      const auto& b = buckets_[bucket_of_[k]];
      if (!present_anywhere(k)) {  // no rank produced a gradient: as a single process, none
        g = torch::Tensor();
        continue;
      }
      if (b.sparse) {
        // The summed rows of the union (sorted, distinct): a coalesced row-sparse gradient.
        const auto& p = params_[k];
        g = torch::sparse_coo_tensor(union_rows_[k].unsqueeze(0), union_block_[k].mul_(scale), p.sizes())
                ._coalesced_(true);
      } else {
        auto view = b.flat.narrow(0, offset_[k], params_[k].numel()).view(params_[k].sizes());
        if (g.defined() && !g.is_sparse() && g.sizes() == params_[k].sizes()) {
          g.copy_(view).mul_(scale);
        } else {
          g = view.mul(scale);
        }
      }
    }
    reset_step();
    return out;
  }

  std::vector<double> all_reduce_sum(std::vector<double> values) override {
    auto t = torch::tensor(values, torch::kFloat64);
    std::vector<torch::Tensor> one{t};
    run("summing values over ranks", [&] { return pg_->allreduce(one); });
    return std::vector<double>(t.data_ptr<double>(), t.data_ptr<double>() + t.numel());
  }

  std::vector<double> broadcast_values(std::vector<double> values) override {
    auto t = torch::tensor(values, torch::kFloat64);
    std::vector<torch::Tensor> one{t};
    run("sharing rank 0's decision", [&] { return pg_->broadcast(one); });
    return std::vector<double>(t.data_ptr<double>(), t.data_ptr<double>() + t.numel());
  }

  void barrier() override {
    run("waiting for every rank", [&] { return pg_->barrier(); });
  }

  void announce_failure(const std::string& message) noexcept override {
    try {
      const std::string m = message.substr(0, 2000);
      store_->set(kFailedKey + std::to_string(options_.rank), std::vector<uint8_t>(m.begin(), m.end()));
    } catch (...) {
    }
  }

  double exposed_comm_seconds() const override { return comm_seconds_; }
  int64_t reduced_steps() const override { return steps_; }

 private:
  struct Bucket {
    std::vector<std::size_t> params;  // indices into params_
    bool sparse = false;
    torch::ScalarType dtype = torch::kFloat32;
    int64_t numel = 0;
    torch::Tensor flat;  // dense buckets: the gradients laid end to end, then one flag per parameter
    torch::Tensor carried;  // row-sparse buckets with a rider: the union's rows, then the rider's flat
    std::size_t pending = 0;
    c10::intrusive_ptr<c10d::Work> work;
  };

  // A dense bucket of at most kRideAlongBytes next to a row-sparse one of the same dtype (a bag
  // model's small head beside its table) adds no collective of its own: it is summed in the
  // table's all-reduce, after the union's rows. One collective less per step, where a collective's
  // latency is most of a small model's step.
  void pair_riders() {
    carrier_of_.assign(buckets_.size(), -1);
    rider_of_.assign(buckets_.size(), -1);
    auto small_dense = [&](std::size_t i, std::size_t s) {
      const auto& b = buckets_[i];
      return !b.sparse && carrier_of_[i] < 0 && b.flat.numel() * b.flat.element_size() <= kRideAlongBytes &&
             params_[buckets_[s].params.front()].scalar_type() == b.dtype;
    };
    for (std::size_t s = 0; s < buckets_.size(); ++s) {
      if (!buckets_[s].sparse) continue;
      for (const std::size_t i : {s + 1, s - 1}) {  // s - 1 wraps for s = 0: out of range
        if (i < buckets_.size() && small_dense(i, s)) {
          carrier_of_[i] = static_cast<int64_t>(s);
          rider_of_[s] = static_cast<int64_t>(i);
          break;
        }
      }
    }
  }

  // Starts row-sparse bucket s's all-reduce, with its rider's values after the rows when it has one.
  void start_carrier(std::size_t s) {
    auto& b = buckets_[s];
    const std::size_t k = b.params.front();
    std::vector<torch::Tensor> one{union_block_[k]};
    if (rider_of_[s] >= 0) {
      b.carried = torch::cat({union_block_[k].reshape(-1), buckets_[static_cast<std::size_t>(rider_of_[s])].flat});
      one = {b.carried};
    }
    b.work = start("all-reducing row-sparse gradients", [&] { return pg_->allreduce(one); });
  }

  // After the step's reductions: whether any rank's backward produced parameter k's gradient.
  bool present_anywhere(std::size_t k) const {
    const auto& b = buckets_[bucket_of_[k]];
    if (b.sparse) return sparse_present_[k];
    return b.flat[b.numel + flag_index_[k]].item<double>() > 0;
  }

  void reset_step() {
    for (auto& b : buckets_) {
      b.pending = b.params.size();
      b.work.reset();
      b.carried = torch::Tensor();
      if (!b.sparse) b.flat.zero_();
    }
    for (auto& g : sparse_grad_) g = torch::Tensor();
    for (auto& g : union_rows_) g = torch::Tensor();
    for (auto& g : union_block_) g = torch::Tensor();
    present_.assign(params_.size(), false);
    sparse_present_.assign(params_.size(), false);
    next_bucket_ = 0;
  }

  // Autograd calls this once per parameter per backward with the summed gradient (the hook runs
  // before AccumulateGrad), on the thread running backward.
  void on_gradient(std::size_t k, const torch::Tensor& grad) {
    auto& b = buckets_[bucket_of_[k]];
    if (present_[k] || b.pending == 0) return;  // already counted this step
    torch::NoGradGuard no_grad;
    present_[k] = true;
    if (b.sparse) {
      // Read only: the reduction sums into a block of its own (start_row_sparse).
      sparse_grad_[k] = grad.is_sparse() ? grad.detach().coalesce() : grad.detach().to_sparse(1).coalesce();
    } else {
      b.flat.narrow(0, offset_[k], grad.numel()).copy_(grad.is_sparse() ? grad.to_dense().reshape(-1) : grad.reshape(-1));
      b.flat[b.numel + flag_index_[k]] = 1;
    }
    if (--b.pending == 0) launch_ready();
  }

  // Starts every bucket that is complete and whose predecessors have started: the same order on
  // every rank, whatever order backward finished them in.
  void launch_ready() {
    while (next_bucket_ < buckets_.size() && buckets_[next_bucket_].pending == 0) {
      auto& b = buckets_[next_bucket_++];
      const std::size_t i = next_bucket_ - 1;
      if (b.sparse) {
        share_rows(i);
        // With its rider after it, the all-reduce waits for the rider's gradients.
        if (rider_of_[i] < 0 || static_cast<std::size_t>(rider_of_[i]) < i) start_carrier(i);
      } else if (carrier_of_[i] >= 0) {
        // A rider: its carrier's all-reduce starts now if the carrier came first, else with it.
        if (static_cast<std::size_t>(carrier_of_[i]) < i) start_carrier(static_cast<std::size_t>(carrier_of_[i]));
      } else {
        std::vector<torch::Tensor> one{b.flat};
        b.work = start("all-reducing gradients", [&] { return pg_->allreduce(one); });
      }
    }
  }

  // A row-sparse gradient, reduced over the union of the rows any rank touched: the ranks share
  // their row ids in one all-gather (each sends its count, whether it has a gradient, and up to
  // id_capacity_ ids padded with -1; a second all-gather carries the rest in the rare step where a
  // rank has more, and the capacity then grows alike on every rank), each lays its rows into a
  // dense block of the union's rows (zeros where it has none), and one dense all-reduce sums the
  // blocks in place. The table is never densified, and the collective is a plain ring all-reduce
  // of |union| x width values, with no per-rank copies of every rank's values to sum afterwards
  // (Gloo's sparse all-reduce gathers them all). This shares the ids and builds the block;
  // start_carrier starts the all-reduce.
  void share_rows(std::size_t bucket) {
    torch::NoGradGuard no_grad;
    const std::size_t k = buckets_[bucket].params.front();
    const auto& p = params_[k];
    const int n = options_.world_size;
    torch::Tensor rows = torch::empty({0}, torch::kInt64), values = torch::empty({0, p.size(1)}, p.options());
    const bool here = sparse_grad_[k].defined();
    if (here) {
      rows = sparse_grad_[k].indices()[0].contiguous();
      values = sparse_grad_[k].values().reshape({-1, p.size(1)});
    }
    auto gather = [&](const torch::Tensor& mine, const char* what) {
      std::vector<std::vector<torch::Tensor>> out(1);
      for (int r = 0; r < n; ++r) out[0].push_back(torch::empty_like(mine));
      std::vector<torch::Tensor> in{mine};
      const auto t0 = Clock::now();
      run(what, [&] { return pg_->allgather(out, in); });
      comm_seconds_ += std::chrono::duration<double>(Clock::now() - t0).count();  // backward waits on it
      return torch::stack(out[0]);
    };
    const int64_t count = rows.size(0), cap = id_capacity_[k];
    torch::Tensor mine = torch::full({2 + cap}, -1, torch::kInt64);
    auto* m = mine.data_ptr<int64_t>();
    m[0] = count;
    m[1] = here ? 1 : 0;
    std::copy_n(rows.data_ptr<int64_t>(), std::min(count, cap), m + 2);
    const torch::Tensor first = gather(mine, "sharing row-sparse gradient rows");  // [n, 2 + cap]
    const int64_t* f = first.data_ptr<int64_t>();  // rank r's at f + r * (2 + cap): count, flag, ids
    int64_t longest = 0;
    sparse_present_[k] = false;
    for (int r = 0; r < n; ++r) {
      longest = std::max(longest, f[r * (2 + cap)]);
      if (f[r * (2 + cap) + 1] != 0) sparse_present_[k] = true;
    }
    torch::Tensor extra;  // [n, longest - cap]: the ids beyond the capacity, in the rare step with some
    if (longest > cap) {
      torch::Tensor rest = torch::full({longest - cap}, -1, torch::kInt64);
      if (count > cap) rest.narrow(0, 0, count - cap).copy_(rows.narrow(0, cap, count - cap));
      extra = gather(rest, "sharing row-sparse gradient rows");
      id_capacity_[k] = longest + longest / 4;  // every rank saw the same counts: the same capacity
    }
    // Each rank's ids are sorted (a coalesced gradient's): merge them into the sorted union, then
    // place this rank's rows in it by one more merge walk.
    std::vector<int64_t> uni, list, merged;
    for (int r = 0; r < n; ++r) {
      const int64_t c = f[r * (2 + cap)];
      const int64_t* ids = f + r * (2 + cap) + 2;
      list.assign(ids, ids + std::min(c, cap));
      if (c > cap) {
        const int64_t* beyond = extra.data_ptr<int64_t>() + r * (longest - cap);
        list.insert(list.end(), beyond, beyond + (c - cap));
      }
      merged.clear();
      std::set_union(uni.begin(), uni.end(), list.begin(), list.end(), std::back_inserter(merged));
      uni.swap(merged);
    }
    const int64_t width = p.size(1), u = static_cast<int64_t>(uni.size());
    torch::Tensor rows_union = torch::from_blob(uni.data(), {u}, torch::kInt64).clone();
    torch::Tensor block = torch::zeros({u, width}, p.options());
    if (count > 0) {
      const torch::Tensor v = values.contiguous();
      AT_DISPATCH_FLOATING_TYPES(block.scalar_type(), "kiln_row_sparse_block", [&] {
        const int64_t* rp = rows.data_ptr<int64_t>();
        const scalar_t* src = v.data_ptr<scalar_t>();
        scalar_t* dst = block.data_ptr<scalar_t>();
        int64_t j = 0;
        for (int64_t i = 0; i < count; ++i) {
          while (uni[static_cast<std::size_t>(j)] < rp[i]) ++j;  // rp[i] is in the union
          std::copy_n(src + i * width, width, dst + j * width);
        }
      });
    }
    union_rows_[k] = rows_union;
    union_block_[k] = block;
    sparse_grad_[k] = torch::Tensor();
  }

  template <typename F>
  c10::intrusive_ptr<c10d::Work> start(const char* what, F&& f) {
    try {
      return f();
    } catch (const std::exception& e) {
      fail(what, e);
    }
  }

  void finish(const c10::intrusive_ptr<c10d::Work>& work, const char* what) {
    if (!work) return;
    try {
      work->wait();
    } catch (const std::exception& e) {
      fail(what, e);
    }
  }

  template <typename F>
  void run(const char* what, F&& f) {
    finish(start(what, std::forward<F>(f)), what);
  }

  // A collective failed (a peer closed its connection, or nothing arrived within the timeout):
  // find out which rank is gone and say so.
  [[noreturn]] void fail(const char* what, const std::exception& e) {
    failed_ = true;
    const std::string cause = what_of(e);
    std::string who = diagnose();
    throw Error("data-parallel rank " + std::to_string(options_.rank) + " of " + std::to_string(options_.world_size) +
                ": " + what + " failed: " + who + " (Gloo: " + cause.substr(0, 300) +
                "); the run stops here; restart it with --resume to continue from the last checkpoint");
  }

  // Reads the other ranks' failure notes and heartbeats through a fresh store connection, in a
  // thread bounded in time (a stopped rank 0 holds the store and would block the read).
  std::string diagnose() {
    auto task = std::make_shared<std::packaged_task<std::string()>>([o = options_]() -> std::string {
      c10d::TCPStoreOptions so;
      so.port = static_cast<std::uint16_t>(o.master_port);
      so.isServer = false;
      so.waitWorkers = false;
      so.timeout = milliseconds(3000);
      auto store = c10::make_intrusive<c10d::TCPStore>(o.master_addr, so);
      for (int r = 0; r < o.world_size; ++r) {
        if (r == o.rank) continue;
        const std::string key = kFailedKey + std::to_string(r);
        if (store->check({key})) {
          const auto v = store->get(key);
          return "rank " + std::to_string(r) + " failed: " + std::string(v.begin(), v.end());
        }
      }
      std::vector<int64_t> before(static_cast<std::size_t>(o.world_size));
      for (int r = 0; r < o.world_size; ++r) before[r] = store->add(kHeartbeatKey + std::to_string(r), 0);
      std::this_thread::sleep_for(milliseconds(4 * kHeartbeatMs + 500));
      std::string stale;
      for (int r = 0; r < o.world_size; ++r) {
        if (r == o.rank) continue;
        if (store->add(kHeartbeatKey + std::to_string(r), 0) == before[r]) {
          stale += (stale.empty() ? "" : ", ") + std::to_string(r);
        }
      }
      if (stale.empty()) return "every other rank is alive, so a rank left the collective early or the network dropped";
      return (stale.find(',') == std::string::npos ? "rank " : "ranks ") + stale +
             " stopped answering (no heartbeat for 2.5 s: killed, crashed or hung)";
    });
    auto result = task->get_future();
    std::thread([task] { (*task)(); }).detach();
    const std::string store_host = "rank 0 (it serves the rendezvous store at " + address(options_) + ")";
    if (result.wait_for(std::chrono::seconds(12)) != std::future_status::ready) {
      return store_host + " stopped answering (hung or unreachable)";
    }
    try {
      return result.get();
    } catch (const std::exception&) {
      return store_host + " is gone (killed or crashed): its store no longer answers";
    }
  }

  // Counts up kiln/heartbeat/<rank> every kHeartbeatMs through its own store connection until the
  // destructor; a failure (rank 0 gone) ends it quietly: the collectives report it.
  struct Beat {
    std::mutex mutex;
    std::condition_variable cv;
    bool stop = false;
  };
  static void beat(const DistOptions& o, Beat& b) {
    try {
      c10d::TCPStoreOptions so;
      so.port = static_cast<std::uint16_t>(o.master_port);
      so.isServer = false;
      so.waitWorkers = false;
      so.timeout = to_ms(o.timeout_s);
      auto store = c10::make_intrusive<c10d::TCPStore>(o.master_addr, so);
      const std::string key = kHeartbeatKey + std::to_string(o.rank);
      std::unique_lock<std::mutex> lock(b.mutex);
      while (!b.stop) {
        lock.unlock();
        (void)store->add(key, 1);
        lock.lock();
        b.cv.wait_for(lock, milliseconds(kHeartbeatMs), [&b] { return b.stop; });
      }
    } catch (...) {
    }
  }

  DistOptions options_;
  c10::intrusive_ptr<c10d::TCPStore> store_;
  c10::intrusive_ptr<c10d::ProcessGroupGloo> pg_;
  std::vector<torch::Tensor> params_;
  std::vector<unsigned> hooks_;
  std::vector<bool> sparse_, present_;
  std::vector<int64_t> flag_index_;     // a dense parameter's flag slot in its bucket, after the gradients
  std::vector<bool> sparse_present_;    // a row-sparse parameter had a gradient on some rank this step
  std::vector<int64_t> id_capacity_;    // row ids each rank sends in the first all-gather of a table
  c10::intrusive_ptr<c10d::Work> totals_work_;
  std::vector<int64_t> carrier_of_, rider_of_;  // per bucket: the row-sparse bucket a small dense one rides with, and back
  std::vector<std::size_t> bucket_of_;
  std::vector<int64_t> offset_;
  std::vector<torch::Tensor> sparse_grad_;                // this rank's row-sparse gradients, until reduced
  std::vector<torch::Tensor> union_rows_, union_block_;   // their reduction: the rows and their sums
  std::vector<Bucket> buckets_;
  std::size_t next_bucket_ = 0;
  torch::Tensor totals_;
  double comm_seconds_ = 0;
  int64_t steps_ = 0;
  std::shared_ptr<Beat> beat_ = std::make_shared<Beat>();
  std::thread heartbeat_;
  bool failed_ = false;
};

}  // namespace

void install_store_reset_handler(const DistOptions& options) {
  std::lock_guard<std::mutex> lock(g_reset_mutex);
  g_reset_options = options;
  const auto previous = std::set_terminate(on_store_reset);
  if (previous != on_store_reset) g_previous_terminate = previous;
}

void validate(const DistOptions& o) {
  auto fail = [](const std::string& field, const std::string& rule, const std::string& got) {
    throw ConfigError("dist." + field + " must be " + rule + ", got " + got);
  };
  if (o.world_size < 1) fail("world_size", ">= 1", std::to_string(o.world_size));
  if (o.rank < 0 || o.rank >= o.world_size) {
    fail("rank", "in [0, world_size = " + std::to_string(o.world_size) + ")", std::to_string(o.rank));
  }
  if (o.master_port < 1 || o.master_port > 65535) fail("master_port", "in [1, 65535]", std::to_string(o.master_port));
  if (o.master_addr.empty()) fail("master_addr", "a host name or address", "''");
  if (!(o.timeout_s > 0) || !std::isfinite(o.timeout_s)) fail("timeout_s", "> 0 seconds", std::to_string(o.timeout_s));
  if (o.bucket_bytes < 1) fail("bucket_bytes", ">= 1", std::to_string(o.bucket_bytes));
}

std::unique_ptr<DataParallel> join_data_parallel(const DistOptions& options) {
  validate(options);
  return std::make_unique<GlooDataParallel>(options);
}

namespace {

std::vector<std::string>& peer_program() {
  static std::vector<std::string> argv;
  return argv;
}

constexpr int kBigReps = 5, kSmallReps = 150;

// The collectives every rank of a timing runs, in the same order; rank 0's clock is read. The big
// all-reduce: the median of kBigReps, each after a barrier. The small one: the mean over kSmallReps
// back to back, as a step's collectives follow each other (the mean, since a collective's cost on
// a busy machine has a long tail that a job pays in full).
AllreduceTiming timed_collectives(const c10::intrusive_ptr<c10d::ProcessGroupGloo>& pg, int64_t elements, int ranks) {
  std::vector<torch::Tensor> big{torch::ones({elements})}, small{torch::ones({8})};
  pg->allreduce(big)->wait();  // connections and first touch
  pg->allreduce(small)->wait();
  std::vector<double> s;
  for (int k = 0; k < kBigReps; ++k) {
    pg->barrier()->wait();
    const auto t0 = Clock::now();
    pg->allreduce(big)->wait();
    s.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
  }
  std::sort(s.begin(), s.end());
  pg->barrier()->wait();
  const auto t0 = Clock::now();
  for (int k = 0; k < kSmallReps; ++k) pg->allreduce(small)->wait();
  const double small_s = std::chrono::duration<double>(Clock::now() - t0).count() / kSmallReps;
  const double n = ranks, big_s = s[s.size() / 2];
  AllreduceTiming t;
  t.bytes_per_s = big_s > 0 ? 2.0 * (n - 1) / n * static_cast<double>(elements * 4) / big_s : 0.0;
  t.latency_s = small_s;
  return t;
}

c10::intrusive_ptr<c10d::ProcessGroupGloo> loopback_group(const c10::intrusive_ptr<c10d::Store>& store, int rank, int ranks) {
  auto options = c10d::ProcessGroupGloo::Options::create(milliseconds(60000));
  options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
  return c10::make_intrusive<c10d::ProcessGroupGloo>(store, rank, ranks, options);
}

int free_loopback_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw IoError("time_allreduce: socket() failed: " + std::string(std::strerror(errno)));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
                  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0;
  ::close(fd);
  if (!ok) throw IoError("time_allreduce: no free port on 127.0.0.1: " + std::string(std::strerror(errno)));
  return ntohs(a.sin_port);
}

c10::intrusive_ptr<c10d::TCPStore> loopback_store(int port, bool server, int ranks) {
  c10d::TCPStoreOptions so;
  so.port = static_cast<std::uint16_t>(port);
  so.isServer = server;
  so.numWorkers = static_cast<std::size_t>(ranks);
  so.waitWorkers = true;  // every side, as in a job: each counts itself in (TCPStore)
  so.timeout = milliseconds(60000);
  return c10::make_intrusive<c10d::TCPStore>("127.0.0.1", so);
}

}  // namespace

void set_collective_peer_program(std::vector<std::string> argv) { peer_program() = std::move(argv); }

void run_collective_peer(int rank, int ranks, int port, int64_t bytes) {
  auto store = loopback_store(port, false, ranks);
  (void)timed_collectives(loopback_group(store, rank, ranks), std::max<int64_t>(1, bytes / 4), ranks);
}

AllreduceTiming time_allreduce(int64_t bytes, int ranks) {
  if (ranks < 2) throw ConfigError("time_allreduce: needs 2 or more ranks, got " + std::to_string(ranks));
  const int64_t elements = std::max<int64_t>(1, bytes / 4);
  auto failed = [](const std::string& why) {
    return Error("measuring Gloo's all-reduce on 127.0.0.1 failed: " + why +
                 "; add --no-measure to plan without timing this machine");
  };
  if (!peer_program().empty()) {
    // Ranks as processes, as a job runs them: this one is rank 0 and serves the store.
    const int port = free_loopback_port();
    std::atomic<bool> cancel{false};
    std::vector<core::SubprocessResult> results(static_cast<std::size_t>(ranks));
    std::vector<std::exception_ptr> spawn_errors(static_cast<std::size_t>(ranks));
    std::vector<std::thread> peers;
    for (int r = 1; r < ranks; ++r) {
      peers.emplace_back([&, r] {
        auto argv = peer_program();
        argv.insert(argv.end(), {"--rank", std::to_string(r), "--ranks", std::to_string(ranks), "--port",
                                 std::to_string(port), "--bytes", std::to_string(bytes)});
        core::SubprocessOptions so;
        so.timeout_s = 120;
        try {
          results[static_cast<std::size_t>(r)] = core::run_subprocess(argv, so, {}, &cancel);
        } catch (...) {
          spawn_errors[static_cast<std::size_t>(r)] = std::current_exception();
        }
      });
    }
    AllreduceTiming t;
    std::string error;
    try {
      auto store = loopback_store(port, true, ranks);
      t = timed_collectives(loopback_group(store, 0, ranks), elements, ranks);
    } catch (const std::exception& e) {
      error = what_of(e);
      cancel = true;
    }
    for (auto& p : peers) p.join();
    for (int r = 1; r < ranks; ++r) {
      const auto& res = results[static_cast<std::size_t>(r)];
      if (spawn_errors[static_cast<std::size_t>(r)]) {
        try {
          std::rethrow_exception(spawn_errors[static_cast<std::size_t>(r)]);
        } catch (const std::exception& e) {
          throw failed("starting rank " + std::to_string(r) + ": " + e.what());
        }
      }
      if (error.empty() && res.exit_code != 0) {
        throw failed("rank " + std::to_string(r) + " exited with " + std::to_string(res.exit_code) + ": " +
                     core::last_lines(res.err_tail, 3));
      }
    }
    if (!error.empty()) throw failed(error);
    return t;
  }
  // No peer program (a library caller, the tests): the ranks as threads of this process.
  auto store = c10::make_intrusive<c10d::HashStore>();
  std::vector<AllreduceTiming> timing(static_cast<std::size_t>(ranks));
  std::vector<std::exception_ptr> errors(static_cast<std::size_t>(ranks));
  std::vector<std::thread> pool;
  for (int r = 0; r < ranks; ++r) {
    pool.emplace_back([&, r] {
      try {
        timing[static_cast<std::size_t>(r)] = timed_collectives(loopback_group(store, r, ranks), elements, ranks);
      } catch (...) {
        errors[static_cast<std::size_t>(r)] = std::current_exception();
      }
    });
  }
  for (auto& t : pool) t.join();
  for (auto& e : errors) {
    if (!e) continue;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& x) {
      throw failed(what_of(x));
    }
  }
  return timing[0];
}

ShardRange shard_of_batch(int64_t count, int rank, int world_size) {
  const int64_t base = count / world_size, extra = count % world_size;
  ShardRange r;
  r.begin = rank * base + std::min<int64_t>(rank, extra);
  r.end = r.begin + base + (rank < extra ? 1 : 0);
  return r;
}

}  // namespace kiln::train
