// The server's feedback loop end to end, in process: a kiln serve Server with the FeedbackService
// extension over a tiny trained model. Every bad request answers with its own message; accepted
// items are in the log when the answer arrives; updates run in the background and promote through
// the hot swap; a stream of random labels is stopped by the gate; rollback returns to the parent.
// (kill -9 of a real server: tests/cli/serve_feedback_test.sh.)
#include "kiln/learn/feedback_service.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include <nlohmann/json.hpp>

#include "feedback_log.h"
#include "sql_connection.h"
#include "kiln/core/error.h"
#include "kiln/serve/server.h"
#include "learn_fixtures.h"
#include "serve/raw_http_client.h"

namespace fs = std::filesystem;
using namespace kiln;
using serve::testing::RawResponse;
using serve::testing::request;

namespace {

constexpr const char* kToken = "feedback-token-0123456789";

const fs::path& artifact_dir() {
  static const fs::path dir = [] {
    const auto d = learn_test::fresh_dir("feedback_service");
    const auto train = learn_test::topics(200, 1), val = learn_test::topics(60, 2);
    pipeline::save(pipeline::run_pipeline(learn_test::small_config(), train, &val, nullptr), (d / "model").string());
    return d;
  }();
  return dir;
}

learn::FeedbackOptions options(const std::string& state) {
  learn::FeedbackOptions o;
  o.token = kToken;
  o.state_dir = (artifact_dir() / state).string();
  fs::remove_all(o.state_dir);
  o.learn.update_every = 60;
  o.learn.gate_fraction = 0.25;
  o.learn.buffer.capacity = 200;
  o.learn.buffer.batch_size = 16;
  o.learn.update.epochs = 3;
  return o;
}

class Serving {
 public:
  explicit Serving(const learn::FeedbackOptions& o, serve::ServerOptions so = {}) {
    feedback = std::make_shared<learn::FeedbackService>(o);
    so.port = 0;
    so.extensions.push_back(feedback);
    server = std::make_unique<serve::Server>((artifact_dir() / "model").string(), std::move(so));
    server->bind();
    thread = std::thread([this] { server->run(); });
  }
  ~Serving() {
    server->shutdown();
    thread.join();
    server.reset();
  }
  RawResponse post(const std::string& body, const std::string& token = kToken) {
    return request(server->port(), "POST", "/v1/feedback", body,
                   token.empty() ? "" : "Authorization: Bearer " + token + "\r\n");
  }
  nlohmann::json status() {
    return nlohmann::json::parse(
        request(server->port(), "GET", "/v1/feedback", "", std::string("Authorization: Bearer ") + kToken + "\r\n").body);
  }
  double metric(const std::string& series) {
    const std::string text = request(server->port(), "GET", "/metrics").body;
    const auto at = text.find("\n" + series + " ");
    if (at == std::string::npos) return -1;
    return std::stod(text.substr(at + series.size() + 2));
  }
  std::shared_ptr<learn::FeedbackService> feedback;
  std::unique_ptr<serve::Server> server;
  std::thread thread;
};

std::string items_json(const data::Dataset& ds, const std::string& id_prefix = "") {
  nlohmann::json items = nlohmann::json::array();
  for (std::size_t i = 0; i < ds.size(); ++i) {
    nlohmann::json it = {{"text", ds.texts[i]}, {"label", ds.labels[i]}};
    if (!id_prefix.empty()) it["id"] = id_prefix + std::to_string(i);
    items.push_back(it);
  }
  return nlohmann::json{{"items", items}}.dump();
}

std::string message(const RawResponse& r) { return nlohmann::json::parse(r.body)["error"]["message"]; }
std::string code(const RawResponse& r) { return nlohmann::json::parse(r.body)["error"]["code"]; }

}  // namespace

