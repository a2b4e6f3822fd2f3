#include "vlm/audit/verify.h"

#include <algorithm>
#include <fstream>
#include <limits>
#include <map>
#include <set>
#include <sstream>

#include "vlm/audit/crypto.h"
#include "vlm/audit/merkle.h"
#include "vlm/audit/record.h"
#include "vlm/error.h"

namespace vlm::audit {
namespace fs = std::filesystem;
namespace {

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(ErrorCode::kNotFound, "cannot open audit file " + path.string());
  std::ostringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

// Where a file sits in the chain: rotated files carry their first seq in their name; anything else is
// placed by the seq its first line claims (a damaged first line sorts last and fails there).
std::uint64_t chain_position(const fs::path& path) {
  const auto name = path.filename().string();
  if (is_rotated_file_name(name)) return std::stoull(name.substr(6, 12));
  std::ifstream in(path, std::ios::binary);
  std::string first;
  std::getline(in, first);
  const auto record = nlohmann::json::parse(first, nullptr, false);
  if (record.is_object() && record.contains("seq") && record["seq"].is_number_unsigned()) {
    return record["seq"].get<std::uint64_t>();
  }
  return std::numeric_limits<std::uint64_t>::max();
}

bool is_hex_digest(const nlohmann::json& value) {
  if (!value.is_string()) return false;
  const auto& text = value.get_ref<const std::string&>();
  return text.size() == 64 &&
         std::all_of(text.begin(), text.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

// Schema of one record beyond what the hash chain covers; returns an empty string when it fits.
std::string schema_problem(const nlohmann::json& r) {
  const auto need = [&](const char* key, auto check, const char* what) -> std::string {
    if (!r.contains(key) || !check(r[key])) return std::string(key) + " is missing or not " + what;
    return {};
  };
  const auto is_string = [](const nlohmann::json& v) { return v.is_string(); };
  const auto is_uint = [](const nlohmann::json& v) { return v.is_number_unsigned(); };
  const auto digest_or_null = [](const nlohmann::json& v) { return v.is_null() || is_hex_digest(v); };
  for (const auto& problem : {need(
                                  "v", [](const nlohmann::json& v) { return v == kRecordVersion; }, "version 1"),
                              need("type", is_string, "a string"), need("seq", is_uint, "an unsigned integer"),
                              need("time", is_string, "a string"), need("prev_hash", is_hex_digest, "a digest")}) {
    if (!problem.empty()) return problem;
  }
  const auto type = r["type"].get<std::string>();
  std::vector<std::string> problems;
  if (type == kTypeRequest) {
    problems = {need("request_id", is_string, "a string"),
                need("client", is_string, "a string"),
                need("endpoint", is_string, "a string"),
                need(
                    "models", [](const nlohmann::json& v) { return v.is_array(); }, "an array"),
                need("image_sha256", is_string, "a string"),
                need("question_hmac", digest_or_null, "a digest or null"),
                need("transcript_hmac", digest_or_null, "a digest or null"),
                need("final_hmac", digest_or_null, "a digest or null"),
                need("outcome", is_string, "a string")};
  } else if (type == kTypeFileStart) {
    problems = {
        need(
            "prev_file", [](const nlohmann::json& v) { return v.is_null() || v.is_string(); }, "a string or null"),
        need("tree_size", is_uint, "an unsigned integer"),
        need(
            "frontier",
            [](const nlohmann::json& v) { return v.is_array() && std::all_of(v.begin(), v.end(), is_hex_digest); },
            "an array of digests")};
  } else if (type == kTypeCheckpoint) {
    problems = {
        need("tree_size", is_uint, "an unsigned integer"), need("merkle_root", is_hex_digest, "a digest"),
        need("public_key", is_hex_digest, "64 hex digits"),
        need(
            "signature", [](const nlohmann::json& v) { return v.is_string() && v.get<std::string>().size() == 128; },
            "128 hex digits")};
  } else if (type == kTypeRecovery) {
    problems = {need("dropped_bytes", is_uint, "an unsigned integer")};
  } else {
    return "unknown record type \"" + type + "\"";
  }
  for (const auto& problem : problems) {
    if (!problem.empty()) return problem;
  }
  return {};
}

// Signature check shared by in-log checkpoints and external copies.
std::string signature_problem(const nlohmann::json& r, const VerifyOptions& options) {
  const auto public_key = from_hex(r["public_key"].get<std::string>());
  if (options.trusted_public_key &&
      !equal_constant_time(public_key, std::span<const std::uint8_t>(*options.trusted_public_key))) {
    return "checkpoint is signed by key " + r["public_key"].get<std::string>().substr(0, 16) +
           "..., not by the trusted key";
  }
  const auto statement = checkpoint_statement(r["tree_size"].get<std::uint64_t>(), r["merkle_root"].get<std::string>(),
                                              r["prev_hash"].get<std::string>(), r["time"].get<std::string>());
  if (!ed25519_verify(public_key, statement, from_hex(r["signature"].get<std::string>()))) {
    return "checkpoint signature does not verify";
  }
  return {};
}

class Verifier {
 public:
  explicit Verifier(const VerifyOptions& options) : options_(options) {}

  VerifyReport run(const std::vector<fs::path>& files) {
    if (!load_external()) return finish();
    if (files.empty()) {
      fail("", 0, std::nullopt, "no audit files given");
      return finish();
    }
    for (std::size_t i = 0; i < files.size(); ++i) {
      if (!check_file(files[i], i == 0, i + 1 == files.size())) return finish();
      previous_file_ = files[i].filename().string();
      ++report_.files;
    }
    for (const auto& [size, copy] : external_) {
      // The checkpoint record itself sits at seq == size, so the log must hold size + 1 records.
      if (size >= frontier_.size()) {
        fail(copy.file, copy.line, size,
             "log is truncated: a signed checkpoint kept elsewhere is record " + std::to_string(size) +
                 " but the log holds only " + std::to_string(frontier_.size()) + " records");
        return finish();
      }
    }
    if (report_.checkpoints == 0)
      report_.notes.push_back("no checkpoint in the log: a truncated tail cannot be detected");
    if (frontier_.size() > last_checkpoint_size_ && report_.checkpoints > 0) {
      report_.notes.push_back(std::to_string(frontier_.size() - last_checkpoint_size_) +
                              " records after the last checkpoint are protected by the hash chain only");
    }
    if (!options_.trusted_public_key) {
      report_.notes.push_back("no trusted public key given: signatures were checked against the key the log names");
    }
    report_.ok = true;
    return finish();
  }

 private:
  struct External {
    std::string file;
    std::uint64_t line = 0;
    nlohmann::json record;
  };

  bool load_external() {
    for (const auto& path : options_.checkpoint_files) {
      std::string data;
      try {
        data = read_file(path);
      } catch (const Error& error) {
        fail(path.string(), 0, std::nullopt, error.what());
        return false;
      }
      std::istringstream in(data);
      std::string line;
      std::uint64_t number = 0;
      while (std::getline(in, line)) {
        ++number;
        std::string problem;
        auto record = open_record(line, problem);
        if (record && (problem = schema_problem(*record)).empty() && (*record)["type"] != kTypeCheckpoint) {
          problem = "not a checkpoint record";
        }
        if (record && problem.empty()) problem = signature_problem(*record, options_);
        if (!record || !problem.empty()) {
          fail(path.string(), number, std::nullopt, "checkpoint copy: " + problem);
          return false;
        }
        const auto size = (*record)["tree_size"].get<std::uint64_t>();
        external_.emplace(size, External{path.string(), number, std::move(*record)});
      }
    }
    return true;
  }

  bool check_file(const fs::path& path, bool first_file, bool last_file) {
    std::string data;
    try {
      data = read_file(path);
    } catch (const Error& error) {
      fail(path.string(), 0, std::nullopt, error.what());
      return false;
    }
    if (data.empty()) {
      fail(path.string(), 0, std::nullopt, "file is empty: every audit file starts with a file_start record");
      return false;
    }
    std::size_t pos = 0;
    std::uint64_t number = 0;
    while (pos < data.size()) {
      const auto end = data.find('\n', pos);
      ++number;
      if (end == std::string::npos) {
        const auto bytes = std::to_string(data.size() - pos);
        fail(path.string(), number, std::nullopt,
             last_file ? "last line is incomplete (" + bytes +
                             " bytes without a newline): a write was cut off; "
                             "the writer drops it when it restarts"
                       : "line is incomplete (" + bytes + " bytes without a newline) in a file that is not the last");
        return false;
      }
      if (!check_record(path, number, std::string_view(data).substr(pos, end - pos), first_file && number == 1)) {
        return false;
      }
      pos = end + 1;
    }
    return true;
  }

  bool check_record(const fs::path& path, std::uint64_t number, std::string_view line, bool chain_start) {
    const std::string file = path.string();
    std::string problem;
    auto opened = open_record(line, problem);
    if (!opened) return fail(file, number, std::nullopt, problem);
    const nlohmann::json& r = *opened;
    if (auto schema = schema_problem(r); !schema.empty()) return fail(file, number, std::nullopt, schema);
    const auto seq = r["seq"].get<std::uint64_t>();
    const auto type = r["type"].get<std::string>();
    const auto& prev_hash = r["prev_hash"].get_ref<const std::string&>();

    if ((number == 1) != (type == kTypeFileStart)) {
      return fail(file, number, seq,
                  number == 1 ? "first record of a file is a " + type + ", not a file_start"
                              : "file_start record in the middle of a file");
    }
    if (chain_start) {
      if (!start_chain(r, file, number, seq)) return false;
    } else {
      if (seq != expected_seq_) {
        return fail(file, number, seq,
                    "seq " + std::to_string(seq) + " where " + std::to_string(expected_seq_) +
                        " was expected (a record was deleted, inserted or moved)");
      }
      if (prev_hash != last_hash_) {
        return fail(file, number, seq,
                    "prev_hash " + prev_hash.substr(0, 16) + "... does not match the previous record's hash " +
                        last_hash_.substr(0, 16) + "...");
      }
      if (type == kTypeFileStart && !check_file_start(r, file, number, seq)) return false;
    }
    if (type == kTypeCheckpoint && !check_checkpoint(r, file, number, seq)) return false;
    if (auto it = external_.find(seq); it != external_.end() && it->second.record["record_hash"] != r["record_hash"]) {
      return fail(file, number, seq, "record differs from the signed checkpoint kept in " + it->second.file);
    }

    frontier_.append(line);
    last_hash_ = r["record_hash"].get<std::string>();
    expected_seq_ = seq + 1;
    if (report_.records == 0) report_.first_seq = seq;
    ++report_.records;
    report_.last_seq = seq;
    return check_external_at_size(file, number, seq);
  }

  bool start_chain(const nlohmann::json& r, const std::string& file, std::uint64_t number, std::uint64_t seq) {
    if (r["prev_file"].is_null()) {
      if (seq != 0 || r["prev_hash"] != kGenesisHash || r["tree_size"] != 0 || !r["frontier"].empty()) {
        return fail(file, number, seq, "genesis record must have seq 0, a zero prev_hash and an empty tree");
      }
      return true;
    }
    if (!options_.allow_partial) {
      return fail(file, number, seq,
                  "the first file does not start the log: it continues from " + r["prev_file"].get<std::string>() +
                      " (give that file too, or pass --partial)");
    }
    std::vector<Digest> nodes;
    for (const auto& node : r["frontier"]) nodes.push_back(digest_from_hex(node.get<std::string>()));
    try {
      frontier_ = MerkleFrontier(r["tree_size"].get<std::uint64_t>(), std::move(nodes));
    } catch (const Error& error) {
      return fail(file, number, seq, error.what());
    }
    if (frontier_.size() != seq) return fail(file, number, seq, "tree_size does not equal seq");
    report_.notes.push_back("partial chain: records before seq " + std::to_string(seq) + " (file " +
                            r["prev_file"].get<std::string>() + ") were not checked");
    return true;
  }

  bool check_file_start(const nlohmann::json& r, const std::string& file, std::uint64_t number, std::uint64_t seq) {
    if (!r["prev_file"].is_string() || r["prev_file"].get<std::string>() != previous_file_) {
      return fail(file, number, seq,
                  "file_start names previous file " + r["prev_file"].dump() + " but the file before it is \"" +
                      previous_file_ + "\" (files spliced or missing)");
    }
    nlohmann::json nodes = nlohmann::json::array();
    for (const auto& node : frontier_.nodes()) nodes.push_back(to_hex(node));
    if (r["tree_size"] != frontier_.size() || r["frontier"] != nodes) {
      return fail(file, number, seq, "file_start Merkle frontier does not match the records before it");
    }
    return true;
  }

  bool check_checkpoint(const nlohmann::json& r, const std::string& file, std::uint64_t number, std::uint64_t seq) {
    if (r["tree_size"] != frontier_.size() || seq != frontier_.size()) {
      return fail(file, number, seq,
                  "checkpoint tree_size " + r["tree_size"].dump() + " does not equal the " +
                      std::to_string(frontier_.size()) + " records before it");
    }
    if (r["merkle_root"] != to_hex(frontier_.root())) {
      return fail(file, number, seq, "checkpoint Merkle root does not match the records before it");
    }
    if (auto problem = signature_problem(r, options_); !problem.empty()) return fail(file, number, seq, problem);
    const auto signer = r["public_key"].get<std::string>();
    if (!report_.signer.empty() && report_.signer != signer) {
      report_.notes.push_back("checkpoints are signed by more than one key (first " + report_.signer.substr(0, 16) +
                              "..., then " + signer.substr(0, 16) + "...)");
    }
    report_.signer = signer;
    ++report_.checkpoints;
    last_checkpoint_size_ = frontier_.size() + 1;
    return true;
  }

  // After `seq`, the tree holds seq + 1 records: compare with an external checkpoint of that size.
  bool check_external_at_size(const std::string& file, std::uint64_t number, std::uint64_t seq) {
    auto it = external_.find(frontier_.size());
    if (it == external_.end()) return true;
    const auto& copy = it->second.record;
    if (copy["merkle_root"] != to_hex(frontier_.root()) || copy["prev_hash"] != last_hash_) {
      return fail(file, number, seq,
                  "records up to here do not match the signed checkpoint kept in " + it->second.file + " line " +
                      std::to_string(it->second.line));
    }
    ++report_.external_checkpoints;
    return true;
  }

  bool fail(const std::string& file, std::uint64_t line, std::optional<std::uint64_t> seq, std::string message) {
    if (!report_.failure) report_.failure = VerifyFailure{file, line, seq, std::move(message)};
    report_.ok = false;
    return false;
  }

  VerifyReport finish() {
    report_.head_hash = last_hash_;
    if (options_.allow_partial) {
      for (const auto& [size, copy] : external_) {
        if (report_.records > 0 && size < report_.first_seq) {
          report_.notes.push_back("checkpoint copy at tree size " + std::to_string(size) +
                                  " predates the files given and was not compared");
        }
      }
    }
    return report_;
  }

  const VerifyOptions& options_;
  VerifyReport report_;
  std::map<std::uint64_t, External> external_;
  MerkleFrontier frontier_;
  std::string last_hash_;
  std::string previous_file_;
  std::uint64_t expected_seq_ = 0;
  std::uint64_t last_checkpoint_size_ = 0;
};

}  // namespace

std::vector<fs::path> expand_audit_inputs(const std::vector<fs::path>& inputs) {
  std::vector<fs::path> files;
  for (const auto& input : inputs) {
    if (fs::is_directory(input)) {
      for (const auto& item : fs::directory_iterator(input)) {
        const auto name = item.path().filename().string();
        if (is_rotated_file_name(name) || name == kActiveFileName) files.push_back(item.path());
      }
    } else if (fs::exists(input)) {
      files.push_back(input);
    } else {
      throw Error(ErrorCode::kNotFound, "audit file " + input.string() + " does not exist");
    }
  }
  std::vector<std::pair<std::uint64_t, fs::path>> ordered;
  ordered.reserve(files.size());
  for (auto& file : files) ordered.emplace_back(chain_position(file), std::move(file));
  std::stable_sort(ordered.begin(), ordered.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  files.clear();
  for (auto& [position, file] : ordered) files.push_back(std::move(file));
  return files;
}

VerifyReport verify_log(const std::vector<fs::path>& inputs, const VerifyOptions& options) {
  std::vector<fs::path> files;
  try {
    files = expand_audit_inputs(inputs);
  } catch (const Error& error) {
    VerifyReport report;
    report.failure = VerifyFailure{"", 0, std::nullopt, error.what()};
    return report;
  }
  return Verifier(options).run(files);
}

std::vector<FoundRecord> find_records(const std::vector<fs::path>& inputs, const std::string& id) {
  std::vector<FoundRecord> found;
  for (const auto& path : expand_audit_inputs(inputs)) {
    std::istringstream in(read_file(path));
    std::string line;
    std::uint64_t number = 0;
    while (std::getline(in, line)) {
      ++number;
      auto record = nlohmann::json::parse(line, nullptr, false);
      if (!record.is_object()) continue;
      const auto matches = [&](const char* key) {
        return record.contains(key) && record[key].is_string() && record[key].get<std::string>() == id;
      };
      if (matches("request_id") || matches("record_hash")) found.push_back({path.string(), number, std::move(record)});
    }
  }
  return found;
}

}  // namespace vlm::audit
