// Helper for audit_crash_test.py: appends records until killed, acknowledging each one on stdout
// only after append() returned (the point where the server would send its response).
//   audit_crash_writer write DIR PREFIX [ROTATE_BYTES] [CHECKPOINT_EVERY]
//   audit_crash_writer verify DIR   (exit 0 and "OK <records>" when the log verifies)
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>

#include "vlm/audit/audit_log.h"
#include "vlm/audit/key_file.h"
#include "vlm/audit/verify.h"
#include "vlm/error.h"

namespace {

namespace fs = std::filesystem;

void say(const std::string& line) {
  const std::string text = line + "\n";
  // write(2), not iostreams: nothing may sit in a user-space buffer when SIGKILL arrives.
  if (::write(STDOUT_FILENO, text.data(), text.size()) != static_cast<ssize_t>(text.size())) std::_Exit(3);
}

vlm::audit::AuditOptions options_for(const fs::path& dir) {
  vlm::audit::AuditOptions options;
  options.directory = dir / "log";
  options.key_file = dir / "audit.key";
  options.checkpoint_copy = dir / "checkpoints.jsonl";
  options.checkpoint_interval = std::chrono::milliseconds(0);
  return options;
}

int write_loop(const fs::path& dir, const std::string& prefix, std::uint64_t rotate_bytes, std::uint64_t every) {
  auto options = options_for(dir);
  options.rotate_bytes = rotate_bytes;
  options.checkpoint_every_records = every;
  vlm::audit::AuditLog log(options);
  say("READY dropped=" + std::to_string(log.recovery().dropped_bytes) + " resumed=" + log.recovery().resumed_file);
  for (std::uint64_t i = 0;; ++i) {
    vlm::audit::RequestEntry entry;
    entry.request_id = prefix + "-" + std::to_string(i);
    entry.client = "crash-test";
    entry.endpoint = "/think";
    entry.image_sha256 = std::string(64, '0');
    entry.question = "question " + std::to_string(i);
    entry.transcript = "<final>" + std::to_string(i) + "</final>";
    entry.final_answer = std::to_string(i);
    entry.outcome = "answered";
    const auto appended = log.append(entry);
    say("ACK " + entry.request_id + " " + std::to_string(appended.seq));
  }
}

int verify(const fs::path& dir) {
  const auto options = options_for(dir);
  vlm::audit::VerifyOptions verify;
  verify.trusted_public_key = vlm::audit::load_public_key(options.key_file.string() + ".ed25519.pub");
  if (fs::exists(options.checkpoint_copy)) verify.checkpoint_files = {options.checkpoint_copy};
  const auto report = vlm::audit::verify_log({options.directory}, verify);
  if (!report.ok) {
    std::cout << "FAIL " << report.failure->file << ":" << report.failure->line << ": " << report.failure->message
              << std::endl;
    return 1;
  }
  std::cout << "OK " << report.records << " records, " << report.files << " files, " << report.checkpoints
            << " checkpoints" << std::endl;
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const std::string mode = argc > 1 ? argv[1] : "";
    if (mode == "write" && argc >= 4) {
      return write_loop(argv[2], argv[3], argc > 4 ? std::stoull(argv[4]) : 4096, argc > 5 ? std::stoull(argv[5]) : 3);
    }
    if (mode == "verify" && argc == 3) return verify(argv[2]);
    std::cerr << "usage: audit_crash_writer write DIR PREFIX [ROTATE_BYTES] [CHECKPOINT_EVERY] | verify DIR\n";
    return 2;
  } catch (const vlm::Error& error) {
    std::cerr << "audit_crash_writer: " << error.what() << std::endl;
    return 1;
  }
}
