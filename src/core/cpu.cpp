#include "kiln/core/cpu.h"

#include <dlfcn.h>
#include <link.h>
#include <sched.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#define KILN_X86 1
#endif

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <mutex>
#include <sstream>

namespace kiln::core {
namespace {

#ifdef KILN_X86
struct Regs {
  unsigned a = 0, b = 0, c = 0, d = 0;
};

Regs cpuid(unsigned leaf, unsigned sub = 0) {
  Regs r;
  __cpuid_count(leaf, sub, r.a, r.b, r.c, r.d);
  return r;
}

unsigned long long xgetbv0() {
  unsigned lo = 0, hi = 0;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (static_cast<unsigned long long>(hi) << 32) | lo;
}

bool bit(unsigned v, int i) { return (v >> i) & 1u; }
#endif

double read_mhz(const std::string& brand) {
  {
    std::ifstream f("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq");
    double khz = 0;
    if (f >> khz && khz > 0) return khz / 1000.0;
  }
  {
    const auto at = brand.find('@');
    if (at != std::string::npos) {
      double ghz = std::atof(brand.c_str() + at + 1);
      if (ghz > 0 && brand.find("GHz", at) != std::string::npos) return ghz * 1000.0;
    }
  }
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("cpu MHz", 0) == 0) {
      const auto colon = line.find(':');
      if (colon != std::string::npos) return std::atof(line.c_str() + colon + 1);
    }
  }
  return 0;
}

CpuInfo detect() {
  CpuInfo c;
  cpu_set_t set;
  CPU_ZERO(&set);
  c.logical_cores = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : 1;
#ifdef KILN_X86
  const Regs v = cpuid(0);
  char vendor[13] = {};
  std::memcpy(vendor, &v.b, 4);
  std::memcpy(vendor + 4, &v.d, 4);
  std::memcpy(vendor + 8, &v.c, 4);
  c.vendor = vendor;
  const unsigned max_leaf = v.a;
  const Regs l1 = cpuid(1);
  const unsigned base_family = (l1.a >> 8) & 0xf, base_model = (l1.a >> 4) & 0xf;
  c.family = static_cast<int>(base_family == 0xf ? base_family + ((l1.a >> 20) & 0xff) : base_family);
  c.model = static_cast<int>(base_family == 0x6 || base_family == 0xf ? base_model + (((l1.a >> 16) & 0xf) << 4)
                                                                      : base_model);
  c.sse42 = bit(l1.c, 20);
  c.fma = bit(l1.c, 12);
  c.avx = bit(l1.c, 28);
  c.f16c = bit(l1.c, 29);
  if (bit(l1.c, 27)) {  // OSXSAVE: XCR0 tells which register state the OS saves
    const auto xcr0 = xgetbv0();
    c.os_avx = (xcr0 & 0x6) == 0x6;
    c.os_avx512 = c.os_avx && (xcr0 & 0xe0) == 0xe0;
    c.os_amx = (xcr0 & 0x60000) == 0x60000;
  }
  if (max_leaf >= 7) {
    const Regs l7 = cpuid(7, 0);
    c.avx2 = bit(l7.b, 5);
    c.avx512f = bit(l7.b, 16);
    c.avx512dq = bit(l7.b, 17);
    c.avx512bw = bit(l7.b, 30);
    c.avx512vl = bit(l7.b, 31);
    c.avx512_vnni = bit(l7.c, 11);
    c.amx_bf16 = bit(l7.d, 22);
    c.avx512_fp16 = bit(l7.d, 23);
    c.amx_tile = bit(l7.d, 24);
    c.amx_int8 = bit(l7.d, 25);
    if (l7.a >= 1) {
      const Regs l71 = cpuid(7, 1);
      c.avx_vnni = bit(l71.a, 4);
      c.avx512_bf16 = bit(l71.a, 5);
    }
  }
  if (cpuid(0x80000000).a >= 0x80000004) {
    char brand[49] = {};
    for (unsigned i = 0; i < 3; ++i) {
      const Regs r = cpuid(0x80000002 + i);
      std::memcpy(brand + 16 * i, &r.a, 4);
      std::memcpy(brand + 16 * i + 4, &r.b, 4);
      std::memcpy(brand + 16 * i + 8, &r.c, 4);
      std::memcpy(brand + 16 * i + 12, &r.d, 4);
    }
    std::string b(brand);
    const auto first = b.find_first_not_of(' ');
    c.model_name = first == std::string::npos ? "" : b.substr(first);
  }
  if (!c.os_avx) c.avx = c.avx2 = c.fma = c.f16c = c.avx_vnni = false;
  if (!c.os_avx512) {
    c.avx512f = c.avx512dq = c.avx512bw = c.avx512vl = c.avx512_vnni = c.avx512_bf16 = c.avx512_fp16 = false;
  }
  if (!c.os_amx) c.amx_tile = c.amx_int8 = c.amx_bf16 = false;
#endif
  c.mhz = read_mhz(c.model_name);
  return c;
}

