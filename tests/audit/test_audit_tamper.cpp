#include <map>

#include <gtest/gtest.h>

#include "audit_test_util.h"
#include "vlm/audit/key_file.h"
#include "vlm/audit/record.h"
#include "vlm/audit/verify.h"

namespace vlm::audit {
namespace {

using namespace vlm::audit::testing;
namespace fs = std::filesystem;

// A log as file name -> lines, in chain order.
using Files = std::vector<std::pair<std::string, std::vector<std::string>>>;

Files read_log(const fs::path& directory) {
  Files files;
  for (const auto& path : expand_audit_inputs({directory})) {
    files.emplace_back(path.filename().string(), split_lines(slurp(path)));
  }
  return files;
}

struct Position {
  std::size_t file;
  std::size_t line;
};

std::vector<Position> positions(const Files& files) {
  std::vector<Position> out;
  for (std::size_t f = 0; f < files.size(); ++f) {
    for (std::size_t l = 0; l < files[f].second.size(); ++l) out.push_back({f, l});
  }
  return out;
}

std::string reseal(const std::string& line, const std::function<void(nlohmann::json&)>& edit) {
  auto record = nlohmann::json::parse(line);
  edit(record);
  return seal_record(record);
}

class TamperSuite : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fresh_dir();
    options_ = options_in(root_);
    options_.rotate_bytes = 2500;
    options_.checkpoint_every_records = 5;
    {
      AuditLog log(options_);
      for (int i = 0; i < 30; ++i) log.append(entry(i));
    }
    pristine_ = read_log(options_.directory);
    checkpoints_ = slurp(options_.checkpoint_copy);
    verify_.trusted_public_key = load_public_key(options_.key_file.string() + ".ed25519.pub");
    case_dir_ = root_ / "case";
  }

  // Writes `files` (and optionally a replacement checkpoint copy) to a scratch directory and verifies.
  VerifyReport check(const Files& files) {
    fs::remove_all(case_dir_);
    fs::create_directories(case_dir_ / "log");
    for (const auto& [name, lines] : files) spit(case_dir_ / "log" / name, join_lines(lines));
    spit(case_dir_ / "checkpoints.jsonl", checkpoints_);
    auto verify = verify_;
    verify.checkpoint_files = {case_dir_ / "checkpoints.jsonl"};
    return verify_log({case_dir_ / "log"}, verify);
  }

  void expect_detected(const std::string& what, const Files& files) {
    ++cases_;
    const auto report = check(files);
    if (report.ok) {
      ADD_FAILURE() << "tamper not detected: " << what;
    } else {
      ++detected_;
    }
  }

  void TearDown() override {
    std::printf("tamper suite %s: %zu of %zu cases detected\n",
                ::testing::UnitTest::GetInstance()->current_test_info()->name(), detected_, cases_);
  }

  fs::path root_;
  fs::path case_dir_;
  AuditOptions options_;
  VerifyOptions verify_;
  Files pristine_;
  std::string checkpoints_;
  std::size_t cases_ = 0;
  std::size_t detected_ = 0;
};

TEST_F(TamperSuite, PristineLogVerifies) {
  ASSERT_GE(pristine_.size(), 4U) << "the fixture must rotate several times";
  const auto report = check(pristine_);
  ASSERT_TRUE(report.ok) << report.failure->message;
  EXPECT_GE(report.external_checkpoints, 6U);
}

TEST_F(TamperSuite, FlippedByteAnywhereIsDetectedAtThatRecord) {
  for (const auto& at : positions(pristine_)) {
    const auto& line = pristine_[at.file].second[at.line];
    for (std::size_t offset :
         {std::size_t{0}, line.size() / 3, line.size() / 2, line.size() - 12, line.size() - 1, line.size()}) {
      Files files = pristine_;
      std::string& target = files[at.file].second[at.line];
      if (offset == line.size()) {
        target += "\x01";  // the newline's neighbour: a byte appended inside the record
      } else {
        target[offset] = static_cast<char>(target[offset] ^ 0x01);
      }
      ++cases_;
      const auto report = check(files);
      if (report.ok) {
        ADD_FAILURE() << "flip not detected: " << files[at.file].first << " line " << at.line + 1 << " offset "
                      << offset;
        continue;
      }
      ++detected_;
      EXPECT_EQ(fs::path(report.failure->file).filename().string(), files[at.file].first);
      EXPECT_EQ(report.failure->line, at.line + 1) << report.failure->message;
    }
  }
  EXPECT_EQ(detected_, cases_);
}

TEST_F(TamperSuite, ModifiedAndResealedRecordIsDetected) {
  for (const auto& at : positions(pristine_)) {
    Files files = pristine_;
    auto& line = files[at.file].second[at.line];
    line = reseal(line, [](nlohmann::json& r) {
      if (r["type"] == "request") {
        r["outcome"] = "refused";
      } else {
        r["time"] = "2000-01-01T00:00:00.000Z";
      }
    });
    expect_detected("resealed record " + files[at.file].first + ":" + std::to_string(at.line + 1), files);
  }
  EXPECT_EQ(detected_, cases_);
}

