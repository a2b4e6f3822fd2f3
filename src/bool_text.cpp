#include "vlm/bool_text.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <string>

namespace vlm {

std::optional<bool> parse_bool_text(std::string_view text) {
  auto space = [](unsigned char c) { return std::isspace(c) != 0; };
  while (!text.empty() && space(text.front())) text.remove_prefix(1);
  while (!text.empty() && space(text.back())) text.remove_suffix(1);
  std::string lowered(text);
  std::transform(lowered.begin(), lowered.end(), lowered.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  static constexpr std::array<std::string_view, 4> kTrue = {"true", "1", "yes", "on"};
  static constexpr std::array<std::string_view, 4> kFalse = {"false", "0", "no", "off"};
  if (std::find(kTrue.begin(), kTrue.end(), lowered) != kTrue.end()) return true;
  if (std::find(kFalse.begin(), kFalse.end(), lowered) != kFalse.end()) return false;
  return std::nullopt;
}

}  // namespace vlm