TEST(FeedbackRoute, EveryBadRequestAnswersWithItsOwnMessage) {
  auto o = options("bad");
  o.max_items_per_request = 5;
  o.max_items_per_minute = 8;
  Serving s(o);
  const std::string one = R"({"items": [{"text": "moon orbit", "label": "astro"}]})";
  struct Case {
    std::string body, token;
    int status;
    std::string code, message;
  };
  const std::vector<Case> cases = {
      {one, "", 401, "unauthorized",
       "/v1/feedback needs the header `Authorization: Bearer <token>` (the server's --feedback-token-file)"},
      {one, "wrong-token-0123456789", 401, "unauthorized", "the bearer token does not match the server's --feedback-token-file"},
      {R"({"items": [)", kToken, 400, "invalid_json", "the request body is not valid JSON (at byte 12); send {\"items\""},
      {R"({"texts": []})", kToken, 400, "invalid_request", "the body needs an \"items\" array"},
      {R"({"items": []})", kToken, 400, "invalid_request", "\"items\" is empty"},
      {R"({"items": [{"text": "moon"}]})", kToken, 400, "invalid_request", "items[0].label is missing, empty or not a string"},
      {R"({"items": [{"label": "astro"}]})", kToken, 400, "missing_modality",
       "items[0] has no \"text\"; this model reads a text per item"},
      {R"({"items": [{"text": 7, "label": "astro"}]})", kToken, 400, "invalid_request", "items[0].text is not a string"},
      {R"({"items": [{"text": "a", "label": "astro", "weight": 2}]})", kToken, 400, "unknown_field",
       "items[0] has an unknown field \"weight\"; send {\"items\""},
      {R"({"items": [{"text": "a", "label": "astro", "id": 1.5}]})", kToken, 400, "invalid_request",
       "items[0].id must be a string or an integer"},
      {R"({"items": [{"text": "moon", "image": "iVBORw0KGgo=", "label": "astro"}]})", kToken, 400, "unexpected_modality",
       "items[0] has an \"image\"; this model reads text only; send \"text\""},
      {R"({"items": [{"text": "a", "label": "astro"}, {"text": "guitar", "label": "music"}]})", kToken, 400, "unknown_label",
       "items[1].label 'music' is not one of the model's 3 labels (astro, cook, sail); fix the label, or restart the "
       "server with --allow-new-labels to learn it as a new class"},
      {items_json(learn_test::topics(6, 3)), kToken, 429, "too_many_items",
       "\"items\" holds 6 items, more than the 5 one request may carry (--feedback-max-items); split it"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.body);
    const auto r = s.post(c.body, c.token);
    EXPECT_EQ(r.status, c.status) << r.body;
    EXPECT_EQ(code(r), c.code);
    EXPECT_NE(message(r).find(c.message), std::string::npos) << message(r);
    if (c.status == 401) {
      EXPECT_EQ(r.headers.at("www-authenticate"), "Bearer");
    }
  }
  // Per minute: 5 accepted, the next 5 would make 10 > 8.
  EXPECT_EQ(s.post(items_json(learn_test::topics(5, 4))).status, 200);
  const auto r = s.post(items_json(learn_test::topics(5, 5)));
  ASSERT_EQ(r.status, 429) << r.body;
  EXPECT_EQ(code(r), "rate_limited");
  EXPECT_NE(message(r).find("this token sent 5 items in the last minute; 5 more would pass the 8 a minute allowed "
                            "(--feedback-max-items-per-minute)"),
            std::string::npos)
      << message(r);
  const int retry = std::stoi(r.headers.at("retry-after"));
  EXPECT_GE(retry, 1);
  EXPECT_LE(retry, 60);
  // Nothing refused reached the log.
  EXPECT_EQ(s.status()["log_items"], 5);
  EXPECT_EQ(s.metric("kiln_feedback_items_total{model=\"model\",result=\"accepted\"}"), 5);
  EXPECT_GE(s.metric("kiln_feedback_items_total{model=\"model\",result=\"rejected\"}"), 5 + 6);
  const auto put = request(s.server->port(), "PUT", "/v1/feedback", one);
  EXPECT_EQ(put.status, 405);
}

TEST(FeedbackRoute, DuplicatesByIdAreIgnoredAndAcceptedItemsAreLoggedBeforeTheAnswer) {
  auto o = options("dups");
  Serving s(o);
  auto r = s.post(R"({"items": [{"text": "moon orbit", "label": "astro", "id": "a"},
                                {"text": "bread oven", "label": "cook", "id": "b"},
                                {"text": "moon orbit", "label": "astro", "id": "a"},
                                {"text": "boat wind", "label": "sail"}]})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(nlohmann::json::parse(r.body), nlohmann::json::parse(R"({"accepted": 3, "duplicates": 1})"));
  // The log, read through its own connection the moment the answer arrived.
  learn::FeedbackLog log((fs::path(o.state_dir) / "feedback.sqlite").string());
  EXPECT_EQ(log.size(), 3);
  r = s.post(R"({"items": [{"text": "moon", "label": "astro", "id": "b"}, {"text": "salt", "label": "cook", "id": 7}]})");
  EXPECT_EQ(nlohmann::json::parse(r.body), nlohmann::json::parse(R"({"accepted": 1, "duplicates": 1})"));
  const auto items = log.read_after(0, 100);
  ASSERT_EQ(items.size(), 4u);
  EXPECT_EQ(items[1].id, "b");
  EXPECT_EQ(items[1].example.label, "cook");
  EXPECT_EQ(items[3].id, "7");
  EXPECT_EQ(s.metric("kiln_feedback_items_total{model=\"model\",result=\"duplicate\"}"), 2);
}

