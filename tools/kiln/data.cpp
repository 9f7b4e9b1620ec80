// `kiln data list` and `kiln data fetch NAME`: known datasets, fetched into a CSV cache.
// stdout of `fetch` is the CSV's path and nothing else, so `$(kiln data fetch NAME)` works.
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <memory>
#include <string>
#include <system_error>

#include "kiln/core/log.h"
#include "kiln/data/datasets.h"
#include "verbs.h"

namespace kiln::cli {
namespace {

struct DataArgs {
  std::string name;
  std::string dir;
  bool force = false;
  int timeout_s = data::FetchOptions{}.timeout_s;
};

void run_list(const DataArgs& args) {
  data::FetchOptions opts;
  opts.dir = args.dir;
  std::cout << std::left << std::setw(14) << "NAME" << std::setw(42) << "SOURCE" << std::right
            << std::setw(7) << "ROWS" << std::setw(9) << "CLASSES" << "  " << std::left
            << std::setw(8) << "CACHED" << "DESCRIPTION\n";
  std::string dir;
  for (const auto& d : data::known_datasets()) {
    const std::filesystem::path csv = data::dataset_csv_path(d.name, opts);
    dir = csv.parent_path().string();
    std::error_code ec;
    const bool cached = std::filesystem::is_regular_file(csv, ec);
    std::cout << std::left << std::setw(14) << d.name << std::setw(42) << d.source << std::right
              << std::setw(7) << d.expected_rows << std::setw(9) << d.expected_classes << "  "
              << std::left << std::setw(8) << (cached ? "yes" : "no") << d.description << '\n';
  }
  std::cout << "cache: " << dir << '\n';
}

void run_fetch(const DataArgs& args) {
  data::FetchOptions opts;
  opts.dir = args.dir;
  opts.force = args.force;
  opts.timeout_s = args.timeout_s;
  opts.progress = [&args](const std::string& msg) { core::info(args.name + ": " + msg); };
  std::cout << data::fetch_dataset(args.name, opts) << '\n';
}

}  // namespace

void add_data(CLI::App& app) {
  auto args = std::make_shared<DataArgs>();
  auto* cmd = app.add_subcommand("data", "List and fetch known public datasets as text,label CSV files");
  cmd->require_subcommand(1);

  auto* list = cmd->add_subcommand("list", "Show the known datasets and whether each is cached");
  list->add_option("--dir", args->dir,
                   "Cache directory (default: $KILN_CACHE_DIR/datasets, else "
                   "$XDG_CACHE_HOME/kiln/datasets, else ~/.cache/kiln/datasets)");
  list->callback([args]() { run_list(*args); });

  auto* fetch = cmd->add_subcommand(
      "fetch", "Download and convert a dataset (unless cached); print only the CSV's path on stdout");
  fetch->add_option("name", args->name, "Dataset name (see `kiln data list`)")->required();
  fetch->add_option("--dir", args->dir,
                    "Cache directory (default: $KILN_CACHE_DIR/datasets, else "
                    "$XDG_CACHE_HOME/kiln/datasets, else ~/.cache/kiln/datasets)");
  fetch->add_flag("--force", args->force, "Download and convert again even if the CSV is cached");
  fetch->add_option("--timeout", args->timeout_s,
                    "Seconds each download or unpacking command may take before it is stopped")
      ->check(CLI::Range(1, 86400))
      ->capture_default_str();
  fetch->callback([args]() { run_fetch(*args); });
}

}  // namespace kiln::cli