/// Each shared object loaded in this process (its path).
std::vector<std::string> loaded_objects() {
  std::vector<std::string> out;
  dl_iterate_phdr(
      [](dl_phdr_info* info, std::size_t, void* data) {
        if (info->dlpi_name && *info->dlpi_name) static_cast<std::vector<std::string>*>(data)->push_back(info->dlpi_name);
        return 0;
      },
      &out);
  return out;
}

bool contains(const std::string& s, const char* part) { return s.find(part) != std::string::npos; }

bool is_loaded(const char* part) {
  for (const auto& o : loaded_objects()) {
    if (contains(o, part)) return true;
  }
  return false;
}

std::string real_path(const std::string& p) {
  char buf[4096];
  return realpath(p.c_str(), buf) ? std::string(buf) : p;
}

std::string vendor_of(const std::string& path) {
  if (contains(path, "openblas")) return "OpenBLAS";
  if (contains(path, "blis")) return "BLIS";
  if (contains(path, "mkl")) return "MKL";
  if (contains(path, "blas/libblas") || contains(path, "libblas.so.3.")) return "reference";
  return "unknown";
}

ProcessTuning g_tuning;
const char* const kTunedVariables[] = {"OPENBLAS_CORETYPE", "OMP_WAIT_POLICY"};
std::mutex g_tuning_mu;

}  // namespace

std::vector<std::string> CpuInfo::features() const {
  std::vector<std::string> f;
  auto add = [&](bool on, const char* name) {
    if (on) f.emplace_back(name);
  };
  add(sse42, "sse4_2");
  add(avx, "avx");
  add(f16c, "f16c");
  add(fma, "fma");
  add(avx2, "avx2");
  add(avx_vnni, "avx_vnni");
  add(avx512f, "avx512f");
  add(avx512dq, "avx512dq");
  add(avx512bw, "avx512bw");
  add(avx512vl, "avx512vl");
  add(avx512_vnni, "avx512_vnni");
  add(avx512_bf16, "avx512_bf16");
  add(avx512_fp16, "avx512_fp16");
  add(amx_tile, "amx_tile");
  add(amx_int8, "amx_int8");
  add(amx_bf16, "amx_bf16");
  return f;
}

int CpuInfo::fp32_flops_per_cycle() const {
  if (avx512f && os_avx512) return 16 * 2 * 2;
  if (avx2 && fma && os_avx) return 8 * 2 * 2;
  if (avx && os_avx) return 8 * 2;  // separate add and multiply ports
  return 4 * 2;
}

int CpuInfo::int8_ops_per_cycle() const {
  // AMX: TDPBUSD multiplies 16x64 by 64x16 int8 tiles, 1024 multiply-adds per cycle per core.
  if (amx_int8) return 1024 * 2;
  // vpdpbusd: 4 u8 x s8 products summed into each 32-bit lane per instruction, two ports.
  if (avx512_vnni) return 64 * 2 * 2;
  if (avx_vnni) return 32 * 2 * 2;
  // Without VNNI: vpmaddubsw + vpmaddwd (+ vpaddd on another port) for the same products: two
  // instructions on the two multiply ports, half the rate. (A third assumed all three on those
  // ports; an AVX2 EPYC ran 181 GOP/s on one core at 3.1-3.5 GHz, 52-58 ops a cycle, above it.)
  if (avx512bw && os_avx512) return 64 * 2 * 2 / 2;
  if (avx2) return 32 * 2 * 2 / 2;
  return 16 * 2 * 2 / 2;
}

