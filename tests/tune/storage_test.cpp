// One suite for both study storages: every TEST_P runs against SQLite (a temporary file) and
// PostgreSQL (KILN_TEST_POSTGRES_URL, set by tests/tune/with_postgres.sh; skipped when unset).
#include "kiln/tune/storage.h"

#include "tune/storage_test_util.h"

namespace kiln::tune {
namespace {

using namespace storage_testing;

class StorageTest : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    if (GetParam() == Backend::kPostgres) {
      url_ = postgres_url();
      if (url_.empty()) GTEST_SKIP() << kHowToRunPostgres;
      raw_target_ = url_;
    } else {
      raw_target_ = (dir_.path / "study.db").string();
      url_ = "sqlite:///" + raw_target_;  // four slashes: an absolute path
    }
    s_ = open_storage(url_);
    name_ = std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()) + "-" + unique_suffix();
  }

  /// Creates `n` trials with no parameters; returns them.
  std::vector<Trial> create(int64_t study_id, int n) {
    std::vector<Trial> out;
    for (int i = 0; i < n; ++i) out.push_back(s_->create_trial(study_id, {}, {}));
    return out;
  }

  TempDir dir_;
  std::string url_;
  std::string raw_target_;  // file path (SQLite) or libpq URL
  std::string name_;        // a study name unique to this test
  std::unique_ptr<Storage> s_;
};

TEST_P(StorageTest, CreatesAndLoadsStudy) {
  const StudyInfo a = s_->create_or_load_study(name_, Direction::kMaximize);
  EXPECT_GE(a.id, 0);
  EXPECT_EQ(a.name, name_);
  EXPECT_EQ(a.direction, Direction::kMaximize);
  const StudyInfo again = s_->create_or_load_study(name_, Direction::kMaximize);
  EXPECT_EQ(again.id, a.id);
  ASSERT_TRUE(s_->find_study(name_).has_value());
  EXPECT_EQ(s_->find_study(name_)->id, a.id);
  EXPECT_FALSE(s_->find_study(name_ + "-absent").has_value());
  const StudyInfo b = s_->create_or_load_study(name_ + "-b", Direction::kMinimize);
  EXPECT_NE(b.id, a.id);
  std::set<std::string> names;
  for (const auto& st : s_->list_studies()) names.insert(st.name);
  EXPECT_TRUE(names.count(name_) && names.count(name_ + "-b"));

  const std::string msg = error_of([&] { (void)s_->create_or_load_study(name_, Direction::kMinimize); });
  EXPECT_TRUE(Contains(msg, "study '" + name_ + "' exists with direction maximize, not minimize; use direction maximize"));
  EXPECT_THROW((void)s_->create_or_load_study(name_, Direction::kMinimize), ConfigError);
  EXPECT_THROW((void)s_->create_or_load_study("", Direction::kMinimize), ConfigError);
}

TEST_P(StorageTest, StudyAttrsRoundTripAndOverwrite) {
  const StudyInfo st = s_->create_or_load_study(name_, Direction::kMinimize);
  s_->set_study_attr(st.id, "metric", "val_loss");
  s_->set_study_attr(st.id, "space", "{\"lr\": 1}");
  s_->set_study_attr(st.id, "metric", "val_f1");
  const auto loaded = s_->create_or_load_study(name_, Direction::kMinimize);
  EXPECT_EQ(loaded.user_attrs, (std::map<std::string, std::string>{{"metric", "val_f1"}, {"space", "{\"lr\": 1}"}}));
  EXPECT_TRUE(Contains(error_of([&] { s_->set_study_attr(987654321, "k", "v"); }), "no study with id 987654321"));
  EXPECT_THROW(s_->set_study_attr(987654321, "k", "v"), ConfigError);
}

TEST_P(StorageTest, TrialNumbersStartAtZeroPerStudy) {
  const auto a = s_->create_or_load_study(name_, Direction::kMinimize);
  const auto b = s_->create_or_load_study(name_ + "-b", Direction::kMinimize);
  const auto ta = create(a.id, 5);
  const auto tb = create(b.id, 2);
  std::set<int64_t> ids;
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(ta[i].number, i);
    EXPECT_EQ(ta[i].state, TrialState::kRunning);
    ids.insert(ta[i].id);
  }
  EXPECT_EQ(tb[0].number, 0);
  EXPECT_EQ(tb[1].number, 1);
  ids.insert(tb[0].id);
  ids.insert(tb[1].id);
  EXPECT_EQ(ids.size(), 7u);
  const Trial t = s_->trial(ta[3].id);
  EXPECT_EQ(t.number, 3);
  EXPECT_NEAR(t.datetime_start, std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count(), 60);
  ASSERT_TRUE(t.heartbeat.has_value());
  EXPECT_FALSE(t.datetime_complete.has_value());
  EXPECT_FALSE(t.value.has_value());
  EXPECT_TRUE(Contains(error_of([&] { (void)s_->create_trial(987654321, {}, {}); }), "no study with id 987654321"));
  EXPECT_TRUE(Contains(error_of([&] { (void)s_->trial(987654321); }), "no trial with id 987654321"));
}

