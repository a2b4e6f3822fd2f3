#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

// Thin wrappers over OpenSSL 3 EVP so the rest of the audit code never touches raw OpenSSL handles.
namespace vlm::audit {

using Digest = std::array<std::uint8_t, 32>;

Digest sha256(std::span<const std::uint8_t> data);
Digest sha256(std::string_view data);
Digest hmac_sha256(std::span<const std::uint8_t> key, std::string_view message);

std::string to_hex(std::span<const std::uint8_t> bytes);
// Throws kInvalidArgument when `hex` is not an even-length lowercase/uppercase hex string.
std::vector<std::uint8_t> from_hex(std::string_view hex);
Digest digest_from_hex(std::string_view hex);  // exactly 64 hex digits

std::vector<std::uint8_t> random_bytes(std::size_t count);

// Compares in time independent of where the inputs first differ.
bool equal_constant_time(std::span<const std::uint8_t> a, std::span<const std::uint8_t> b);

// Wipes a buffer that held key material or private text before it is freed.
void cleanse(void* data, std::size_t size);

// An Ed25519 private key. Move-only; the OpenSSL handle is freed (and wiped by OpenSSL) on destruction.
class SigningKey {
 public:
  static SigningKey generate();
  // Raw 32-byte private seed, as stored in the key file.
  static SigningKey from_seed(std::span<const std::uint8_t> seed);
  SigningKey(SigningKey&& other) noexcept;
  SigningKey& operator=(SigningKey&& other) noexcept;
  SigningKey(const SigningKey&) = delete;
  SigningKey& operator=(const SigningKey&) = delete;
  ~SigningKey();

  std::vector<std::uint8_t> sign(std::string_view message) const;  // 64 bytes
  std::array<std::uint8_t, 32> public_key() const;
  std::vector<std::uint8_t> seed() const;  // caller cleanses

 private:
  explicit SigningKey(void* pkey) : pkey_(pkey) {}
  void* pkey_ = nullptr;  // EVP_PKEY*
};

bool ed25519_verify(std::span<const std::uint8_t> public_key, std::string_view message,
                    std::span<const std::uint8_t> signature);

}  // namespace vlm::audit
