// kiln serve's flags: the ServerOptions they fill, the admin token, and the feedback loop's
// (--feedback-token-file and the flags of learning from feedback).
#pragma once

#include <CLI/CLI.hpp>

#include <cstdint>
#include <memory>
#include <string>

#include "kiln/learn/feedback_service.h"
#include "kiln/serve/server.h"

namespace kiln::cli {

struct ServeFlags {
  std::string artifact;
  serve::ServerOptions options;
  std::string auth_token_file;
  double drain_grace_s = 0;
  std::string port_file;
  bool no_page = false;
  // The feedback loop (on with --feedback-token-file).
  std::string feedback_token_file;
  learn::FeedbackOptions feedback;
  std::string buffer = "reservoir";
  int64_t capacity = 1000, batch = 32;
  bool no_drift_updates = false;
};

/// Every flag of kiln serve (the feedback loop's through add_feedback_flags).
void add_serve_flags(CLI::App& cmd, ServeFlags& f);
/// The feedback loop's flags (serve_feedback.cpp).
void add_feedback_flags(CLI::App& cmd, ServeFlags& f);

/// The feedback service the flags ask for (null without --feedback-token-file). Throws ConfigError
/// for a learning flag given without --feedback-token-file, or a bad value.
[[nodiscard]] std::shared_ptr<learn::FeedbackService> make_feedback_service(const CLI::App& cmd, ServeFlags& f);

}  // namespace kiln::cli