TEST_P(StorageTest, ParamsAndDistributionsRoundTrip) {
  const auto st = s_->create_or_load_study(name_, Direction::kMaximize);
  std::map<std::string, Distribution> d;
  d["f"] = Distribution{Distribution::Kind::kFloat, -1.5, 2.5, false, std::nullopt, {}};
  d["f_log"] = Distribution{Distribution::Kind::kFloat, 1e-5, 1e-1, true, std::nullopt, {}};
  d["f_step"] = Distribution{Distribution::Kind::kFloat, 0.0, 1.0, false, 0.25, {}};
  d["i"] = Distribution{Distribution::Kind::kInt, -3, 7, false, 1.0, {}};
  d["i_log"] = Distribution{Distribution::Kind::kInt, 1, 1024, true, 1.0, {}};
  d["i_step"] = Distribution{Distribution::Kind::kInt, 2, 10, false, 2.0, {}};
  d["cat"] = Distribution{Distribution::Kind::kCategorical, 0, 1, false, std::nullopt,
                          {"adam", 1, 2.5, true, false, "sgd"}};
  const double third = 1.0 / 3.0;  // needs all 17 digits to survive
  const std::map<std::string, double> p{{"f", third}, {"f_log", 3.0000000000000001e-4}, {"f_step", 0.75},
                                        {"i", -2}, {"i_log", 512}, {"i_step", 6}, {"cat", 3}};
  const Trial created = s_->create_trial(st.id, p, d);
  for (const Trial& t : {s_->trial(created.id), s_->trials(st.id).at(0)}) {
    EXPECT_EQ(t.params, p);
    EXPECT_EQ(t.params.at("f"), third);
    ASSERT_EQ(t.distributions.size(), d.size());
    for (const auto& [name, dist] : d) EXPECT_EQ(t.distributions.at(name), dist) << name;
    const auto ext = t.external_params();
    EXPECT_EQ(ext["cat"], nlohmann::json(true));
    EXPECT_EQ(ext["i_log"], nlohmann::json(512));
    EXPECT_TRUE(t.distributions.at("cat").choices[1].is_number_integer());
    EXPECT_TRUE(t.distributions.at("cat").choices[2].is_number_float());
    EXPECT_TRUE(t.distributions.at("cat").choices[4].is_boolean());
  }
}

TEST_P(StorageTest, RejectsParamsOutsideTheirDistribution) {
  const auto st = s_->create_or_load_study(name_, Direction::kMaximize);
  const Distribution unit{Distribution::Kind::kFloat, 0, 1, false, std::nullopt, {}};
  EXPECT_TRUE(Contains(error_of([&] { (void)s_->create_trial(st.id, {{"lr", 2.0}}, {{"lr", unit}}); }),
              "parameter `lr` = 2 lies outside its distribution"));
  EXPECT_TRUE(Contains(error_of([&] { (void)s_->create_trial(st.id, {{"lr", 0.5}}, {}); }),
              "parameter `lr` has no distribution"));
  EXPECT_THROW((void)s_->create_trial(st.id, {{"lr", 2.0}}, {{"lr", unit}}), ConfigError);
  EXPECT_TRUE(s_->trials(st.id).empty()) << "a rejected trial must not take a number";
  EXPECT_EQ(s_->create_trial(st.id, {{"lr", 0.5}}, {{"lr", unit}}).number, 0);
}

TEST_P(StorageTest, ReportOverwritesAndKeepsNonFiniteValues) {
  const auto st = s_->create_or_load_study(name_, Direction::kMinimize);
  const Trial t = s_->create_trial(st.id, {}, {});
  s_->report(t.id, 0, 0.5);
  s_->report(t.id, 1, std::nan(""));
  s_->report(t.id, 2, HUGE_VAL);
  s_->report(t.id, 3, -HUGE_VAL);
  s_->report(t.id, 4, 1e-300);
  s_->report(t.id, 0, 0.25);
  const auto iv = s_->trial(t.id).intermediate;
  ASSERT_EQ(iv.size(), 5u);
  EXPECT_EQ(iv.at(0), 0.25);
  EXPECT_TRUE(std::isnan(iv.at(1)));
  EXPECT_EQ(iv.at(2), HUGE_VAL);
  EXPECT_EQ(iv.at(3), -HUGE_VAL);
  EXPECT_EQ(iv.at(4), 1e-300);
  EXPECT_TRUE(Contains(error_of([&] { s_->report(987654321, 0, 1); }), "no trial with id 987654321"));
}

