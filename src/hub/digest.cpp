#include "vlm/hub/digest.h"

#include <openssl/evp.h>

#include <algorithm>
#include <cctype>
#include <string>

#include "vlm/error.h"

namespace vlm::hub {

struct BlobHasher::State {
  EVP_MD_CTX* context = nullptr;
  ~State() { EVP_MD_CTX_free(context); }
};

namespace {

bool is_lower_hex(std::string_view text, std::size_t length) {
  return text.size() == length && std::all_of(text.begin(), text.end(), [](unsigned char c) {
           return std::isdigit(c) || (c >= 'a' && c <= 'f');
         });
}

}  // namespace

BlobHasher::BlobHasher(std::unique_ptr<State> state, std::string_view algorithm)
    : state_(std::move(state)), algorithm_(algorithm) {}
BlobHasher::BlobHasher(BlobHasher&&) noexcept = default;
BlobHasher& BlobHasher::operator=(BlobHasher&&) noexcept = default;
BlobHasher::~BlobHasher() = default;

BlobHasher BlobHasher::create(bool use_sha256) {
  auto state = std::make_unique<State>();
  state->context = EVP_MD_CTX_new();
  const EVP_MD* digest = use_sha256 ? EVP_sha256() : EVP_sha1();
  if (state->context == nullptr || EVP_DigestInit_ex(state->context, digest, nullptr) != 1) {
    throw Error(ErrorCode::kInternal, "OpenSSL could not start a digest");
  }
  return BlobHasher(std::move(state), use_sha256 ? "sha256" : "git-sha1");
}

BlobHasher BlobHasher::sha256() { return create(true); }

BlobHasher BlobHasher::git_blob_sha1(std::uint64_t size) {
  BlobHasher hasher = create(false);
  std::string header = "blob " + std::to_string(size);
  hasher.update(header.data(), header.size() + 1);  // git's header ends with its NUL
  return hasher;
}

void BlobHasher::update(const void* data, std::size_t size) {
  if (EVP_DigestUpdate(state_->context, data, size) != 1)
    throw Error(ErrorCode::kInternal, "OpenSSL digest update failed");
}

std::string BlobHasher::hex_digest() {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (EVP_DigestFinal_ex(state_->context, digest, &length) != 1)
    throw Error(ErrorCode::kInternal, "OpenSSL digest final failed");
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(static_cast<std::size_t>(length) * 2);
  for (unsigned int i = 0; i < length; ++i) {
    hex += kHex[digest[i] >> 4];
    hex += kHex[digest[i] & 0xf];
  }
  return hex;
}

bool is_sha256_hex(std::string_view text) { return is_lower_hex(text, 64); }
bool is_sha1_hex(std::string_view text) { return is_lower_hex(text, 40); }

}  // namespace vlm::hub