double measure_core_mhz() {
#ifdef KILN_X86
  using Clock = std::chrono::steady_clock;
  constexpr std::uint64_t kIterations = 1 << 17;  // 8 dependent adds each: about 1M cycles
  double best = 0;
  for (int run = 0; run < 20; ++run) {
    std::uint64_t x = 0, n = kIterations;
    const auto t0 = Clock::now();
    // The adds form one dependency chain (1 cycle each); dec/jnz run beside it.
    asm volatile(
        "1:\n\t"
        "add $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\t"
        "add $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\t"
        "dec %1\n\t"
        "jnz 1b\n\t"
        : "+r"(x), "+r"(n)
        :
        : "cc");
    const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    if (seconds > 0) best = std::max(best, static_cast<double>(kIterations * 8) / seconds / 1e6);
  }
  return best;
#else
  return 0;
#endif
}

const CpuInfo& cpu_info() {
  static const CpuInfo info = detect();
  return info;
}

BlasCoreLevel blas_core_level(const std::string& core) {
  static const std::pair<const char*, BlasCoreLevel> kLevels[] = {
      {"Cooperlake", BlasCoreLevel::kAvx512Bf16}, {"SapphireRapids", BlasCoreLevel::kAvx512Bf16},
      {"SkylakeX", BlasCoreLevel::kAvx512},       {"Haswell", BlasCoreLevel::kAvx2},
      {"Zen", BlasCoreLevel::kAvx2},              {"Sandybridge", BlasCoreLevel::kAvx},
      {"Excavator", BlasCoreLevel::kAvx2},        {"Steamroller", BlasCoreLevel::kAvx},
      {"Piledriver", BlasCoreLevel::kAvx},        {"Bulldozer", BlasCoreLevel::kAvx},
      {"Prescott", BlasCoreLevel::kSse},          {"Core2", BlasCoreLevel::kSse},
      {"Penryn", BlasCoreLevel::kSse},            {"Dunnington", BlasCoreLevel::kSse},
      {"Nehalem", BlasCoreLevel::kSse},           {"Atom", BlasCoreLevel::kSse},
      {"Barcelona", BlasCoreLevel::kSse},         {"Opteron", BlasCoreLevel::kSse},
      {"Opteron_SSE3", BlasCoreLevel::kSse},      {"Katmai", BlasCoreLevel::kSse},
      {"Coppermine", BlasCoreLevel::kSse},        {"Northwood", BlasCoreLevel::kSse},
      {"Banias", BlasCoreLevel::kSse},            {"Athlon", BlasCoreLevel::kSse},
      {"Bobcat", BlasCoreLevel::kSse},            {"Nano", BlasCoreLevel::kSse},
  };
  for (const auto& [name, level] : kLevels) {
    if (strcasecmp(core.c_str(), name) == 0) return level;
  }
  return BlasCoreLevel::kUnknown;
}

std::string best_openblas_core(const CpuInfo& cpu) {
  // Cooperlake = SkylakeX kernels plus bf16 GEMM (sbgemm); same fp32 speed. Both need F+DQ+BW+VL.
  if (cpu.has_avx512_core()) return cpu.avx512_bf16 ? "Cooperlake" : "SkylakeX";
  // AMD Zen (family 17h and later) without AVX-512: OpenBLAS's "Zen" core, its Haswell kernels with
  // Zen's blocking sizes, which it picks there itself.
  if (cpu.has_avx2_fma()) return cpu.vendor == "AuthenticAMD" && cpu.family >= 0x17 ? "Zen" : "Haswell";
  if (cpu.avx && cpu.os_avx) return "Sandybridge";
  return "";
}

namespace {
BlasCoreLevel level_of_best(const CpuInfo& cpu) { return blas_core_level(best_openblas_core(cpu)); }
}  // namespace

BlasInfo blas_info() {
  BlasInfo b;
  using NameFn = char* (*)();
  void* handle = nullptr;
  for (const auto& o : loaded_objects()) {
    if (contains(o, "libblas.so") || contains(o, "libopenblas") || contains(o, "libblis") || contains(o, "mkl_rt")) {
      b.library = real_path(o);
      break;
    }
  }
  void* scope = RTLD_DEFAULT;
  if (b.library.empty()) {
    handle = dlopen("libblas.so.3", RTLD_LAZY | RTLD_LOCAL);
    if (!handle) return b;
    scope = handle;
    link_map* map = nullptr;
    if (dlinfo(handle, RTLD_DI_LINKMAP, &map) == 0 && map && map->l_name) b.library = real_path(map->l_name);
  }
  b.vendor = vendor_of(b.library);
  if (auto* core = reinterpret_cast<NameFn>(dlsym(scope, "openblas_get_corename"))) {
    b.vendor = "OpenBLAS";
    b.core = core();
    if (auto* config = reinterpret_cast<NameFn>(dlsym(scope, "openblas_get_config"))) b.config = config();
  }
  if (handle) dlclose(handle);
  return b;
}

