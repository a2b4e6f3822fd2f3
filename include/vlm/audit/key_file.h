#pragma once

#include <cstdint>
#include <filesystem>
#include <vector>

#include "vlm/audit/crypto.h"

namespace vlm::audit {

// Key files hold 64 hex digits and a newline. A missing file is created with mode 0600 from fresh
// random bytes; an existing one is refused (kInvalidArgument) when it is not a regular file, not
// owned by this user, or grants any permission to group or others, because a readable HMAC key
// lets anyone confirm guesses of the private text in the log.
std::vector<std::uint8_t> load_or_create_hmac_key(const std::filesystem::path& path);
SigningKey load_or_create_signing_key(const std::filesystem::path& path);

// Reads a key file under the same permission rules without creating it (verifiers).
std::vector<std::uint8_t> load_key_file(const std::filesystem::path& path);

// Public keys are not secret: 64 hex digits, any permissions.
std::array<std::uint8_t, 32> load_public_key(const std::filesystem::path& path);
void write_public_key(const std::filesystem::path& path, std::span<const std::uint8_t> public_key);

}  // namespace vlm::audit