TEST_F(TamperSuite, RewrittenChainWithoutSigningKeyIsDetected) {
  // The strongest attacker without the signing key: edit one record, then recompute every later
  // record_hash and prev_hash so the hash chain is whole again. Only the signed Merkle roots catch it.
  const auto all = positions(pristine_);
  for (std::size_t k = 0; k < all.size(); ++k) {
    Files files = pristine_;
    std::string last_hash;
    for (std::size_t j = k; j < all.size(); ++j) {
      auto& line = files[all[j].file].second[all[j].line];
      line = reseal(line, [&](nlohmann::json& r) {
        if (j == k) {
          if (r["type"] == "request") {
            r["final_hmac"] = std::string(64, 'f');
          } else {
            r["time"] = "2000-01-01T00:00:00.000Z";
          }
        } else {
          r["prev_hash"] = last_hash;
        }
      });
      last_hash = nlohmann::json::parse(line)["record_hash"].get<std::string>();
    }
    expect_detected("rewritten chain from record " + std::to_string(k), files);
  }
  EXPECT_EQ(detected_, cases_);
}

TEST_F(TamperSuite, DeletedReorderedOrInsertedRecordIsDetected) {
  const auto all = positions(pristine_);
  for (const auto& at : all) {
    Files deleted = pristine_;
    auto& lines = deleted[at.file].second;
    lines.erase(lines.begin() + static_cast<std::ptrdiff_t>(at.line));
    if (lines.empty()) deleted.erase(deleted.begin() + static_cast<std::ptrdiff_t>(at.file));
    expect_detected("deleted record", deleted);

    Files duplicated = pristine_;
    auto& dup = duplicated[at.file].second;
    dup.insert(dup.begin() + static_cast<std::ptrdiff_t>(at.line), dup[at.line]);
    expect_detected("duplicated record", duplicated);

    Files forged = pristine_;
    auto& fl = forged[at.file].second;
    fl.insert(fl.begin() + static_cast<std::ptrdiff_t>(at.line) + 1, reseal(fl[at.line], [](nlohmann::json& r) {
                r["request_id"] = "forged";
                r["seq"] = r["seq"].get<std::uint64_t>() + 1;
              }));
    expect_detected("inserted record", forged);

    if (at.line + 1 < pristine_[at.file].second.size()) {
      Files swapped = pristine_;
      auto& sl = swapped[at.file].second;
      std::swap(sl[at.line], sl[at.line + 1]);
      expect_detected("swapped records", swapped);
    }
  }
  EXPECT_EQ(detected_, cases_);
}

TEST_F(TamperSuite, SplicedRotatedFilesAreDetected) {
  const std::size_t n = pristine_.size();
  for (std::size_t i = 0; i + 1 < n; ++i) {
    Files removed = pristine_;
    removed.erase(removed.begin() + static_cast<std::ptrdiff_t>(i));
    expect_detected("removed file " + pristine_[i].first, removed);

    Files swapped = pristine_;
    std::swap(swapped[i].second, swapped[i + 1].second);
    expect_detected("swapped contents of files " + std::to_string(i), swapped);

    // Move the last record of one file to the front of the next (after its file_start).
    Files moved = pristine_;
    const auto last = moved[i].second.back();
    moved[i].second.pop_back();
    moved[i + 1].second.insert(moved[i + 1].second.begin() + 1, last);
    expect_detected("moved record across rotation", moved);
  }
  // Files from another log written with the same keys, spliced in place of ours.
  auto other = options_;
  other.directory = root_ / "other-log";
  other.checkpoint_copy = root_ / "other-checkpoints.jsonl";
  {
    AuditLog log(other);
    for (int i = 100; i < 130; ++i) log.append(entry(i));
  }
  const Files foreign = read_log(other.directory);
  for (std::size_t i = 0; i < std::min(n, foreign.size()); ++i) {
    Files spliced = pristine_;
    spliced[i].second = foreign[i].second;
    expect_detected("file " + pristine_[i].first + " replaced by another log's", spliced);
  }
  EXPECT_EQ(detected_, cases_);
}

TEST_F(TamperSuite, TruncatedTailBehindCheckpointIsDetected) {
  // Cut the log at every record boundary from the end back to the first record.
  const auto all = positions(pristine_);
  for (std::size_t keep = 1; keep < all.size(); ++keep) {
    Files cut;
    for (std::size_t j = 0; j < keep; ++j) {
      const auto& at = all[j];
      if (cut.size() <= at.file) cut.emplace_back(pristine_[at.file].first, std::vector<std::string>{});
      cut[at.file].second.push_back(pristine_[at.file].second[at.line]);
    }
    expect_detected("truncated to " + std::to_string(keep) + " records", cut);
  }
  EXPECT_EQ(detected_, cases_);
}

TEST_F(TamperSuite, LogSignedByAnotherKeyIsRejectedByTrustedKey) {
  const auto other_root = root_ / "impostor";
  fs::create_directories(other_root);
  auto other = options_in(other_root);
  other.checkpoint_every_records = 5;
  {
    AuditLog log(other);
    for (int i = 0; i < 30; ++i) log.append(entry(i));
  }
  ++cases_;
  const auto report = verify_log({other.directory}, verify_);
  if (!report.ok) ++detected_;
  ASSERT_FALSE(report.ok);
  EXPECT_NE(report.failure->message.find("not by the trusted key"), std::string::npos) << report.failure->message;
}

}  // namespace
}  // namespace vlm::audit
