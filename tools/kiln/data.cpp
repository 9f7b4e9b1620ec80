#include "kiln/core/error.h"
#include "verbs.h"

namespace kiln::cli {

// Placeholder until the verb lands.
void add_data(CLI::App& app) {
  auto* cmd = app.add_subcommand("data", "(not yet available)");
  cmd->allow_extras();
  cmd->callback([]() { throw kiln::ConfigError("kiln data is not available in this build"); });
}

}  // namespace kiln::cli
