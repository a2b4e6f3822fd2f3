#pragma once

#include <string>
#include <string_view>

namespace vlm::server {

// A client's X-Request-Id is honoured when it is 1-128 characters of [A-Za-z0-9._:-]; anything
// else (control characters, log-forging attempts, huge values) is replaced by a generated id.
bool acceptable_request_id(std::string_view id);
std::string generate_request_id();

// Same-length inputs compare in time independent of where they differ (API keys).
bool constant_time_equal(std::string_view a, std::string_view b);

}  // namespace vlm::server
