// The event-loop HTTP core: parsing (keep-alive, pipelining, chunked, 100-continue), refusals
// (malformed, too large), timeouts, the connection ceiling, shutdown, and that hundreds of slow
// clients holding connections open do not keep valid requests from being answered.
#include "http_server.h"

#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "raw_http_client.h"

namespace kiln::serve::http {
namespace {

using testing::RawClient;
using testing::RawResponse;

/// A server on a free port, run on its own thread; echoes method, path and body.
class EchoServer {
 public:
  explicit EchoServer(HttpOptions o = {}, std::function<void(Request&&, Responder)> handler = {}) {
    o.host = "127.0.0.1";
    o.port = 0;
    Hooks h;
    h.handle = handler ? std::move(handler) : [this](Request&& req, Responder res) {
      ++handled;
      Response r;
      r.content_type = "text/plain";
      r.body = req.method + " " + req.path + " " + req.body;
      res.send(std::move(r));
    };
    h.error = [](int status, const std::string& code, const std::string& message) {
      Response r;
      r.status = status;
      r.body = "{\"error\":{\"code\":\"" + code + "\",\"message\":\"" + message + "\"}}";
      return r;
    };
    server = std::make_unique<HttpServer>(o, std::move(h));
    server->bind();
    thread = std::thread([this] { server->run(); });
  }
  ~EchoServer() {
    server->stop();
    thread.join();
  }
  int port() const { return server->port(); }
  std::atomic<int> handled{0};
  std::unique_ptr<HttpServer> server;
  std::thread thread;
};

TEST(HttpServer, KeepAliveAnswersSeveralRequestsOnOneConnection) {
  EchoServer s;
  RawClient c(s.port());
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(c.send("GET /a%20b?x=1 HTTP/1.1\r\nHost: t\r\n\r\n"));
    const RawResponse r = c.read_response();
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body, "GET /a b ");
    EXPECT_EQ(r.headers.count("connection"), 0u);
  }
}

TEST(HttpServer, PipelinedRequestsAreAnsweredInOrder) {
  EchoServer s;
  RawClient c(s.port());
  ASSERT_TRUE(c.send("POST /one HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcGET /two HTTP/1.1\r\n\r\n"
                     "POST /three HTTP/1.1\r\nContent-Length: 1\r\nConnection: close\r\n\r\nz"));
  EXPECT_EQ(c.read_response().body, "POST /one abc");
  EXPECT_EQ(c.read_response().body, "GET /two ");
  const RawResponse last = c.read_response();
  EXPECT_EQ(last.body, "POST /three z");
  EXPECT_EQ(last.headers.at("connection"), "close");
  EXPECT_TRUE(c.closed_by_server());
}

TEST(HttpServer, AClientThatShutsDownItsSendingSideStillGetsItsAnswers) {
  HttpServer* srv = nullptr;
  EchoServer s({}, [&srv](Request&& req, Responder res) {
    auto shared = std::make_shared<Responder>(std::move(res));
    srv->offload([shared, path = req.path] {
      Response r;
      r.body = "late " + path;
      shared->send(std::move(r));
    });
  });
  srv = s.server.get();
  RawClient c(s.port());
  ASSERT_TRUE(c.send("GET /one HTTP/1.1\r\n\r\nGET /two HTTP/1.1\r\n\r\n"));
  c.shutdown_write();
  EXPECT_EQ(c.read_response().body, "late /one");
  EXPECT_EQ(c.read_response().body, "late /two");
  // Whether the last answer says `Connection: close` depends on when the server saw the end of
  // input; either way the connection closes after it.
  EXPECT_TRUE(c.closed_by_server());
}

TEST(HttpServer, ChunkedBodyIsDecoded) {
  EchoServer s;
  RawClient c(s.port());
  ASSERT_TRUE(c.send("POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nWiki\r\n5;ext=1\r\npedia\r\n0\r\nX-T: 1\r\n\r\n"));
  EXPECT_EQ(c.read_response().body, "POST /c Wikipedia");
}

TEST(HttpServer, ExpectContinueGetsAnInterimResponseBeforeTheBody) {
  EchoServer s;
  RawClient c(s.port());
  ASSERT_TRUE(c.send("POST /e HTTP/1.1\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"));
  EXPECT_EQ(c.read_response().status, 100);
  ASSERT_TRUE(c.send("hello"));
  EXPECT_EQ(c.read_response().body, "POST /e hello");
}