TEST(FeedbackLoop, PromotesThroughTheHotSwapResumesAndRollsBack) {
  auto o = options("promote");
  o.learn.update.allow_new_labels = true;
  std::string first_promoted;
  {
    Serving s(o);
    const std::string original = s.server->model_version();
    const auto r = s.post(items_json(learn_test::topics(300, 11, {"astro", "cook", "sail", "music"}), "m"));
    ASSERT_EQ(r.status, 200) << r.body;
    ASSERT_TRUE(s.feedback->wait_idle(120));
    const auto st = s.status();
    ASSERT_GE(st["promoted"].get<int>(), 1) << st.dump();
    EXPECT_NE(s.server->model_version(), original);
    EXPECT_EQ(s.server->artifact_of("model"), (fs::path(o.state_dir) / "versions" / st["version"].get<std::string>()).string());
    EXPECT_EQ(s.metric("kiln_model_updates_total{model=\"model\",result=\"promoted\"}"), st["promoted"].get<int>());
    EXPECT_GT(s.metric("kiln_model_gate_macro_f1{model=\"model\",role=\"served\"}"), 0);
    EXPECT_GT(s.metric("kiln_replay_buffer_items{model=\"model\"}"), 0);
    EXPECT_GE(s.metric("kiln_model_seconds_since_promotion{model=\"model\"}"), 0);
    // The served model predicts the new class.
    const auto p = request(s.server->port(), "POST", "/v1/predict", R"({"texts": ["guitar song drum piano"]})");
    EXPECT_NE(p.body.find("music"), std::string::npos) << p.body;
    first_promoted = st["version"];
  }
  // A restart serves the promoted version again.
  Serving s(o);
  EXPECT_EQ(s.server->artifact_of("model"), (fs::path(o.state_dir) / "versions" / first_promoted).string());
  EXPECT_EQ(s.status()["log_items"], 300);
  // Rollback walks the lineage back to the original artifact, then has nothing left.
  const auto lineage =
      artifact::load_artifact((fs::path(o.state_dir) / "versions" / first_promoted).string()).manifest.lineage;
  const std::string parent = lineage["parent_version"];
  auto r = request(s.server->port(), "POST", "/v1/admin/rollback");
  ASSERT_EQ(r.status, 200) << r.body;
  auto j = nlohmann::json::parse(r.body);
  EXPECT_EQ(j["from"], first_promoted);
  EXPECT_EQ(j["to"], parent);
  EXPECT_EQ(j["model_version"], s.server->model_version());
  for (int i = 0; i < 10 && s.status()["served_version"] != "original"; ++i) {
    ASSERT_EQ(request(s.server->port(), "POST", "/v1/admin/rollback").status, 200);
  }
  EXPECT_EQ(s.server->artifact_of("model"), (artifact_dir() / "model").string());
  r = request(s.server->port(), "POST", "/v1/admin/rollback");
  EXPECT_EQ(r.status, 409);
  EXPECT_EQ(code(r), "nothing_to_roll_back");
  EXPECT_NE(message(r).find("nothing to roll back: the original artifact"), std::string::npos) << r.body;
}

TEST(FeedbackLoop, APoisonedStreamIsStoppedByTheGate) {
  auto o = options("poison");
  Serving s(o);
  const std::string before = s.server->model_version();
  auto stream = learn_test::topics(300, 12);
  std::mt19937 rng(5);
  const std::vector<std::string> labels = {"astro", "cook", "sail"};
  for (auto& l : stream.labels) l = labels[rng() % 3];
  ASSERT_EQ(s.post(items_json(stream)).status, 200);
  ASSERT_TRUE(s.feedback->wait_idle(120));
  const auto st = s.status();
  EXPECT_GE(st["updates"].get<int>(), 3) << st.dump();
  EXPECT_EQ(st["promoted"], 0) << st.dump();
  EXPECT_EQ(s.server->model_version(), before);
  EXPECT_EQ(s.metric("kiln_model_updates_total{model=\"model\",result=\"rejected\"}"), st["updates"].get<int>());
  EXPECT_LT(s.metric("kiln_feedback_online_accuracy{model=\"model\"}"), 0.6);
}

