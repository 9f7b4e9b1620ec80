// Kiln's TPE on standard test functions, in-process (the Kiln half of bench/tune_vs_optuna.sh;
// bench/lib/tune_optuna.py is the Optuna half and defines the same functions and spaces).
//
//   tune_functions quality FUNCTION SEEDS TRIALS   -> one line per seed: "seed best_value"
//   tune_functions overhead N_HISTORY REPEATS      -> "CPU_S WALL_S": seconds per suggestion (Hartmann
//       6-D space), process CPU time and wall clock, of one TpeSampler::sample() call given the history
//       (the same scope as Optuna's sampler calls in tune_optuna.py: the sampler, not the study)
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <limits>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "kiln/tune/random_sampler.h"
#include "kiln/tune/tpe_sampler.h"

using namespace kiln::tune;

namespace {

Distribution num(Distribution::Kind kind, double low, double high, bool log = false) {
  Distribution d;
  d.kind = kind;
  d.low = low;
  d.high = high;
  d.log = log;
  if (kind == Distribution::Kind::kInt) d.step = 1.0;
  return d;
}

using Params = std::map<std::string, double>;

struct Function {
  SearchSpace space;
  double (*f)(const Params&);
};

double branin(const Params& p) {
  const double x1 = p.at("x1"), x2 = p.at("x2");
  const double b = 5.1 / (4 * M_PI * M_PI), c = 5 / M_PI, t = 1 / (8 * M_PI);
  return std::pow(x2 - b * x1 * x1 + c * x1 - 6, 2) + 10 * (1 - t) * std::cos(x1) + 10;
}

double hartmann6(const Params& p) {
  static const double alpha[4] = {1.0, 1.2, 3.0, 3.2};
  static const double A[4][6] = {{10, 3, 17, 3.5, 1.7, 8}, {0.05, 10, 17, 0.1, 8, 14}, {3, 3.5, 1.7, 10, 17, 8}, {17, 8, 0.05, 10, 0.1, 14}};
  static const double P[4][6] = {{0.1312, 0.1696, 0.5569, 0.0124, 0.8283, 0.5886},
                                 {0.2329, 0.4135, 0.8307, 0.3736, 0.1004, 0.9991},
                                 {0.2348, 0.1451, 0.3522, 0.2883, 0.3047, 0.6650},
                                 {0.4047, 0.8828, 0.8732, 0.5743, 0.1091, 0.0381}};
  double s = 0;
  for (int i = 0; i < 4; ++i) {
    double e = 0;
    for (int j = 0; j < 6; ++j) e += A[i][j] * std::pow(p.at("x" + std::to_string(j)) - P[i][j], 2);
    s += alpha[i] * std::exp(-e);
  }
  return -s;
}

double rosenbrock4(const Params& p) {
  double s = 0;
  for (int i = 0; i < 3; ++i) {
    const double a = p.at("x" + std::to_string(i)), b = p.at("x" + std::to_string(i + 1));
    s += 100 * std::pow(b - a * a, 2) + std::pow(1 - a, 2);
  }
  return s;
}

double mixed(const Params& p) {
  static const double offset[4] = {0.5, 0.0, 1.0, 2.0};
  static const double shift[4] = {1.0, -2.0, 0.0, 3.0};
  const auto k = static_cast<int>(p.at("kind"));
  return offset[k] + std::pow(p.at("x") - shift[k], 2) + std::pow(p.at("z") - 0.3, 2) + 0.1 * std::fabs(p.at("n") - 3);
}

Function function_named(const std::string& name) {
  if (name == "branin") return {{{"x1", num(Distribution::Kind::kFloat, -5, 10)}, {"x2", num(Distribution::Kind::kFloat, 0, 15)}}, branin};
  if (name == "hartmann6") {
    SearchSpace s;
    for (int j = 0; j < 6; ++j) s.emplace_back("x" + std::to_string(j), num(Distribution::Kind::kFloat, 0, 1));
    return {s, hartmann6};
  }
  if (name == "rosenbrock4_log") {
    SearchSpace s;
    for (int j = 0; j < 4; ++j) s.emplace_back("x" + std::to_string(j), num(Distribution::Kind::kFloat, 1e-2, 10, true));
    return {s, rosenbrock4};
  }
  if (name == "mixed") {
    Distribution kind;
    kind.kind = Distribution::Kind::kCategorical;
    kind.choices = {"a", "b", "c", "d"};
    return {{{"kind", kind}, {"x", num(Distribution::Kind::kFloat, -5, 5)}, {"z", num(Distribution::Kind::kFloat, 0, 1)},
             {"n", num(Distribution::Kind::kInt, 0, 10)}},
            mixed};
  }
  std::fprintf(stderr, "unknown function %s (branin, hartmann6, rosenbrock4_log, mixed)\n", name.c_str());
  std::exit(2);
}

Trial complete(int64_t number, Params params, double value) {
  Trial t;
  t.number = number;
  t.id = number;
  t.state = TrialState::kComplete;
  t.params = std::move(params);
  t.value = value;
  return t;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 5 && argc != 4) {
    std::fprintf(stderr, "usage: %s quality FUNCTION SEEDS TRIALS | overhead N_HISTORY REPEATS\n", argv[0]);
    return 2;
  }
  const std::string mode = argv[1];
  if (mode == "quality") {
    const Function fn = function_named(argv[2]);
    const int seeds = std::atoi(argv[3]), trials = std::atoi(argv[4]);
    for (int seed = 0; seed < seeds; ++seed) {
      TpeSamplerOptions o;
      o.seed = static_cast<uint64_t>(seed);
      TpeSampler tpe(o);
      std::vector<Trial> history;
      double best = std::numeric_limits<double>::infinity();
      for (int i = 0; i < trials; ++i) {
        Params p = tpe.sample(fn.space, history, Direction::kMinimize);
        const double v = fn.f(p);
        best = std::min(best, v);
        history.push_back(complete(i, std::move(p), v));
      }
      std::printf("%d %.17g\n", seed, best);
    }
    return 0;
  }
  if (mode == "overhead") {
    const Function fn = function_named("hartmann6");
    const int n = std::atoi(argv[2]), repeats = std::atoi(argv[3]);
    RandomSampler random(RandomSamplerOptions{0});
    std::vector<Trial> history;
    for (int i = 0; i < n; ++i) {
      Params p = random.sample(fn.space, history, Direction::kMinimize);
      const double v = fn.f(p);
      history.push_back(complete(i, std::move(p), v));
    }
    TpeSamplerOptions o;
    o.seed = 1;
    TpeSampler tpe(o);
    double sink = tpe.sample(fn.space, history, Direction::kMinimize).at("x0");  // untimed warm-up, as Optuna's
    const std::clock_t c0 = std::clock();
    const auto t0 = std::chrono::steady_clock::now();
    for (int r = 0; r < repeats; ++r) sink += tpe.sample(fn.space, history, Direction::kMinimize).at("x0");
    const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / repeats;
    const double cpu = static_cast<double>(std::clock() - c0) / CLOCKS_PER_SEC / repeats;
    std::printf("%.9g %.9g\n", cpu + 0 * sink, wall);
    return 0;
  }
  std::fprintf(stderr, "unknown mode %s\n", mode.c_str());
  return 2;
}