TEST(HttpServer, Http10ClosesUnlessKeepAliveIsAsked) {
  EchoServer s;
  {
    RawClient c(s.port());
    ASSERT_TRUE(c.send("GET /x HTTP/1.0\r\n\r\n"));
    EXPECT_EQ(c.read_response().status, 200);
    EXPECT_TRUE(c.closed_by_server());
  }
  RawClient c(s.port());
  ASSERT_TRUE(c.send("GET /x HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
  const RawResponse r = c.read_response();
  EXPECT_EQ(r.headers.at("connection"), "keep-alive");
  ASSERT_TRUE(c.send("GET /y HTTP/1.0\r\n\r\n"));
  EXPECT_EQ(c.read_response().body, "GET /y ");
}

struct Malformed {
  const char* request;
  int status;
  const char* code;
  const char* fragment;
};

TEST(HttpServer, MalformedRequestsAreRefusedWithTheirReasonAndClosed) {
  HttpOptions o;
  o.max_body_bytes = 100;
  o.max_header_bytes = 256;
  EchoServer s(o);
  const Malformed cases[] = {
      {"GARBAGE\r\n\r\n", 400, "bad_request", "request line"},
      {"GET nopath HTTP/1.1\r\n\r\n", 400, "bad_request", "start with '/'"},
      {"GET / HTTP/2.0\r\n\r\n", 505, "http_version_not_supported", "HTTP/1.1"},
      {"GET / HTTP/1.1\r\nNo colon here\r\n\r\n", 400, "bad_request", "header"},
      {"GET / HTTP/1.1\r\n folded: x\r\n\r\n", 400, "bad_request", "folded"},
      {"POST / HTTP/1.1\r\nContent-Length: 12x\r\n\r\n", 400, "bad_request", "Content-Length"},
      {"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", 400, "bad_request", "two different"},
      {"POST / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", 400, "bad_request", "both"},
      {"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", 501, "not_implemented", "gzip"},
      {"POST / HTTP/1.1\r\nContent-Length: 101\r\n\r\n", 413, "body_too_large", "100 bytes"},
      {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400, "bad_request", "hex"},
      {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n65\r\n", 413, "body_too_large", "100 bytes"},
      {"GET /%zz HTTP/1.1\r\n\r\n", 400, "bad_request", "%-escape"},
  };
  for (const auto& m : cases) {
    SCOPED_TRACE(m.request);
    RawClient c(s.port());
    ASSERT_TRUE(c.send(m.request));
    const RawResponse r = c.read_response();
    EXPECT_EQ(r.status, m.status);
    EXPECT_NE(r.body.find(std::string("\"code\":\"") + m.code + "\""), std::string::npos) << r.body;
    EXPECT_NE(r.body.find(m.fragment), std::string::npos) << r.body;
    EXPECT_EQ(r.headers.at("connection"), "close");
    EXPECT_TRUE(c.closed_by_server());
  }
  RawClient c(s.port());
  ASSERT_TRUE(c.send("GET /" + std::string(300, 'a') + " HTTP/1.1\r\n\r\n"));
  EXPECT_EQ(c.read_response().status, 431);
  EXPECT_EQ(s.handled.load(), 0);
}

TEST(HttpServer, SlowHeadersTimeOutWith408AndIdleConnectionsClose) {
  HttpOptions o;
  o.header_timeout_s = 0.2;
  o.body_timeout_s = 0.2;
  o.idle_timeout_s = 0.2;
  EchoServer s(o);
  RawClient partial(s.port());
  ASSERT_TRUE(partial.send("GET / HTTP/1.1\r\nHost: sl"));
  const RawResponse r = partial.read_response();
  EXPECT_EQ(r.status, 408);
  EXPECT_NE(r.body.find("request_timeout"), std::string::npos);
  EXPECT_TRUE(partial.closed_by_server());

  RawClient body(s.port());
  ASSERT_TRUE(body.send("POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc"));
  EXPECT_EQ(body.read_response().status, 408);

  RawClient idle(s.port());
  EXPECT_TRUE(idle.closed_by_server());
  const auto& st = s.server->stats();
  EXPECT_EQ(st.header_timeouts.load(), 1u);
  EXPECT_EQ(st.body_timeouts.load(), 1u);
  EXPECT_GE(st.idle_timeouts.load(), 1u);
}

TEST(HttpServer, ConnectionsBeyondTheCeilingGet503AndAreCounted) {
  HttpOptions o;
  o.max_connections = 3;
  EchoServer s(o);
  std::vector<std::unique_ptr<RawClient>> held;
  for (int i = 0; i < 3; ++i) {
    held.push_back(std::make_unique<RawClient>(s.port()));
    ASSERT_TRUE(held.back()->send("GET /h HTTP/1.1\r\n\r\n"));
    ASSERT_EQ(held.back()->read_response().status, 200);  // accepted and registered
  }
  RawClient extra(s.port());
  const RawResponse r = extra.read_response();
  EXPECT_EQ(r.status, 503);
  EXPECT_NE(r.body.find("too_many_connections"), std::string::npos);
  EXPECT_EQ(s.server->stats().rejected.load(), 1u);
  held.pop_back();  // frees a slot: the next connection is served
  for (int tries = 0; tries < 200; ++tries) {
    RawClient again(s.port());
    again.send("GET /ok HTTP/1.1\r\n\r\n");
    if (again.read_response().status == 200) return;
  }
  FAIL() << "a freed slot was never reused";
}

TEST(HttpServer, ValidRequestsAreAnsweredWhileHundredsOfSlowClientsHoldConnections) {
  // Slow clients (partial headers, a partial body, idle) hold 300 connections; valid requests on
  // other connections, answered by workers, must all succeed. No latency is asserted.
  HttpOptions o;
  o.workers = 2;
  HttpServer* srv = nullptr;
  EchoServer s(o, [&srv](Request&& req, Responder res) {
    auto shared = std::make_shared<Responder>(std::move(res));
    srv->offload([shared, body = req.body] {
      Response r;
      r.body = "ok:" + body;
      shared->send(std::move(r));
    });
  });
  srv = s.server.get();
  std::vector<std::unique_ptr<RawClient>> slow;
  for (int i = 0; i < 300; ++i) {
    slow.push_back(std::make_unique<RawClient>(s.port()));
    if (i % 3 == 0) slow.back()->send("POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Le");
    if (i % 3 == 1) slow.back()->send("POST /v1/predict HTTP/1.1\r\nContent-Length: 100\r\n\r\n{\"texts\"");
  }
  std::atomic<int> ok{0};
  std::vector<std::thread> clients;
  for (int t = 0; t < 4; ++t) {
    clients.emplace_back([&, t] {
      RawClient c(s.port());
      for (int i = 0; i < 50; ++i) {
        const std::string body = std::to_string(t * 1000 + i);
        c.send("POST /v1/predict HTTP/1.1\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body);
        const RawResponse r = c.read_response();
        if (r.status == 200 && r.body == "ok:" + body) ++ok;
      }
    });
  }
  for (auto& t : clients) t.join();
  EXPECT_EQ(ok.load(), 200);
  EXPECT_GE(s.server->stats().open.load(), 300);
}

TEST(HttpServer, StopAnswersTheRequestInFlightThenReturns) {
  std::mutex mu;
  std::condition_variable cv;
  std::unique_ptr<Responder> held;
  EchoServer s({}, [&](Request&&, Responder res) {
    {
      std::lock_guard<std::mutex> lock(mu);
      held = std::make_unique<Responder>(std::move(res));
    }
    cv.notify_all();
  });
  RawClient idle(s.port());
  RawClient busy(s.port());
  ASSERT_TRUE(busy.send("GET /slow HTTP/1.1\r\n\r\n"));
  {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return held != nullptr; });
  }
  s.server->stop();
  EXPECT_TRUE(idle.closed_by_server());  // an idle keep-alive connection closes at once
  {
    std::lock_guard<std::mutex> lock(mu);
    Response r;
    r.body = "late";
    held->send(std::move(r));
  }
  const RawResponse r = busy.read_response();
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "late");
  EXPECT_EQ(r.headers.at("connection"), "close");
  s.thread.join();  // run() returned
  s.thread = std::thread([] {});
}

TEST(HttpServer, AResponderDroppedUnsentAnswers500) {
  EchoServer s({}, [](Request&&, Responder) {});
  RawClient c(s.port());
  ASSERT_TRUE(c.send("GET /x HTTP/1.1\r\n\r\n"));
  const RawResponse r = c.read_response();
  EXPECT_EQ(r.status, 500);
  EXPECT_NE(r.body.find("internal_error"), std::string::npos);
}

TEST(HttpServer, BindFailureNamesTheAddressAndTheFix) {
  EchoServer s;
  HttpOptions o;
  o.port = s.port();
  HttpServer second(o, {});
  try {
    second.bind();
    FAIL() << "bound a port in use";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("cannot listen on 127.0.0.1:" + std::to_string(s.port())), std::string::npos)
        << e.what();
    EXPECT_NE(std::string(e.what()).find("--port"), std::string::npos);
  }
}

}  // namespace
}  // namespace kiln::serve::http
