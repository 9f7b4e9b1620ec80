// kiln report: one self-contained HTML page for a training run, several runs side by side, or a
// tuning study. No LibTorch: it reads the run's files and the study storage.
#include <chrono>
#include <fstream>
#include <sstream>
#include <cstdio>
#include <filesystem>
#include <iostream>

#include "kiln/core/atomic_output.h"
#include "kiln/core/error.h"
#include "kiln/core/log.h"
#include "kiln/core/version.h"
#include "kiln/report/run_report.h"
#include "kiln/report/server_report.h"
#include "kiln/report/study_report.h"
#include "kiln/tune/storage.h"
#include "kiln/tune/study_setup.h"
#include "verbs.h"

namespace fs = std::filesystem;

namespace kiln::cli {

namespace {

MetricsFetcher& metrics_fetcher() {
  static MetricsFetcher fetcher = nullptr;
  return fetcher;
}

struct ReportFlags {
  std::vector<std::string> runs;
  std::string out, study, storage, server;
};

// The /metrics text of a server (http://HOST:PORT, /metrics added when the URL has no path), or a
// saved scrape (a file: `curl URL/metrics > FILE`).
std::string fetch_metrics(const std::string& where) {
  const auto scheme = where.find("://");
  if (scheme == std::string::npos) {
    std::ifstream in(where, std::ios::binary);
    if (!in) {
      throw IoError(where + ": cannot read; --server takes a server URL (http://HOST:PORT) or a file holding a "
                            "scrape of its /metrics");
    }
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  const auto path_at = where.find('/', scheme + 3);
  const std::string base = where.substr(0, path_at);
  std::string path = path_at == std::string::npos ? "" : where.substr(path_at);
  if (path.empty() || path == "/") path = "/metrics";
  if (metrics_fetcher() == nullptr) hand_over_to_ml();  // the front binary: kiln-ml links the HTTP client
  return metrics_fetcher()(where, base, path);
}

void write_page(const std::string& out, const std::string& html, double seconds) {
  if (out == "-") {
    std::cout << html;
    return;
  }
  core::write_file_atomic(out, html);
  char buf[128];
  std::snprintf(buf, sizeof buf, " (%.1f KiB, %.3f s)", static_cast<double>(html.size()) / 1024.0, seconds);
  core::info(std::string("wrote ") + out + buf);
  std::cout << "report: " << out << "\n";
}

}  // namespace

void set_metrics_fetcher(MetricsFetcher fetcher) { metrics_fetcher() = fetcher; }

std::string write_run_report(const std::string& run_dir, const std::string& out) {
  report::RunPageOptions o;
  o.generator = "kiln " + kiln::version();
  const std::string path = out.empty() ? (fs::path(run_dir) / "report.html").string() : out;
  const std::string html = report::run_page(report::load_run(run_dir), o);
  if (path != "-") core::write_file_atomic(path, html);
  else std::cout << html;
  return path;
}

void add_report(CLI::App& app) {
  auto f = std::make_shared<ReportFlags>();
  auto* cmd = app.add_subcommand(
      "report", "Write a self-contained HTML report: a training run, runs side by side, a tuning study or a served model");
  cmd->add_option("runs", f->runs,
                  "Run directories (--out of kiln train/run): one gives its report, several compare them");
  cmd->add_option("--out", f->out,
                  "HTML file to write, - for stdout (default: RUN_DIR/report.html; the study's directory/report.html)");
  cmd->add_option("--study", f->study, "Report a tuning study of this name instead of a run");
  cmd->add_option("--storage", f->storage, "Study storage URL (default: the study's own, as kiln tune uses)");
  cmd->add_option("--server", f->server,
                  "Report a running server instead: its URL (http://HOST:PORT; /metrics is read) or a saved scrape");
  cmd->callback([f]() {
    const auto t0 = std::chrono::steady_clock::now();
    auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };
    const std::string generator = "kiln " + kiln::version();
    if (!f->server.empty()) {
      if (!f->runs.empty() || !f->study.empty() || !f->storage.empty()) {
        throw ConfigError("--server reports a running server and takes no run directory, --study or --storage; "
                          "drop one of them");
      }
      if (f->out.empty()) throw ConfigError("--server needs --out FILE (where to write the snapshot page)");
      report::ServerPageOptions o;
      o.generator = generator;
      o.source = f->server;
      const std::string text = fetch_metrics(f->server);
      if (f->server.find("://") != std::string::npos) {
        o.scraped_at = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
      }
      write_page(f->out, report::server_page(report::parse_prometheus_text(text, f->server), o), elapsed());
      return;
    }
    if (!f->study.empty()) {
      if (!f->runs.empty()) {
        throw ConfigError("--study reports a tuning study and takes no run directory (got " + f->runs.front() +
                          "); drop one of them");
      }
      const tune::StudyLocation loc = tune::locate_study(f->study, "", "", f->storage);
      auto storage = tune::open_storage(loc.url);
      const tune::StudyInfo study = tune::find_existing_study(*storage, loc.name, loc.url);
      report::StudyPageOptions o;
      o.generator = generator;
      o.storage = tune::mask_url_password(loc.url);
      const std::string html = report::study_page(study, storage->trials(study.id), tune::stored_space(study), o);
      std::string out = f->out;
      if (out.empty()) {
        std::error_code ec;
        if (!fs::is_directory(loc.out, ec)) {
          throw ConfigError("study " + loc.name + " has no directory " + loc.out +
                            " to write report.html into; give --out FILE");
        }
        out = (fs::path(loc.out) / "report.html").string();
      }
      write_page(out, html, elapsed());
      return;
    }
    if (!f->storage.empty()) throw ConfigError("--storage applies with --study NAME only; add --study or drop --storage");
    if (f->runs.empty()) {
      throw ConfigError("give a run directory (kiln report RUN_DIR), several to compare, or --study NAME");
    }
    report::RunPageOptions o;
    o.generator = generator;
    if (f->runs.size() == 1) {
      const std::string out = f->out.empty() ? (fs::path(f->runs[0]) / "report.html").string() : f->out;
      const report::RunFiles run = report::load_run(f->runs[0]);
      if (!run.importance_error.empty()) {
        core::warn("report: skipping the top features: " + run.importance_error + " (the page says so too)");
      }
      write_page(out, report::run_page(run, o), elapsed());
      return;
    }
    if (f->out.empty()) {
      throw ConfigError("comparing " + std::to_string(f->runs.size()) +
                        " runs needs --out FILE (no run directory is the obvious home for it)");
    }
    std::vector<report::RunFiles> runs;
    for (const auto& r : f->runs) runs.push_back(report::load_run(r));
    write_page(f->out, report::comparison_page(runs, o), elapsed());
  });
}

}  // namespace kiln::cli