TEST_P(StorageTest, FinishesInEveryStateOnce) {
  const auto st = s_->create_or_load_study(name_, Direction::kMinimize);
  const auto t = create(st.id, 4);
  EXPECT_TRUE(s_->finish_trial(t[0].id, TrialState::kComplete, 1.5));
  EXPECT_TRUE(s_->finish_trial(t[1].id, TrialState::kPruned, 0.75));
  EXPECT_TRUE(s_->finish_trial(t[2].id, TrialState::kFailed, std::nullopt));
  EXPECT_TRUE(s_->finish_trial(t[3].id, TrialState::kComplete, std::nan("")));
  const auto all = s_->trials(st.id);
  EXPECT_EQ(all[0].state, TrialState::kComplete);
  EXPECT_EQ(all[0].value, 1.5);
  EXPECT_TRUE(all[0].datetime_complete.has_value());
  EXPECT_GE(*all[0].datetime_complete, all[0].datetime_start);
  EXPECT_EQ(all[1].state, TrialState::kPruned);
  EXPECT_EQ(all[1].value, 0.75);
  EXPECT_EQ(all[2].state, TrialState::kFailed);
  EXPECT_FALSE(all[2].value.has_value());
  ASSERT_TRUE(all[3].value.has_value());
  EXPECT_TRUE(std::isnan(*all[3].value));
  EXPECT_FALSE(s_->finish_trial(t[0].id, TrialState::kFailed, std::nullopt)) << "already complete";
  EXPECT_EQ(s_->trial(t[0].id).state, TrialState::kComplete);
  EXPECT_EQ(s_->trial(t[0].id).value, 1.5);
  const Trial running = s_->create_trial(st.id, {}, {});
  EXPECT_TRUE(Contains(error_of([&] { (void)s_->finish_trial(running.id, TrialState::kRunning, 1.0); }),
              "with state running; pass complete, pruned or failed"));
  EXPECT_TRUE(Contains(error_of([&] { (void)s_->finish_trial(987654321, TrialState::kComplete, 1.0); }),
              "finish_trial: no trial with id 987654321"));
}

TEST_P(StorageTest, ReportOnFinishedTrialIsClearError) {
  const auto st = s_->create_or_load_study(name_, Direction::kMinimize);
  const Trial t = s_->create_trial(st.id, {}, {});
  s_->report(t.id, 0, 1.0);
  ASSERT_TRUE(s_->finish_trial(t.id, TrialState::kComplete, 1.0));
  EXPECT_THROW(s_->report(t.id, 1, 2.0), TrialNotRunningError);
  EXPECT_TRUE(Contains(error_of([&] { s_->report(t.id, 1, 2.0); }),
              "report(step 1) on trial id " + std::to_string(t.id) + ", which is complete, not running"));
  EXPECT_EQ(s_->trial(t.id).intermediate.size(), 1u);
}

TEST_P(StorageTest, TrialAttrsInAnyState) {
  const auto st = s_->create_or_load_study(name_, Direction::kMinimize);
  const Trial t = s_->create_trial(st.id, {}, {});
  s_->set_trial_attr(t.id, "worker", "host-1");
  s_->set_trial_attr(t.id, "note", "a");
  ASSERT_TRUE(s_->finish_trial(t.id, TrialState::kFailed, std::nullopt));
  s_->set_trial_attr(t.id, "note", "quote ' and \"double\" and ; -- survive");
  EXPECT_EQ(s_->trial(t.id).user_attrs,
            (std::map<std::string, std::string>{{"worker", "host-1"}, {"note", "quote ' and \"double\" and ; -- survive"}}));
  EXPECT_TRUE(Contains(error_of([&] { s_->set_trial_attr(987654321, "k", "v"); }), "no trial with id 987654321"));
}

