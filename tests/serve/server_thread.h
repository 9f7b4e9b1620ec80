// A test's Server running on its own thread: bound on construction (the server's options give the
// port, 0 = ephemeral), shut down and joined on destruction. Declare it after the Server it runs,
// so it goes first.
#pragma once

#include <thread>

#include "kiln/serve/server.h"

namespace kiln::test {

class ServerThread {
 public:
  explicit ServerThread(serve::Server& server) : server_(server) {
    server_.bind();
    thread_ = std::thread([this] { server_.run(); });
  }
  ~ServerThread() {
    server_.shutdown();
    thread_.join();
  }
  ServerThread(const ServerThread&) = delete;
  ServerThread& operator=(const ServerThread&) = delete;

 private:
  serve::Server& server_;
  std::thread thread_;
};

}  // namespace kiln::test