TEST(FeedbackOptions, StateDirectoryStaysOutOfModelsAndFlagsAreChecked) {
  EXPECT_EQ(learn::default_state_dir("/srv/models/news/", "", "news"), "/srv/models/news.learn");
  EXPECT_EQ(learn::default_state_dir("/srv/repo/news", "/srv/repo", "news"), "/srv/repo.learn/news");
  auto o = options("inside");
  o.state_dir = (artifact_dir() / "model" / "learn").string();
  try {
    Serving s(o);
    ADD_FAILURE() << "expected ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("lies inside the served artifact"), std::string::npos) << e.what();
  }
  o = options("foreign");
  fs::create_directories(o.state_dir);
  std::ofstream(fs::path(o.state_dir) / "notes.txt") << "not kiln's\n";
  try {
    Serving s(o);
    ADD_FAILURE() << "expected ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("--state-dir " + o.state_dir + " is not empty and holds no kiln learn state"),
              std::string::npos)
        << e.what();
  }
  o = options("short");
  o.token = "short";
  EXPECT_THROW(learn::FeedbackService{o}, ConfigError);
  o = options("limits");
  o.max_items_per_minute = 0;
  try {
    learn::FeedbackService f(o);
    ADD_FAILURE() << "expected ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_STREQ(e.what(), "--feedback-max-items-per-minute must be >= 1, got 0");
  }
}

TEST(GatedUpdate, SignTestIsTheOneSidedBinomialTail) {
  EXPECT_DOUBLE_EQ(learn::sign_test_p(0, 0), 1.0);
  EXPECT_NEAR(learn::sign_test_p(5, 0), 1.0 / 32, 1e-12);
  EXPECT_NEAR(learn::sign_test_p(3, 1), 5.0 / 16, 1e-12);
  EXPECT_NEAR(learn::sign_test_p(10, 10), (1048576.0 + 184756.0) / 2097152.0, 1e-12);
  EXPECT_NEAR(learn::sign_test_p(0, 7), 1.0, 1e-12);
}

TEST(FeedbackLoop, UpdateIntervalLearnsWhatWaitsBeforeUpdateEvery) {
  auto o = options("interval");
  o.learn.update_every = 100000;
  o.update_interval_s = 0.2;
  Serving s(o);
  ASSERT_EQ(s.post(items_json(learn_test::topics(80, 21), "i")).status, 200);
  ASSERT_TRUE(s.feedback->wait_idle(120));
  nlohmann::json st;
  for (int i = 0; i < 600; ++i) {  // the interval elapses on the background thread's clock
    st = s.status();
    if (st["updates"].get<int>() >= 1) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_GE(st["updates"].get<int>(), 1) << st.dump();
  std::ifstream curve(fs::path(o.state_dir) / "curve.jsonl");
  std::string line;
  ASSERT_TRUE(std::getline(curve, line));
  EXPECT_EQ(nlohmann::json::parse(line)["trigger"], "interval") << line;
}

TEST(FeedbackLog, ACorruptOrForeignLogIsNamed) {
  const auto dir = learn_test::fresh_dir("feedback_log");
  fs::create_directories(dir);
  const auto path = (dir / "feedback.sqlite").string();
  std::ofstream(path) << "this is not a database, just text that is long enough to have a header page";
  try {
    learn::FeedbackLog log(path);
    ADD_FAILURE() << "expected IoError";
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }
  fs::remove(path);
  {
    learn::FeedbackLog log(path);
    EXPECT_EQ(log.size(), 0);
  }
  fs::remove_all(dir);
}

TEST(FeedbackLog, StoresImagesAsFilesBesideItAndReadsThemBack) {
  const auto dir = learn_test::fresh_dir("feedback_log_images");
  fs::create_directories(dir);
  const auto path = (dir / "feedback.sqlite").string();
  const std::string png = std::string("\x89PNG\r\n\x1a\n", 8) + "rest of the file";
  {
    learn::FeedbackLog log(path);
    learn::FeedbackItem image_only, both, text_only;
    image_only.example.image = data::ImageRef{{}, png};
    image_only.example.label = "seven";
    both.example.text = "a caption";
    both.example.image = data::ImageRef{{}, std::string("\xFF\xD8\xFF", 3)};
    both.example.label = "three";
    text_only.example.text = "";
    text_only.example.label = "one";
    EXPECT_EQ(log.append({image_only, both, text_only}).accepted, 3);
    learn::FeedbackItem by_path;
    by_path.example.image = data::ImageRef{"x.png", {}};
    by_path.example.label = "seven";
    EXPECT_THROW((void)log.append({by_path}), DataError);  // bytes only; the transaction rolls back
    EXPECT_EQ(log.size(), 3);
  }
  learn::FeedbackLog log(path);
  const auto items = log.read_after(0, 10);
  ASSERT_EQ(items.size(), 3u);
  EXPECT_FALSE(items[0].example.text);
  ASSERT_TRUE(items[0].example.image);
  EXPECT_EQ(items[0].example.image->path, (fs::absolute(dir) / "images" / "1.png").lexically_normal().string());
  std::ifstream in(items[0].example.image->path, std::ios::binary);
  EXPECT_EQ(std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>()), png);
  EXPECT_EQ(*items[1].example.text, "a caption");
  EXPECT_EQ(fs::path(items[1].example.image->path).filename(), "2.jpg");
  ASSERT_TRUE(items[2].example.text);  // an empty text is still a text
  EXPECT_FALSE(items[2].example.image);
  fs::remove_all(dir);
}

