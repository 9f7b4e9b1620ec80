// kiln_serve_load: drives a running `kiln serve` with many keep-alive connections for the
// reliability tests. Sends N predict requests (a share of them malformed in rotating ways) and
// checks each answer: valid requests must get 200 with predictions, malformed ones a 4xx JSON
// error. With --rate, paced (open loop) and the latency quantiles of the valid answers reported.
// Prints one JSON summary line; exit 0 when every answer was as expected.
#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

namespace {

struct Args {
  std::string host = "127.0.0.1";
  int port = 0;
  long requests = 1000;
  int concurrency = 8;
  double malformed_rate = 0.0;
  /// Requests per second over all connections, open loop (0 = as fast as answers come). Request i
  /// is due at start + i / rate; its latency counts from then, so a stalled server is not hidden
  /// by requests that were never sent (coordinated omission).
  double rate = 0;
  std::string texts_file;
  int texts_per_request = 1;
  std::size_t oversize_bytes = 0;  // malformed kind "oversize" sends a body of this many bytes
  bool until_refused = false;      // keep going until the server drains or refuses (SIGTERM test)
  /// With --rate: writes "due latency" (seconds; due on the steady clock, CLOCK_MONOTONIC) of every
  /// answered valid request, so slow answers can be lined up with what else the server did then.
  std::string timeline;
};

[[noreturn]] void usage(const std::string& why) {
  std::cerr << "kiln_serve_load: " << why
            << "\nusage: kiln_serve_load --port P [--host H] [--requests N] [--concurrency C] [--malformed-rate R]"
               " [--texts-file F] [--texts-per-request K] [--oversize-bytes B] [--until-refused] [--rate R] [--timeline FILE]\n";
  std::exit(2);
}

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string k = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) usage(k + " needs a value");
      return argv[++i];
    };
    if (k == "--host") a.host = next();
    else if (k == "--port") a.port = std::stoi(next());
    else if (k == "--requests") a.requests = std::stol(next());
    else if (k == "--concurrency") a.concurrency = std::stoi(next());
    else if (k == "--malformed-rate") a.malformed_rate = std::stod(next());
    else if (k == "--texts-file") a.texts_file = next();
    else if (k == "--texts-per-request") a.texts_per_request = std::stoi(next());
    else if (k == "--oversize-bytes") a.oversize_bytes = std::stoul(next());
    else if (k == "--until-refused") a.until_refused = true;
    else if (k == "--rate") a.rate = std::stod(next());
    else if (k == "--timeline") a.timeline = next();
    else usage("unknown flag " + k);
  }
  if (a.port <= 0) usage("--port is required");
  if (a.concurrency < 1 || a.requests < 1 || a.texts_per_request < 1) usage("counts must be >= 1");
  return a;
}

enum class Kind { kValid, kBadJson, kWrongType, kEmpty, kOversize };
const char* kind_name(Kind k) {
  switch (k) {
    case Kind::kValid: return "valid";
    case Kind::kBadJson: return "bad_json";
    case Kind::kWrongType: return "wrong_type";
    case Kind::kEmpty: return "empty";
    case Kind::kOversize: return "oversize";
  }
  return "?";
}

}  // namespace