TEST_P(StorageTest, TrialsFilterByStateInNumberOrder) {
  const auto st = s_->create_or_load_study(name_, Direction::kMaximize);
  const auto other = s_->create_or_load_study(name_ + "-other", Direction::kMaximize);
  const auto t = create(st.id, 6);
  (void)create(other.id, 3);
  ASSERT_TRUE(s_->finish_trial(t[4].id, TrialState::kComplete, 4));
  ASSERT_TRUE(s_->finish_trial(t[1].id, TrialState::kComplete, 1));
  ASSERT_TRUE(s_->finish_trial(t[2].id, TrialState::kPruned, 2));
  ASSERT_TRUE(s_->finish_trial(t[5].id, TrialState::kFailed, std::nullopt));
  const auto numbers = [](const std::vector<Trial>& v) {
    std::vector<int64_t> n;
    for (const auto& x : v) n.push_back(x.number);
    return n;
  };
  EXPECT_EQ(numbers(s_->trials(st.id)), (std::vector<int64_t>{0, 1, 2, 3, 4, 5}));
  EXPECT_EQ(numbers(s_->trials(st.id, {TrialState::kComplete})), (std::vector<int64_t>{1, 4}));
  EXPECT_EQ(numbers(s_->trials(st.id, {TrialState::kPruned, TrialState::kComplete})), (std::vector<int64_t>{1, 2, 4}));
  EXPECT_EQ(numbers(s_->trials(st.id, {TrialState::kRunning})), (std::vector<int64_t>{0, 3}));
  EXPECT_EQ(numbers(s_->trials(other.id)), (std::vector<int64_t>{0, 1, 2}));
  EXPECT_TRUE(s_->trials(987654321).empty());
}

TEST_P(StorageTest, FailsStaleTrialsAndFinishAfterwardReturnsFalse) {
  const auto st = s_->create_or_load_study(name_, Direction::kMinimize);
  const auto t = create(st.id, 3);
  ASSERT_TRUE(s_->finish_trial(t[2].id, TrialState::kComplete, 1.0));
  std::this_thread::sleep_for(std::chrono::milliseconds(1200));
  s_->heartbeat(t[1].id);  // t1's worker is alive; t0's stopped
  EXPECT_EQ(s_->fail_stale_trials(st.id, 0.8), (std::vector<int64_t>{0}));
  EXPECT_TRUE(s_->fail_stale_trials(st.id, 0.8).empty()) << "already failed";
  const Trial stale = s_->trial(t[0].id);
  EXPECT_EQ(stale.state, TrialState::kFailed);
  EXPECT_TRUE(stale.datetime_complete.has_value());
  EXPECT_TRUE(Contains(stale.user_attrs.at("fail_reason"), "no heartbeat for more than 0.8 s: the worker running this trial stopped"));
  EXPECT_EQ(s_->trial(t[1].id).state, TrialState::kRunning);
  EXPECT_EQ(s_->trial(t[2].id).state, TrialState::kComplete);
  // The stale trial's worker comes back: its results are refused, not recorded.
  EXPECT_FALSE(s_->finish_trial(t[0].id, TrialState::kComplete, 0.1));
  EXPECT_EQ(s_->trial(t[0].id).state, TrialState::kFailed);
  EXPECT_FALSE(s_->trial(t[0].id).value.has_value());
  EXPECT_THROW(s_->report(t[0].id, 0, 0.1), TrialNotRunningError);
  const double beat = *s_->trial(t[0].id).heartbeat;
  s_->heartbeat(t[0].id);
  EXPECT_EQ(*s_->trial(t[0].id).heartbeat, beat) << "a heartbeat must not revive a failed trial";
  EXPECT_TRUE(s_->finish_trial(t[1].id, TrialState::kComplete, 0.2));
  EXPECT_TRUE(Contains(error_of([&] { (void)s_->fail_stale_trials(st.id, 0); }),
              "timeout_seconds must be a finite number > 0, got 0"));
}

