// `vlmserve audit verify FILE...` and `vlmserve audit find --id ID FILE...`: offline checks of the
// /think audit log written by `serve` and `think`.
#include <fstream>
#include <iostream>
#include <sstream>

#include <CLI/CLI.hpp>

#include "command.h"
#include "common.h"
#include "vlm/audit/key_file.h"
#include "vlm/audit/record.h"
#include "vlm/audit/verify.h"
#include "vlm/error.h"

namespace vlm::cli {
namespace {

struct AuditState {
  Settings verify_settings{"audit-verify"};
  Settings find_settings{"audit-find"};
  std::vector<std::string> verify_files;
  std::vector<std::string> find_files;
  CLI::App* verify = nullptr;
  CLI::App* find = nullptr;
};

std::vector<std::filesystem::path> as_paths(const std::vector<std::string>& files) {
  return {files.begin(), files.end()};
}

std::string read_text(const std::string& path, const char* flag) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(ErrorCode::kNotFound, std::string("cannot read ") + flag + " " + path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

int run_verify(AuditState& state) {
  Settings& settings = state.verify_settings;
  settings.resolve();
  apply_process_settings(settings);
  const AuditQueryOptions& given = settings.options().audit_query;
  audit::VerifyOptions options;
  if (!given.public_key.empty()) options.trusted_public_key = audit::load_public_key(given.public_key);
  for (const auto& file : given.checkpoints) options.checkpoint_files.emplace_back(file);
  options.allow_partial = given.partial;
  const auto report = audit::verify_log(as_paths(state.verify_files), options);
  if (!report.ok) {
    const auto& failure = *report.failure;
    std::cout << "FAIL: ";
    if (!failure.file.empty()) {
      std::cout << failure.file;
      if (failure.line > 0) std::cout << " line " << failure.line;
      if (failure.seq) std::cout << " (seq " << *failure.seq << ")";
      std::cout << ": ";
    }
    std::cout << failure.message << "\n";
    std::cout << "verified before the failure: " << report.records << " records in " << report.files << " files\n";
    return kExitSomeInputsFailed;
  }
  std::cout << "OK: " << report.files << " files, " << report.records << " records (seq " << report.first_seq << ".."
            << report.last_seq << "), " << report.checkpoints << " signed checkpoints verified";
  if (!options.checkpoint_files.empty())
    std::cout << ", " << report.external_checkpoints << " checkpoint copies matched";
  std::cout << "\nhead " << report.head_hash << "\n";
  if (!report.signer.empty()) std::cout << "signer " << report.signer << "\n";
  for (const auto& note : report.notes) std::cout << "note: " << note << "\n";
  return kExitOk;
}

int run_find(AuditState& state) {
  Settings& settings = state.find_settings;
  settings.resolve();
  apply_process_settings(settings);
  const Options& given = settings.options();
  const std::string& id = given.audit_query.id;
  if (id.empty()) throw Error(ErrorCode::kInvalidArgument, "audit find needs --id (a request_id or audit_id)");
  const auto found = audit::find_records(as_paths(state.find_files), id);
  if (found.empty()) {
    std::cout << "no record with request_id or audit_id " << id << "\n";
    return kExitSomeInputsFailed;
  }
  // Candidates are checked only against their HMAC: the log never held the text itself.
  std::vector<std::pair<std::string, std::string>> candidates;
  if (settings.is_set("question")) candidates.emplace_back("question", given.question);
  if (settings.is_set("transcript-file")) {
    candidates.emplace_back("transcript", read_text(given.audit_query.transcript_file, "--transcript-file"));
  }
  if (settings.is_set("final-file"))
    candidates.emplace_back("final", read_text(given.audit_query.final_file, "--final-file"));
  std::vector<std::uint8_t> key;
  if (!candidates.empty()) {
    if (given.audit.key_file.empty()) {
      throw Error(ErrorCode::kInvalidArgument, "checking a candidate text needs --audit-key-file");
    }
    key = audit::load_key_file(given.audit.key_file);
  }
  bool all_match = true;
  for (const auto& item : found) {
    std::cout << item.file << " line " << item.line << "\n" << item.record.dump(2) << "\n";
    for (const auto& [field, text] : candidates) {
      const auto stored = item.record.value(field + "_hmac", nlohmann::json());
      const bool match = stored.is_string() && stored.get<std::string>() == audit::text_hmac(key, field, text);
      all_match = all_match && match;
      std::cout << field << ": " << (match ? "matches" : "DOES NOT MATCH") << " the record's " << field << "_hmac\n";
    }
  }
  audit::cleanse(key.data(), key.size());
  return all_match ? kExitOk : kExitSomeInputsFailed;
}

}  // namespace

Subcommand add_audit_command(CLI::App& root) {
  auto state = std::make_shared<AuditState>();
  CLI::App* app =
      root.add_subcommand("audit", "Check the /think audit log: verify its chain and signatures, find a record");
  app->require_subcommand(1);
  state->verify = app->add_subcommand(
      "verify",
      "Check hash chain, Merkle roots and checkpoint signatures across rotated files; name the first bad record");
  state->verify->add_option("files", state->verify_files, "Audit files or folders (rotated files in any order)")
      ->required();
  state->verify_settings.register_flags(*state->verify);
  state->find =
      app->add_subcommand("find", "Show the record of one request; optionally test candidate texts against its HMACs");
  state->find->add_option("files", state->find_files, "Audit files or folders")->required();
  state->find_settings.register_flags(*state->find);
  return {app, [state]() {
            try {
              return state->verify->parsed() ? run_verify(*state) : run_find(*state);
            } catch (const std::exception& error) {
              return report_fatal(error);
            }
          }};
}

}  // namespace vlm::cli
