#include <sys/stat.h>

#include <set>
#include <thread>

#include <gtest/gtest.h>

#include "audit_test_util.h"
#include "vlm/audit/key_file.h"
#include "vlm/audit/record.h"
#include "vlm/audit/verify.h"
#include "vlm/error.h"

namespace vlm::audit {
namespace {

using namespace vlm::audit::testing;
namespace fs = std::filesystem;

VerifyOptions trusted(const AuditOptions& options) {
  VerifyOptions verify;
  verify.trusted_public_key = load_public_key(options.key_file.string() + ".ed25519.pub");
  verify.checkpoint_files = {options.checkpoint_copy};
  return verify;
}

std::string describe(const VerifyReport& report) {
  return report.failure
             ? report.failure->file + ":" + std::to_string(report.failure->line) + ": " + report.failure->message
             : "ok";
}

TEST(AuditLog, ChainVerifiesAndCarriesOnlyDigestsOfPrivateText) {
  const auto dir = fresh_dir();
  auto options = options_in(dir);
  options.checkpoint_every_records = 4;
  std::vector<Appended> appended;
  {
    AuditLog log(options);
    EXPECT_TRUE(log.recovery().new_log);
    for (int i = 0; i < 10; ++i) appended.push_back(log.append(entry(i)));
    log.close();
  }
  const auto report = verify_log({options.directory}, trusted(options));
  ASSERT_TRUE(report.ok) << describe(report);
  // file_start + 10 requests + checkpoints after requests 4, 8 and at close.
  EXPECT_EQ(report.records, 14U);
  EXPECT_EQ(report.checkpoints, 3U);
  EXPECT_EQ(report.external_checkpoints, 3U);

  const std::string data = slurp(options.directory / kActiveFileName);
  EXPECT_EQ(data.find("how many people"), std::string::npos);
  EXPECT_EQ(data.find("think-observe"), std::string::npos);

  // A verifier holding the key confirms a candidate transcript against the record, and only the right one.
  const auto key = load_key_file(options.key_file);
  const auto found = find_records({options.directory}, "req-3");
  ASSERT_EQ(found.size(), 1U);
  const auto& record = found[0].record;
  EXPECT_EQ(record["record_hash"], appended[3].record_hash);
  EXPECT_EQ(record["transcript_hmac"], text_hmac(key, "transcript", *entry(3).transcript));
  EXPECT_NE(record["transcript_hmac"], text_hmac(key, "transcript", *entry(4).transcript));
  EXPECT_EQ(record["question_hmac"], text_hmac(key, "question", *entry(3).question));
  EXPECT_EQ(find_records({options.directory}, appended[3].record_hash).size(), 1U);
}

TEST(AuditLog, KeyFileCreatedPrivateAndRefusedWhenOthersCanRead) {
  const auto dir = fresh_dir();
  const auto options = options_in(dir);
  { AuditLog log(options); }
  struct stat info {};
  ASSERT_EQ(::stat(options.key_file.c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 0777, 0600U);
  ASSERT_EQ(::stat((options.key_file.string() + ".ed25519").c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 0777, 0600U);
  const auto key_before = load_key_file(options.key_file);
  { AuditLog log(options); }  // reopening keeps the key
  EXPECT_EQ(load_key_file(options.key_file), key_before);

  for (mode_t mode : {0640, 0604, 0620}) {
    ::chmod(options.key_file.c_str(), mode);
    try {
      AuditLog log(options);
      ADD_FAILURE() << "key file with mode " << std::oct << mode << " was accepted";
    } catch (const Error& error) {
      EXPECT_EQ(error.code(), ErrorCode::kInvalidArgument);
      EXPECT_NE(std::string(error.what()).find("chmod 600"), std::string::npos) << error.what();
    }
  }
  ::chmod(options.key_file.c_str(), 0600);
  spit(options.key_file, "not hex at all");
  EXPECT_THROW(AuditLog log(options), Error);
}

TEST(AuditLog, SecondWriterOnSameDirectoryIsRefused) {
  const auto options = options_in(fresh_dir());
  AuditLog first(options);
  EXPECT_THROW(AuditLog second(options), Error);
}

TEST(AuditLog, RotationContinuesChainAcrossFiles) {
  const auto dir = fresh_dir();
  auto options = options_in(dir);
  options.rotate_bytes = 2000;
  options.checkpoint_every_records = 7;
  {
    AuditLog log(options);
    for (int i = 0; i < 40; ++i) log.append(entry(i));
  }
  std::vector<std::string> rotated;
  for (const auto& item : fs::directory_iterator(options.directory)) {
    if (is_rotated_file_name(item.path().filename().string())) rotated.push_back(item.path().filename().string());
  }
  std::sort(rotated.begin(), rotated.end());
  ASSERT_GE(rotated.size(), 3U);
  EXPECT_EQ(rotated.front(), "audit-000000000000.jsonl");
  // The active file starts with a record naming the newest rotated file and its last hash.
  const auto active = split_lines(slurp(options.directory / kActiveFileName));
  const auto previous = split_lines(slurp(options.directory / rotated.back()));
  const auto head = nlohmann::json::parse(active.front());
  EXPECT_EQ(head["type"], "file_start");
  EXPECT_EQ(head["prev_file"], rotated.back());
  EXPECT_EQ(head["prev_hash"], nlohmann::json::parse(previous.back())["record_hash"]);

  auto verify = trusted(options);
  const auto report = verify_log({options.directory}, verify);
  ASSERT_TRUE(report.ok) << describe(report);
  EXPECT_EQ(report.files, rotated.size() + 1);

  // Verifying a suffix needs --partial, and then still checks every checkpoint it can.
  std::vector<fs::path> suffix = {options.directory / rotated.back(), options.directory / kActiveFileName};
  EXPECT_FALSE(verify_log(suffix, verify).ok);
  verify.allow_partial = true;
  const auto partial = verify_log(suffix, verify);
  EXPECT_TRUE(partial.ok) << describe(partial);

  // Reopening resumes the chain in the active file.
  {
    AuditLog log(options);
    EXPECT_FALSE(log.recovery().new_log);
    log.append(entry(99));
  }
  verify.allow_partial = false;
  EXPECT_TRUE(verify_log({options.directory}, verify).ok);
}

TEST(AuditLog, TornLastLineIsDroppedReportedAndChainResumes) {
  const auto dir = fresh_dir();
  auto options = options_in(dir);
  {
    AuditLog log(options);
    for (int i = 0; i < 5; ++i) log.append(entry(i));
  }
  const auto active = options.directory / kActiveFileName;
  const std::string intact = slurp(active);
  const std::string torn = R"({"v":1,"type":"request","seq":7,"request_id":"req-cut)";
  spit(active, intact + torn);
  EXPECT_FALSE(verify_log({options.directory}, trusted(options)).ok) << "a torn tail must not verify as-is";
  {
    AuditLog log(options);
    EXPECT_EQ(log.recovery().dropped_bytes, torn.size());
    EXPECT_EQ(log.recovery().dropped_sha256, to_hex(sha256(std::string_view(torn))));
    EXPECT_EQ(log.recovery().resumed_file, "audit.jsonl");
    log.append(entry(5));
  }
  const auto report = verify_log({options.directory}, trusted(options));
  ASSERT_TRUE(report.ok) << describe(report);
  EXPECT_NE(slurp(active).find("\"type\":\"recovery\""), std::string::npos);
  EXPECT_EQ(slurp(active).rfind(intact, 0), 0U) << "recovery must not rewrite acknowledged records";
}

// A crash inside the checkpoint copy's append (seen in audit_crash: "checkpoint copy: not valid
// JSON" mid-file after the next run appended behind the torn line).
TEST(AuditLog, TornCheckpointCopyLineIsDroppedAtStart) {
  const auto dir = fresh_dir();
  auto options = options_in(dir);
  {
    AuditLog log(options);
    for (int i = 0; i < 3; ++i) log.append(entry(i));
  }
  const std::string intact = slurp(options.checkpoint_copy);
  ASSERT_FALSE(intact.empty());
  spit(options.checkpoint_copy, intact + R"({"v":1,"type":"checkpoint","seq":9,"tree_si)");
  {
    AuditLog log(options);
    log.append(entry(3));
  }
  const auto report = verify_log({options.directory}, trusted(options));
  ASSERT_TRUE(report.ok) << describe(report);
  EXPECT_EQ(slurp(options.checkpoint_copy).rfind(intact, 0), 0U) << "acknowledged checkpoints must stay";
}

TEST(AuditLog, CorruptRecordInTheMiddleRefusesToStart) {
  const auto options = options_in(fresh_dir());
  {
    AuditLog log(options);
    for (int i = 0; i < 3; ++i) log.append(entry(i));
  }
  const auto active = options.directory / kActiveFileName;
  std::string data = slurp(active);
  data[data.find("req-1") + 4] = '9';
  spit(active, data);
  try {
    AuditLog log(options);
    ADD_FAILURE() << "a log with an altered record was reopened for appending";
  } catch (const Error& error) {
    EXPECT_EQ(error.code(), ErrorCode::kIo);
    EXPECT_NE(std::string(error.what()).find("line 3"), std::string::npos) << error.what();
  }
}

TEST(AuditLog, CrashBetweenRotationStepsResumes) {
  const auto options = options_in(fresh_dir());
  {
    AuditLog log(options);
    for (int i = 0; i < 3; ++i) log.append(entry(i));
  }
  // As if killed after renaming the full file away but before the new file got its first record.
  const auto active = options.directory / kActiveFileName;
  fs::rename(active, options.directory / rotated_file_name(0));
  spit(active, R"({"v":1,"type":"file_st)");
  {
    AuditLog log(options);
    EXPECT_EQ(log.recovery().resumed_file, rotated_file_name(0));
    log.append(entry(3));
  }
  const auto report = verify_log({options.directory}, trusted(options));
  EXPECT_TRUE(report.ok) << describe(report);
  EXPECT_EQ(report.files, 2U);
}

TEST(AuditLog, TimersCheckpointAndRotateWithoutFsyncPerRecord) {
  const auto options = options_in(fresh_dir());
  auto tuned = options;
  tuned.fsync_each_record = false;
  tuned.checkpoint_every_records = 0;  // only the timer may checkpoint
  tuned.checkpoint_interval = std::chrono::milliseconds(100);
  tuned.rotate_bytes = 0;
  tuned.rotate_interval = std::chrono::seconds(1);
  const auto count_checkpoints = [&] {
    std::size_t n = 0;
    for (const auto& file : expand_audit_inputs({tuned.directory})) {
      for (const auto& line : split_lines(slurp(file))) n += nlohmann::json::parse(line)["type"] == "checkpoint";
    }
    return n;
  };
  {
    AuditLog log(tuned);
    log.append(entry(1));
    std::this_thread::sleep_for(std::chrono::milliseconds(400));
    EXPECT_EQ(count_checkpoints(), 1U) << "one timer checkpoint after the append, none while idle";
    log.append(entry(2));
    std::this_thread::sleep_for(std::chrono::milliseconds(1300));
  }
  EXPECT_GE(expand_audit_inputs({tuned.directory}).size(), 2U) << "the one-second timer rotated the file";
  const auto report = verify_log({tuned.directory}, trusted(tuned));
  ASSERT_TRUE(report.ok) << describe(report);
  EXPECT_GE(report.checkpoints, 2U);
}

TEST(AuditLog, ThirtyTwoThreadsLeaveOneValidChain) {
  const auto options = options_in(fresh_dir());
  constexpr int kThreads = 32;
  constexpr int kPerThread = 25;
  auto tuned = options;
  tuned.rotate_bytes = 16 * 1024;
  tuned.checkpoint_every_records = 50;
  tuned.checkpoint_interval = std::chrono::milliseconds(20);  // the timer thread races the appenders too
  std::set<std::string> ids;
  std::mutex ids_mutex;
  {
    AuditLog log(tuned);
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        for (int i = 0; i < kPerThread; ++i) {
          const auto appended = log.append(entry(t * 1000 + i));
          std::lock_guard lock(ids_mutex);
          ids.insert(appended.record_hash);
        }
      });
    }
    for (auto& thread : threads) thread.join();
  }
  EXPECT_EQ(ids.size(), static_cast<std::size_t>(kThreads * kPerThread));
  const auto report = verify_log({tuned.directory}, trusted(tuned));
  ASSERT_TRUE(report.ok) << describe(report);
  std::multiset<std::string> requests;
  for (const auto& file : expand_audit_inputs({tuned.directory})) {
    for (const auto& line : split_lines(slurp(file))) {
      const auto record = nlohmann::json::parse(line);
      if (record["type"] == "request") requests.insert(record["request_id"].get<std::string>());
    }
  }
  for (int t = 0; t < kThreads; ++t) {
    for (int i = 0; i < kPerThread; ++i) ASSERT_EQ(requests.count("req-" + std::to_string(t * 1000 + i)), 1U);
  }
  EXPECT_EQ(requests.size(), static_cast<std::size_t>(kThreads * kPerThread));
}

}  // namespace
}  // namespace vlm::audit