TEST_P(StorageTest, ConcurrentThreadsGetUniqueGapFreeNumbers) {
  const auto st = s_->create_or_load_study(name_, Direction::kMinimize);
  constexpr int kThreads = 6, kPerThread = 15;
  std::vector<std::vector<Trial>> made(kThreads);
  std::vector<std::string> errors(kThreads);
  std::vector<std::thread> threads;
  for (int w = 0; w < kThreads; ++w) {
    threads.emplace_back([&, w] {
      try {
        // Half the threads share the fixture's storage, half open their own connection.
        std::unique_ptr<Storage> own = w % 2 ? open_storage(url_) : nullptr;
        Storage& s = own ? *own : *s_;
        for (int i = 0; i < kPerThread; ++i) {
          made[w].push_back(s.create_trial(st.id, {}, {}));
          s.report(made[w].back().id, 0, i);
          if (!s.finish_trial(made[w].back().id, TrialState::kComplete, i)) errors[w] = "finish returned false";
        }
      } catch (const std::exception& e) {
        errors[w] = e.what();
      }
    });
  }
  for (auto& th : threads) th.join();
  for (const auto& e : errors) EXPECT_EQ(e, "");
  const auto all = s_->trials(st.id);
  ASSERT_EQ(all.size(), static_cast<std::size_t>(kThreads * kPerThread));
  std::map<int64_t, int64_t> number_of;
  for (std::size_t i = 0; i < all.size(); ++i) {
    EXPECT_EQ(all[i].number, static_cast<int64_t>(i));
    EXPECT_EQ(all[i].state, TrialState::kComplete);
    number_of[all[i].id] = all[i].number;
  }
  for (const auto& v : made) {
    for (const auto& t : v) EXPECT_EQ(number_of.at(t.id), t.number);
  }
}

TEST_P(StorageTest, ConcurrentProcessesGetUniqueGapFreeNumbers) {
  // The children race to create the schema (SQLite: a new file) and the study, then the trials.
  const std::string url = GetParam() == Backend::kSqlite ? "sqlite:///" + (dir_.path / "fresh.db").string() : url_;
  s_.reset();  // nothing open across fork() (SQLite's rule); each child opens its own storage
  constexpr int kProcesses = 4, kPerProcess = 20;
  int gate[2];
  ASSERT_EQ(pipe(gate), 0);
  std::vector<pid_t> children;
  for (int w = 0; w < kProcesses; ++w) {
    const pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      close(gate[1]);
      char c;
      (void)!read(gate[0], &c, 1);  // all children start together when the parent closes the pipe
      try {
        auto s = open_storage(url);
        const auto st = s->create_or_load_study(name_, Direction::kMinimize);
        for (int i = 0; i < kPerProcess; ++i) {
          const Trial t = s->create_trial(st.id, {}, {});
          s->set_trial_attr(t.id, "worker", std::to_string(w));
          if (!s->finish_trial(t.id, TrialState::kComplete, w)) _exit(3);
        }
        _exit(0);
      } catch (const std::exception& e) {
        fprintf(stderr, "child %d: %s\n", w, e.what());
        _exit(2);
      }
    }
    children.push_back(pid);
  }
  close(gate[0]);
  close(gate[1]);
  for (const pid_t pid : children) {
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "child exit status " << status;
  }
  s_ = open_storage(url);
  if (GetParam() == Backend::kSqlite) {
    EXPECT_EQ(s_->list_studies().size(), 1u) << "the racing children must create one study";
  }
  const auto st = s_->find_study(name_);
  ASSERT_TRUE(st.has_value());
  const auto all = s_->trials(st->id);
  ASSERT_EQ(all.size(), static_cast<std::size_t>(kProcesses * kPerProcess));
  std::map<std::string, int> per_worker;
  for (std::size_t i = 0; i < all.size(); ++i) {
    EXPECT_EQ(all[i].number, static_cast<int64_t>(i));
    EXPECT_EQ(all[i].state, TrialState::kComplete);
    ++per_worker[all[i].user_attrs.at("worker")];
  }
  for (int w = 0; w < kProcesses; ++w) EXPECT_EQ(per_worker[std::to_string(w)], kPerProcess) << "worker " << w;
}

TEST_P(StorageTest, RefusesNewerSchemaVersion) {
  s_.reset();
  raw_sql(GetParam(), raw_target_, "UPDATE kiln_schema_version SET version = 99");
  const std::string msg = error_of([&] { (void)open_storage(url_); });
  raw_sql(GetParam(), raw_target_, "UPDATE kiln_schema_version SET version = 1");  // the PostgreSQL db is shared
  EXPECT_TRUE(Contains(msg, "study schema version 99 is newer than this Kiln understands (1); upgrade Kiln"));
  if (GetParam() == Backend::kPostgres) {
    EXPECT_TRUE(Lacks(msg, password_of(url_)));
  }
  EXPECT_NO_THROW((void)open_storage(url_));
}

std::string backend_name(const ::testing::TestParamInfo<Backend>& info) {
  return info.param == Backend::kSqlite ? "sqlite" : "postgres";
}

INSTANTIATE_TEST_SUITE_P(Sqlite, StorageTest, ::testing::Values(Backend::kSqlite), backend_name);
INSTANTIATE_TEST_SUITE_P(Postgres, StorageTest, ::testing::Values(Backend::kPostgres), backend_name);

}  // namespace
}  // namespace kiln::tune