int main(int argc, char** argv) {
  const Args a = parse(argc, argv);
  std::vector<std::string> texts;
  if (!a.texts_file.empty()) {
    std::ifstream in(a.texts_file);
    std::string line;
    while (std::getline(in, line)) {
      if (!line.empty()) texts.push_back(line);
    }
  }
  if (texts.empty()) texts = {"the jury said the election was fair", "a quiet evening by the sea", "stock prices rose"};
  const long malformed_every = a.malformed_rate > 0 ? static_cast<long>(1.0 / a.malformed_rate + 0.5) : 0;

  std::atomic<long> next{0};
  std::atomic<bool> refused{false};
  std::mutex mu;
  std::map<std::string, long> counts;  // "valid:200", "bad_json:400", "valid:transport:Read", ...
  long unexpected = 0, lost = 0, sent = 0;
  std::string first_problem;
  std::vector<double> latencies;  // seconds, valid requests answered 200
  std::vector<std::pair<double, double>> timeline;  // (due, latency) for --timeline
  const auto start = std::chrono::steady_clock::now();

  auto worker = [&]() {
    auto connect = [&] {
      auto c = std::make_unique<httplib::Client>(a.host, a.port);
      c->set_keep_alive(true);
      c->set_tcp_nodelay(true);  // headers and body go out as two writes: avoid Nagle + delayed ACK stalls
      c->set_read_timeout(30, 0);
      c->set_connection_timeout(5, 0);
      return c;
    };
    auto cli = connect();
    std::map<std::string, long> local;
    long local_unexpected = 0, local_lost = 0, local_sent = 0;
    std::string problem;
    std::vector<double> local_latencies;
    std::vector<std::pair<double, double>> local_timeline;
    for (;;) {
      const long i = next.fetch_add(1);
      if (!a.until_refused && i >= a.requests) break;
      if (a.until_refused && refused) break;
      auto due = std::chrono::steady_clock::now();
      if (a.rate > 0) {
        due = start + std::chrono::duration_cast<std::chrono::steady_clock::duration>(std::chrono::duration<double>(i / a.rate));
        std::this_thread::sleep_until(due);
      }
      Kind kind = Kind::kValid;
      if (malformed_every > 0 && i % malformed_every == malformed_every - 1) {
        const long m = (i / malformed_every) % (a.oversize_bytes > 0 ? 4 : 3);
        kind = m == 0 ? Kind::kBadJson : m == 1 ? Kind::kWrongType : m == 2 ? Kind::kEmpty : Kind::kOversize;
      }
      std::string body;
      switch (kind) {
        case Kind::kValid: {
          nlohmann::json j;
          j["texts"] = nlohmann::json::array();
          for (int t = 0; t < a.texts_per_request; ++t) j["texts"].push_back(texts[static_cast<std::size_t>(i + t) % texts.size()]);
          body = j.dump();
          break;
        }
        case Kind::kBadJson: body = "{\"texts\": [\"unterminated"; break;
        case Kind::kWrongType: body = "{\"texts\": 42}"; break;
        case Kind::kEmpty: body = ""; break;
        case Kind::kOversize: body = "{\"texts\": [\"" + std::string(a.oversize_bytes, 'a') + "\"]}"; break;
      }
      ++local_sent;
      auto res = cli->Post("/v1/predict", body, "application/json");
      // HTTP/1.1: after `Connection: close` (a draining server) this connection must not be reused.
      const bool server_draining = res && res->get_header_value("Connection") == "close";
      if (server_draining) cli = connect();
      std::string key = kind_name(kind);
      bool ok = false;
      if (!res) {
        const auto err = res.error();
        if (err == httplib::Error::Connection) {
          // Never reached the server: not accepted, so not lost. Only expected after shutdown.
          key += ":refused";
          if (a.until_refused) {
            refused = true;
            --local_sent;
            local[key]++;
            continue;
          }
        } else {
          key += ":transport:" + httplib::to_string(err);
          ++local_lost;
        }
      } else {
        key += ":" + std::to_string(res->status);
        if (kind == Kind::kValid) {
          ok = res->status == 200 && res->body.find("\"predictions\"") != std::string::npos;
          if (ok) {
            local_latencies.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - due).count());
            if (!a.timeline.empty()) {
              local_timeline.emplace_back(std::chrono::duration<double>(due.time_since_epoch()).count(), local_latencies.back());
            }
          }
        } else {
          ok = res->status >= 400 && res->status < 500 && res->body.find("\"error\"") != std::string::npos;
        }
      }
      if (!ok && (res || !a.until_refused || key.find(":refused") == std::string::npos)) {
        ++local_unexpected;
        if (problem.empty()) problem = key + (res ? " body=" + res->body.substr(0, 200) : "");
      }
      local[key]++;
      // Like a load balancer seeing readyz turn 503: a draining server gets no new requests.
      if (a.until_refused && server_draining) refused = true;
    }
    std::lock_guard<std::mutex> lock(mu);
    for (const auto& [k, v] : local) counts[k] += v;
    unexpected += local_unexpected;
    lost += local_lost;
    sent += local_sent;
    latencies.insert(latencies.end(), local_latencies.begin(), local_latencies.end());
    timeline.insert(timeline.end(), local_timeline.begin(), local_timeline.end());
    if (first_problem.empty()) first_problem = problem;
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < a.concurrency; ++t) threads.emplace_back(worker);
  for (auto& t : threads) t.join();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  nlohmann::json out = {{"sent", sent}, {"unexpected", unexpected}, {"lost", lost}, {"seconds", seconds},
                        {"requests_per_second", sent / seconds}, {"counts", counts}, {"first_problem", first_problem}};
  if (!latencies.empty()) {
    std::sort(latencies.begin(), latencies.end());
    const auto q = [&](double p) { return latencies[std::min(latencies.size() - 1, static_cast<std::size_t>(p * latencies.size()))]; };
    out["latency_seconds"] = {{"p50", q(0.5)}, {"p99", q(0.99)}, {"max", latencies.back()}};
  }
  if (!a.timeline.empty()) {
    std::sort(timeline.begin(), timeline.end());
    std::ofstream tl(a.timeline);
    tl.precision(9);
    for (const auto& [due, latency] : timeline) tl << due << " " << latency << "\n";
  }
  std::cout << out.dump() << std::endl;
  return unexpected == 0 && lost == 0 ? 0 : 1;
}