bool set_blas_threads(int n) {
  using SetFn = void (*)(int);
  for (const char* name : {"openblas_set_num_threads", "bli_thread_set_num_threads"}) {
    if (auto* f = reinterpret_cast<SetFn>(dlsym(RTLD_DEFAULT, name))) {
      f(n);
      return true;
    }
  }
  return false;
}

bool set_openmp_threads(int n) {
  using SetFn = void (*)(int);
  if (auto* f = reinterpret_cast<SetFn>(dlsym(RTLD_DEFAULT, "omp_set_num_threads"))) {
    f(n);
    return true;
  }
  return false;
}

ProcessTuning prepare_process(char** argv) {
  std::lock_guard<std::mutex> lock(g_tuning_mu);
  ProcessTuning t;
  const char* off = std::getenv("KILN_NO_TUNE_ENV");
  if (off && *off && std::strcmp(off, "0") != 0) return g_tuning = t;
  const std::string me = std::to_string(getpid());
  if (const char* prepared = std::getenv("KILN_ENV_PREPARED")) {
    // Set by this process before it re-executed itself, or inherited from a Kiln parent that prepared it;
    // KILN_ENV_SET lists what Kiln chose, the rest the user did.
    t.reexecuted = me == prepared;
    const std::string chosen = std::getenv("KILN_ENV_SET") ? std::getenv("KILN_ENV_SET") : "";
    for (const char* name : kTunedVariables) {
      const char* v = std::getenv(name);
      if (!v) continue;
      const std::string entry = std::string(name) + "=" + v;
      (("," + chosen + ",").find("," + entry + ",") != std::string::npos ? t.set : t.kept).push_back(entry);
    }
    return g_tuning = t;
  }
  bool reexec = false;
  auto want = [&](const char* name, const std::string& value, bool loaded) {
    if (const char* user = std::getenv(name)) {
      t.kept.push_back(std::string(name) + "=" + user);
      return;
    }
    setenv(name, value.c_str(), 1);
    t.set.push_back(std::string(name) + "=" + value);
    reexec = reexec || loaded;
  };
  const CpuInfo& cpu = cpu_info();
  const BlasInfo blas = blas_info();
  if (blas.vendor == "OpenBLAS") {
    const auto chosen = blas_core_level(blas.core);
    const auto best = level_of_best(cpu);
    if (chosen != BlasCoreLevel::kUnknown && best > chosen) {
      want("OPENBLAS_CORETYPE", best_openblas_core(cpu), is_loaded("openblas") || is_loaded("libblas.so"));
    }
  }
  // LibTorch's OpenMP threads otherwise spin between ops and take the cores OpenBLAS's threads (and
  // the server's) need; measured in docs/performance.md.
  want("OMP_WAIT_POLICY", "PASSIVE", is_loaded("libgomp"));
  std::string chosen;
  for (const auto& e : t.set) chosen += (chosen.empty() ? "" : ",") + e;
  setenv("KILN_ENV_SET", chosen.c_str(), 1);
  // The pid marks a re-execution of this very process; "1" a process (or launcher) that prepared the
  // environment before the libraries loaded, for itself and what it starts.
  const bool restart = reexec && argv && argv[0];
  setenv("KILN_ENV_PREPARED", restart ? me.c_str() : "1", 1);
  if (restart) {
    execv("/proc/self/exe", argv);
    // exec failed: go on with what was loaded, the values stay for children.
    std::fprintf(stderr, "kiln: warning: could not restart with %s (%s); continuing with the defaults\n",
                 t.set.empty() ? "" : t.set.front().c_str(), std::strerror(errno));
  }
  return g_tuning = t;
}

const ProcessTuning& process_tuning() { return g_tuning; }

}  // namespace kiln::core
