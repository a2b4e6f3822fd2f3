#pragma once

#include <string>
#include <string_view>
#include <utility>

#include <fmt/format.h>

// spdlog stays behind this header so model and server code need not include it.
namespace vlm::log {

enum class Level { kTrace, kDebug, kInfo, kWarn, kError, kOff };

struct LoggingOptions {
  Level level = Level::kInfo;
  bool json = false;  // one JSON object per line instead of human-readable text
};

Level parse_level(std::string_view name);  // throws vlm::Error kInvalidArgument
void configure(const LoggingOptions& options);
bool enabled(Level level);
void write(Level level, std::string_view message);
// Escapes control characters and quotes so client-supplied strings cannot forge log lines.
std::string sanitize(std::string_view text);

template <typename... Args>
void debug(fmt::format_string<Args...> format, Args&&... args) {
  if (enabled(Level::kDebug)) write(Level::kDebug, fmt::format(format, std::forward<Args>(args)...));
}
template <typename... Args>
void info(fmt::format_string<Args...> format, Args&&... args) {
  if (enabled(Level::kInfo)) write(Level::kInfo, fmt::format(format, std::forward<Args>(args)...));
}
template <typename... Args>
void warn(fmt::format_string<Args...> format, Args&&... args) {
  if (enabled(Level::kWarn)) write(Level::kWarn, fmt::format(format, std::forward<Args>(args)...));
}
template <typename... Args>
void error(fmt::format_string<Args...> format, Args&&... args) {
  if (enabled(Level::kError)) write(Level::kError, fmt::format(format, std::forward<Args>(args)...));
}

}  // namespace vlm::log