TEST(FeedbackLog, ALogOfSchemaVersion1IsMigrated) {
  const auto dir = learn_test::fresh_dir("feedback_log_v1");
  fs::create_directories(dir);
  const auto path = (dir / "feedback.sqlite").string();
  {
    tune::StorageOptions so;
    auto db = tune::open_sqlite_connection(path, path, so);
    db->execute_script(R"(
CREATE TABLE kiln_feedback_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE kiln_feedback (seq INTEGER PRIMARY KEY AUTOINCREMENT, item_id TEXT UNIQUE, text TEXT NOT NULL,
  label TEXT NOT NULL, received_at REAL NOT NULL);
INSERT INTO kiln_feedback_meta (key, value) VALUES ('schema_version', '1');
INSERT INTO kiln_feedback (item_id, text, label, received_at) VALUES ('a', 'moon orbit', 'astro', 1.0);
)");
  }
  learn::FeedbackLog log(path);
  const auto items = log.read_after(0, 10);
  ASSERT_EQ(items.size(), 1u);
  EXPECT_EQ(*items[0].example.text, "moon orbit");
  EXPECT_FALSE(items[0].example.image);
  learn::FeedbackItem more;
  more.example.text = "salt";
  more.example.label = "cook";
  EXPECT_EQ(log.append({more}).accepted, 1);
  EXPECT_EQ(log.size(), 2);
  fs::remove_all(dir);
}

TEST(FeedbackLoop, ShadowHoldsACandidateUntilItHasAnsweredNRequests) {
  auto o = options("shadow");
  o.learn.update.allow_new_labels = true;
  o.shadow_requests = 4;
  Serving s(o);
  const std::string original = s.server->model_version();
  ASSERT_EQ(s.post(items_json(learn_test::topics(300, 11, {"astro", "cook", "sail", "music"}), "m")).status, 200);
  ASSERT_TRUE(s.feedback->wait_idle(120));
  auto st = s.status();
  ASSERT_EQ(st["shadow"]["active"], true) << st.dump();
  EXPECT_EQ(st["promoted"], 0);
  EXPECT_EQ(s.server->model_version(), original);  // held, not served
  for (int i = 0; i < 4; ++i) {
    ASSERT_EQ(request(s.server->port(), "POST", "/v1/predict", R"({"texts": ["guitar song", "moon orbit star"]})").status, 200);
  }
  for (int i = 0; i < 600 && s.status()["promoted"] == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  st = s.status();
  ASSERT_GE(st["promoted"].get<int>(), 1) << st.dump();
  EXPECT_NE(s.server->model_version(), original);
  const auto v1 = artifact::load_artifact((fs::path(o.state_dir) / "versions" / "v0001").string());
  EXPECT_EQ(v1.manifest.lineage["shadow"]["requests"], 4) << v1.manifest.lineage.dump();
  EXPECT_EQ(v1.manifest.lineage["shadow"]["texts"], 8);
  const double agreement = v1.manifest.lineage["shadow"]["agreement"];
  EXPECT_GE(agreement, 0.0);
  EXPECT_LE(agreement, 1.0);
  EXPECT_DOUBLE_EQ(s.metric("kiln_model_shadow_agreement{model=\"model\"}"), agreement);
}

