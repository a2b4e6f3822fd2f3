#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace vlm::server {

// Where an image_url of a chat request may be fetched from (--image-url-* options).
struct ImageUrlPolicy {
  std::vector<std::string> hosts;  // empty: data: URLs only
  std::size_t max_bytes = 10U << 20U;
  std::chrono::milliseconds timeout{10'000};
  bool allow_private = false;  // tests only
};

// The encoded image behind an image_url: a data: URL's base64 payload, or the body of an http(s)
// URL whose host is on the allow-list and resolves only to public addresses. The connection goes to
// the address that was checked (no second lookup a DNS answer could change), redirects are not
// followed, and the body is cut off at max_bytes (payload_too_large) and at the timeout. Other
// refusals and fetch failures are invalid_argument naming `field`.
std::string load_image_url(const std::string& url, const std::string& field, const ImageUrlPolicy& policy);

// Whether `host` matches an allow-list entry: the same name (case-insensitive), or "*.example.com"
// for any subdomain of example.com.
bool host_allowed(std::string_view host, const std::vector<std::string>& hosts);

// Whether a numeric IPv4 or IPv6 address is publicly routable: not loopback, private (RFC 1918,
// fc00::/7), carrier-grade NAT, link-local, unspecified, multicast, reserved or documentation;
// IPv4-mapped IPv6 addresses are judged by their IPv4 address. Unparsable text is not public.
bool is_public_address(const std::string& address);

}  // namespace vlm::server
