#include "image_url.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <memory>

#include "errors.h"
#include "image_input.h"
#include "json_body.h"
#include "vlm/hub/http_client.h"

namespace vlm::server {
namespace {

std::string lower(std::string_view text) {
  std::string out(text);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool public_ipv4(std::uint32_t a) {
  struct Block {
    std::uint32_t base;
    int bits;
  };
  // IANA special-purpose registry, the blocks a server-side fetch must never reach.
  static constexpr std::array<Block, 15> kBlocked = {{
      {0x00000000, 8},   // "this network"
      {0x0A000000, 8},   // private
      {0x64400000, 10},  // carrier-grade NAT
      {0x7F000000, 8},   // loopback
      {0xA9FE0000, 16},  // link-local (cloud metadata services live here)
      {0xAC100000, 12},  // private
      {0xC0000000, 24},  // IETF protocol assignments
      {0xC0000200, 24},  // documentation
      {0xC0A80000, 16},  // private
      {0xC6120000, 15},  // benchmarking
      {0xC6336400, 24},  // documentation
      {0xCB007100, 24},  // documentation
      {0xE0000000, 4},   // multicast
      {0xF0000000, 4},   // reserved, broadcast
      {0xC0586300, 24},  // 6to4 relay anycast
  }};
  return std::none_of(kBlocked.begin(), kBlocked.end(), [a](const Block& block) {
    const std::uint32_t mask = block.bits == 0 ? 0 : ~std::uint32_t{0} << (32 - block.bits);
    return (a & mask) == block.base;
  });
}

bool public_ipv6(const std::array<std::uint8_t, 16>& b) {
  const bool zero_prefix = std::all_of(b.begin(), b.begin() + 10, [](std::uint8_t x) { return x == 0; });
  if (zero_prefix && b[10] == 0xFF && b[11] == 0xFF) {  // IPv4-mapped
    return public_ipv4(static_cast<std::uint32_t>(b[12]) << 24U | static_cast<std::uint32_t>(b[13]) << 16U |
                       static_cast<std::uint32_t>(b[14]) << 8U | b[15]);
  }
  if (zero_prefix && b[10] == 0 && b[11] == 0) return false;  // ::, ::1 and the deprecated IPv4-compatible block
  if ((b[0] & 0xFEU) == 0xFC) return false;                   // unique local fc00::/7
  if (b[0] == 0xFE && (b[1] & 0xC0U) == 0x80) return false;   // link-local fe80::/10
  if (b[0] == 0xFE && (b[1] & 0xC0U) == 0xC0) return false;   // site-local fec0::/10
  if (b[0] == 0xFF) return false;                             // multicast
  if (b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x0D && b[3] == 0xB8) return false;  // documentation
  if (b[0] == 0x00 && b[1] == 0x64 && b[2] == 0xFF && b[3] == 0x9B) return false;  // NAT64 (64:ff9b::/96)
  if (b[0] == 0x20 && b[1] == 0x02) return false;                                  // 6to4: may embed any IPv4 address
  return true;
}

// The addresses `host` resolves to, numeric. Throws invalid_argument naming the field.
std::vector<std::string> resolve(const std::string& host, const std::string& field) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  const int status = getaddrinfo(host.c_str(), nullptr, &hints, &found);
  if (status != 0) {
    throw FieldError(ErrorCode::kInvalidArgument, field,
                     "image URL host " + quote_bounded(host) + " does not resolve: " + gai_strerror(status));
  }
  const std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> owner(found, &freeaddrinfo);
  std::vector<std::string> addresses;
  for (const addrinfo* entry = found; entry != nullptr; entry = entry->ai_next) {
    std::array<char, INET6_ADDRSTRLEN> text{};
    const void* raw = entry->ai_family == AF_INET
                          ? static_cast<const void*>(&reinterpret_cast<const sockaddr_in*>(entry->ai_addr)->sin_addr)
                          : static_cast<const void*>(&reinterpret_cast<const sockaddr_in6*>(entry->ai_addr)->sin6_addr);
    if ((entry->ai_family == AF_INET || entry->ai_family == AF_INET6) &&
        inet_ntop(entry->ai_family, raw, text.data(), text.size()) != nullptr) {
      addresses.emplace_back(text.data());
    }
  }
  if (addresses.empty()) {
    throw FieldError(ErrorCode::kInvalidArgument, field, "image URL host " + quote_bounded(host) + " has no address");
  }
  return addresses;
}

std::string fetch(const std::string& url_text, const std::string& field, const ImageUrlPolicy& policy) {
  if (policy.hosts.empty()) {
    throw FieldError(ErrorCode::kInvalidArgument, field,
                     field +
                         ": this server fetches no image URLs (its operator enables them with "
                         "--image-url-hosts); send the image as a data: URL");
  }
  hub::Url url;
  try {
    url = hub::parse_url(url_text);
  } catch (const Error& error) {
    throw FieldError(ErrorCode::kInvalidArgument, field, field + ": " + error.what());
  }
  std::string host = url.host;
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  if (!host_allowed(host, policy.hosts)) {
    throw FieldError(
        ErrorCode::kInvalidArgument, field,
        field + ": host " + quote_bounded(host) + " is not one this server fetches from (--image-url-hosts)");
  }
  const std::vector<std::string> addresses = resolve(host, field);
  if (!policy.allow_private) {
    for (const auto& address : addresses) {
      if (!is_public_address(address)) {
        throw FieldError(ErrorCode::kInvalidArgument, field,
                         field + ": host " + quote_bounded(host) + " resolves to " + address +
                             ", a loopback, private or link-local address, which image URLs may not reach");
      }
    }
  }

  const auto deadline = std::chrono::steady_clock::now() + policy.timeout;
  const auto whole_seconds =
      std::chrono::seconds(static_cast<std::int64_t>(std::ceil(std::chrono::duration<double>(policy.timeout).count())));
  const hub::HttpClient client(hub::HttpSettings{whole_seconds, whole_seconds});
  hub::HttpRequest request{url, {{"Accept", "image/*"}}, addresses.front()};
  std::string body;
  enum class Stop { kNone, kStatus, kTooLarge, kTimeout } stop = Stop::kNone;
  hub::HttpResponse head;
  try {
    head = client.get_streamed(
        request,
        [&](const hub::HttpResponse& response) {
          if (response.status != 200) {
            stop = Stop::kStatus;
            return false;
          }
          const std::string length = response.header("content-length");
          if (!length.empty() && length.size() < 19 && std::all_of(length.begin(), length.end(), ::isdigit) &&
              std::stoull(length) > policy.max_bytes) {
            stop = Stop::kTooLarge;
            return false;
          }
          return true;
        },
        [&](const char* data, std::size_t size) {
          if (body.size() + size > policy.max_bytes) {
            stop = Stop::kTooLarge;
            return false;
          }
          if (std::chrono::steady_clock::now() > deadline) {
            stop = Stop::kTimeout;
            return false;
          }
          body.append(data, size);
          return true;
        });
  } catch (const Error&) {
    // The hub client's message speaks of the hub; here it is the client's URL that failed.
    throw FieldError(ErrorCode::kInvalidArgument, field,
                     field + ": fetching " + quote_bounded(url.to_string(), 200) +
                         " failed (connection refused, reset or timed out after " +
                         std::to_string(whole_seconds.count()) + " s)");
  }
  const std::string where = field + ": " + quote_bounded(url.to_string(), 200);
  switch (stop) {
    case Stop::kStatus:
      throw FieldError(ErrorCode::kInvalidArgument, field,
                       where + " answered HTTP " + std::to_string(head.status) +
                           (head.is_redirect() ? " (a redirect; redirects are not followed)" : ""));
    case Stop::kTooLarge:
      throw FieldError(
          ErrorCode::kPayloadTooLarge, field,
          where + " is over the limit of " + std::to_string(policy.max_bytes) + " bytes (--image-url-max-mb)");
    case Stop::kTimeout:
      throw FieldError(ErrorCode::kInvalidArgument, field,
                       where + " took longer than " + std::to_string(policy.timeout.count()) +
                           " ms to send (--image-url-timeout-s)");
    case Stop::kNone: break;
  }
  return body;
}

}  // namespace

bool host_allowed(std::string_view host, const std::vector<std::string>& hosts) {
  const std::string name = lower(host);
  return std::any_of(hosts.begin(), hosts.end(), [&](const std::string& entry) {
    const std::string allowed = lower(entry);
    if (allowed.starts_with("*.")) {
      const std::string_view suffix = std::string_view(allowed).substr(1);  // ".example.com"
      return name.size() > suffix.size() && name.ends_with(suffix);
    }
    return name == allowed;
  });
}

bool is_public_address(const std::string& address) {
  in_addr v4{};
  if (inet_pton(AF_INET, address.c_str(), &v4) == 1) return public_ipv4(ntohl(v4.s_addr));
  std::array<std::uint8_t, 16> v6{};
  if (inet_pton(AF_INET6, address.c_str(), v6.data()) == 1) return public_ipv6(v6);
  return false;
}

std::string load_image_url(const std::string& url, const std::string& field, const ImageUrlPolicy& policy) {
  if (url.starts_with("data:")) {
    try {
      return decode_base64(url);
    } catch (const Error& error) {
      throw FieldError(error.code(), field, field + ": " + error.what());
    }
  }
  return fetch(url, field, policy);
}

}  // namespace vlm::server
