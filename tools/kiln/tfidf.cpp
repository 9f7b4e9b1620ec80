#include "kiln/core/error.h"
#include "verbs.h"

namespace kiln::cli {

// Placeholder until the verb lands.
void add_tfidf(CLI::App& app) {
  auto* cmd = app.add_subcommand("tfidf", "(not yet available)");
  cmd->allow_extras();
  cmd->callback([]() { throw kiln::ConfigError("kiln tfidf is not available in this build"); });
}

}  // namespace kiln::cli
