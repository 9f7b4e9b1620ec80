#include "kiln/core/error.h"
#include "verbs.h"

namespace kiln::cli {

// Placeholder until the verb lands.
void add_prepare(CLI::App& app) {
  auto* cmd = app.add_subcommand("prepare", "(not yet available)");
  cmd->allow_extras();
  cmd->callback([]() { throw kiln::ConfigError("kiln prepare is not available in this build"); });
}

}  // namespace kiln::cli
