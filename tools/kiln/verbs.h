// One function per verb; each adds its subcommand (flags, help, callback) to the app.
// Verb files hold flags, files and exit codes only; algorithms live in the modules.
#pragma once

#include <CLI/CLI.hpp>

namespace kiln::cli {

void add_version(CLI::App& app);
void add_data(CLI::App& app);
void add_prepare(CLI::App& app);
void add_tfidf(CLI::App& app);
void add_train(CLI::App& app);
void add_evaluate(CLI::App& app);
void add_predict(CLI::App& app);
void add_run(CLI::App& app);

}  // namespace kiln::cli
