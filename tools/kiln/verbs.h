// One function per verb; each adds its subcommand (flags, help, callback) to the app.
// Verb files hold flags, files and exit codes only; algorithms live in the modules.
#pragma once

#include <CLI/CLI.hpp>

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace kiln::cli {

// Verbs that need LibTorch run in the kiln-ml binary; `kiln` itself stays free of LibTorch so data
// verbs start in milliseconds, and forwards these verbs (exec, same arguments) to kiln-ml.
struct MlVerb {
  const char* name;
  const char* description;
};
[[nodiscard]] const std::vector<MlVerb>& ml_verbs();
[[nodiscard]] const char* ml_verb_description(const std::string& name);
/// The first argument that is not a global option (the verb), or "".
[[nodiscard]] std::string find_verb(int argc, char** argv);
/// kiln-ml's path: next to this executable (its folder from /proc/self/exe, else ".").
[[nodiscard]] std::string kiln_ml_path();
/// This process's command line as main() received it (set first thing in main): data-parallel
/// launchers start their workers with it.
void set_process_arguments(int argc, char** argv);
[[nodiscard]] const std::vector<std::string>& process_arguments();
/// Replaces this process with kiln-ml (next to this executable) and the same arguments; returns
/// an exit code only when that fails, after printing why.
int exec_ml_binary(char** argv);
/// Replaces this process with kiln-ml and this process's own arguments (process_arguments()): a
/// verb of the front binary that needs what only kiln-ml links hands its whole run over.
[[noreturn]] void hand_over_to_ml();
/// `kiln report --server http://...` reads the server's /metrics over HTTP (cpp-httplib, with its
/// TLS libraries): kiln-ml installs the fetcher; the front binary has none and hands over, so that
/// its other verbs do not load those libraries. The result is the body of a 200 answer; throws
/// kiln errors naming `where` otherwise.
using MetricsFetcher = std::string (*)(const std::string& where, const std::string& base, const std::string& path);
void set_metrics_fetcher(MetricsFetcher fetcher);
/// kiln-ml's fetcher (tools/kiln/report_http.cpp).
std::string fetch_metrics_over_http(const std::string& where, const std::string& base, const std::string& path);
/// `kiln plan --gpu cpu` times the step's ops with LibTorch: kiln-ml installs the timing probe
/// (kiln::train::time_step_kernels); in the front binary there is none and plan hands over to kiln-ml.
using PlanProbe = nlohmann::json (*)(const nlohmann::json& request);
void set_plan_probe(PlanProbe probe);
[[nodiscard]] PlanProbe plan_probe();
/// `kiln plan --data FILE` fits the artifact's preprocessors on FILE with LibTorch: kiln-ml installs
/// kiln::pipeline::profile_plan_data here.
void set_plan_data_probe(PlanProbe probe);
[[nodiscard]] PlanProbe plan_data_probe();

void add_version(CLI::App& app);
void add_data(CLI::App& app);
void add_prepare(CLI::App& app);
void add_tfidf(CLI::App& app);
void add_tokenize(CLI::App& app);
void add_vocab(CLI::App& app);
void add_tune(CLI::App& app);
void add_report(CLI::App& app);
void add_plan(CLI::App& app);
void add_train(CLI::App& app);
void add_evaluate(CLI::App& app);
void add_predict(CLI::App& app);
void add_run(CLI::App& app);
void add_serve(CLI::App& app);
void add_doctor(CLI::App& app);
void add_pretrain(CLI::App& app);
void add_embed(CLI::App& app);
void add_optimize(CLI::App& app);
void add_export(CLI::App& app);
void add_learn(CLI::App& app);

/// Writes the training-run report of `run_dir` to `out` (default RUN_DIR/report.html; "-" is
/// stdout) and returns the path. Throws what report::load_run and the writer throw.
std::string write_run_report(const std::string& run_dir, const std::string& out = "");

}  // namespace kiln::cli
