#include "vlm/audit/crypto.h"

#include <algorithm>
#include <memory>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "vlm/error.h"

namespace vlm::audit {
namespace {

[[noreturn]] void throw_openssl(const char* what) {
  char buffer[256] = {};
  ERR_error_string_n(ERR_get_error(), buffer, sizeof buffer);
  throw Error(ErrorCode::kInternal, std::string(what) + " failed: " + buffer);
}

struct MdCtxFree {
  void operator()(EVP_MD_CTX* ctx) const { EVP_MD_CTX_free(ctx); }
};
using MdCtx = std::unique_ptr<EVP_MD_CTX, MdCtxFree>;

EVP_PKEY* as_pkey(void* handle) { return static_cast<EVP_PKEY*>(handle); }

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

Digest sha256(std::span<const std::uint8_t> data) {
  Digest out{};
  unsigned int length = 0;
  if (EVP_Digest(data.data(), data.size(), out.data(), &length, EVP_sha256(), nullptr) != 1) {
    throw_openssl("EVP_Digest(sha256)");
  }
  return out;
}

Digest sha256(std::string_view data) {
  return sha256(std::span(reinterpret_cast<const std::uint8_t*>(data.data()), data.size()));
}

Digest hmac_sha256(std::span<const std::uint8_t> key, std::string_view message) {
  Digest out{};
  unsigned int length = 0;
  if (HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
           reinterpret_cast<const unsigned char*>(message.data()), message.size(), out.data(), &length) == nullptr) {
    throw_openssl("HMAC(sha256)");
  }
  return out;
}

std::string to_hex(std::span<const std::uint8_t> bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (std::uint8_t b : bytes) {
    out.push_back(kDigits[b >> 4]);
    out.push_back(kDigits[b & 0xF]);
  }
  return out;
}

std::vector<std::uint8_t> from_hex(std::string_view hex) {
  if (hex.size() % 2 != 0) {
    throw Error(ErrorCode::kInvalidArgument, "hex string has odd length " + std::to_string(hex.size()));
  }
  std::vector<std::uint8_t> out(hex.size() / 2);
  for (std::size_t i = 0; i < out.size(); ++i) {
    const int hi = hex_value(hex[2 * i]);
    const int lo = hex_value(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) {
      throw Error(ErrorCode::kInvalidArgument,
                  "non-hex character at offset " + std::to_string(hi < 0 ? 2 * i : 2 * i + 1));
    }
    out[i] = static_cast<std::uint8_t>((hi << 4) | lo);
  }
  return out;
}

Digest digest_from_hex(std::string_view hex) {
  if (hex.size() != 64) {
    throw Error(ErrorCode::kInvalidArgument,
                "expected a 64-digit SHA-256 hex string, got " + std::to_string(hex.size()) + " characters");
  }
  const auto bytes = from_hex(hex);
  Digest out{};
  std::copy(bytes.begin(), bytes.end(), out.begin());
  return out;
}

std::vector<std::uint8_t> random_bytes(std::size_t count) {
  std::vector<std::uint8_t> out(count);
  if (RAND_bytes(out.data(), static_cast<int>(count)) != 1) throw_openssl("RAND_bytes");
  return out;
}

bool equal_constant_time(std::span<const std::uint8_t> a, std::span<const std::uint8_t> b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

void cleanse(void* data, std::size_t size) { OPENSSL_cleanse(data, size); }

SigningKey SigningKey::generate() {
  const auto seed = random_bytes(32);
  auto key = from_seed(seed);
  return key;
}

SigningKey SigningKey::from_seed(std::span<const std::uint8_t> seed) {
  if (seed.size() != 32) {
    throw Error(ErrorCode::kInvalidArgument,
                "Ed25519 private key must be 32 bytes, got " + std::to_string(seed.size()));
  }
  EVP_PKEY* pkey = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nullptr, seed.data(), seed.size());
  if (pkey == nullptr) throw_openssl("EVP_PKEY_new_raw_private_key(ed25519)");
  return SigningKey(pkey);
}

SigningKey::SigningKey(SigningKey&& other) noexcept : pkey_(other.pkey_) { other.pkey_ = nullptr; }

SigningKey& SigningKey::operator=(SigningKey&& other) noexcept {
  if (this != &other) {
    EVP_PKEY_free(as_pkey(pkey_));
    pkey_ = other.pkey_;
    other.pkey_ = nullptr;
  }
  return *this;
}

SigningKey::~SigningKey() { EVP_PKEY_free(as_pkey(pkey_)); }

std::vector<std::uint8_t> SigningKey::sign(std::string_view message) const {
  MdCtx ctx(EVP_MD_CTX_new());
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, as_pkey(pkey_)) != 1) {
    throw_openssl("EVP_DigestSignInit(ed25519)");
  }
  std::size_t length = 64;
  std::vector<std::uint8_t> signature(length);
  if (EVP_DigestSign(ctx.get(), signature.data(), &length, reinterpret_cast<const unsigned char*>(message.data()),
                     message.size()) != 1) {
    throw_openssl("EVP_DigestSign(ed25519)");
  }
  signature.resize(length);
  return signature;
}

std::array<std::uint8_t, 32> SigningKey::public_key() const {
  std::array<std::uint8_t, 32> out{};
  std::size_t length = out.size();
  if (EVP_PKEY_get_raw_public_key(as_pkey(pkey_), out.data(), &length) != 1 || length != 32) {
    throw_openssl("EVP_PKEY_get_raw_public_key(ed25519)");
  }
  return out;
}

std::vector<std::uint8_t> SigningKey::seed() const {
  std::vector<std::uint8_t> out(32);
  std::size_t length = out.size();
  if (EVP_PKEY_get_raw_private_key(as_pkey(pkey_), out.data(), &length) != 1 || length != 32) {
    throw_openssl("EVP_PKEY_get_raw_private_key(ed25519)");
  }
  return out;
}

bool ed25519_verify(std::span<const std::uint8_t> public_key, std::string_view message,
                    std::span<const std::uint8_t> signature) {
  if (public_key.size() != 32 || signature.size() != 64) return false;
  EVP_PKEY* pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, public_key.data(), public_key.size());
  if (pkey == nullptr) {
    ERR_clear_error();
    return false;
  }
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> owner(pkey, &EVP_PKEY_free);
  MdCtx ctx(EVP_MD_CTX_new());
  if (!ctx || EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, pkey) != 1) {
    throw_openssl("EVP_DigestVerifyInit(ed25519)");
  }
  const int ok = EVP_DigestVerify(ctx.get(), signature.data(), signature.size(),
                                  reinterpret_cast<const unsigned char*>(message.data()), message.size());
  ERR_clear_error();
  return ok == 1;
}

}  // namespace vlm::audit
