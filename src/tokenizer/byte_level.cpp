#include "byte_level.h"

#include <array>
#include <unordered_map>

#include "unicode_classes.h"
#include "utf8.h"

namespace vlm::tokenizer_detail {
namespace {

struct ByteMaps {
  std::array<std::string, 256> to_chars;
  std::unordered_map<char32_t, unsigned char> to_byte;

  ByteMaps() {
    // Printable Latin-1 bytes spell themselves; the rest take code points 256, 257, ... in order.
    char32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      const char32_t cp = printable ? static_cast<char32_t>(b) : next++;
      append_utf8(to_chars[static_cast<std::size_t>(b)], cp);
      to_byte.emplace(cp, static_cast<unsigned char>(b));
    }
  }
};

const ByteMaps& maps() {
  static const ByteMaps kMaps;
  return kMaps;
}

}  // namespace

const std::string& byte_to_chars(unsigned char b) { return maps().to_chars[b]; }

std::string bytes_to_token_chars(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char c : bytes) out += maps().to_chars[static_cast<unsigned char>(c)];
  return out;
}

std::string token_to_bytes(std::string_view token) {
  const auto& to_byte = maps().to_byte;
  std::string out;
  out.reserve(token.size());
  std::size_t pos = 0;
  char32_t cp = 0;
  while (pos < token.size()) {
    if (!next_code_point(token, pos, cp)) return std::string(token);
    auto it = to_byte.find(cp);
    if (it == to_byte.end()) return std::string(token);
    out += static_cast<char>(it->second);
  }
  return out;
}

void split_gpt2(std::string_view text, std::vector<std::pair<std::size_t, std::size_t>>& pieces) {
  using C = CodePointClass;
  static const std::array<C, 128> ascii = [] {
    std::array<C, 128> table{};
    for (char32_t c = 0; c < 128; ++c) table[c] = classify_code_point(c);
    return table;
  }();
  // Decode once: byte offset and class of every code point, plus an end sentinel offset.
  std::vector<std::size_t> offset;
  std::vector<C> cls;
  std::vector<char32_t> cps;
  offset.reserve(text.size() + 1);
  cls.reserve(text.size());
  cps.reserve(text.size());
  for (std::size_t pos = 0; pos < text.size();) {
    char32_t cp = 0;
    offset.push_back(pos);
    if (!next_code_point(text, pos, cp)) {
      cp = static_cast<unsigned char>(text[pos]);  // callers validate; stay total anyway
      ++pos;
    }
    cps.push_back(cp);
    cls.push_back(cp < 0x80 ? ascii[cp] : classify_code_point(cp));
  }
  const std::size_t n = cps.size();
  offset.push_back(text.size());

  auto emit = [&](std::size_t a, std::size_t b) { pieces.emplace_back(offset[a], offset[b]); };
  auto run_end = [&](std::size_t j, C c) {
    while (j < n && cls[j] == c) ++j;
    return j;
  };

  std::size_t i = 0;
  while (i < n) {
    const char32_t cp = cps[i];
    if (cp == '\'' && i + 1 < n) {
      const char32_t a = cps[i + 1];
      const char32_t b = i + 2 < n ? cps[i + 2] : 0;
      std::size_t len = 0;
      if (a == 's' || a == 't' || a == 'm' || a == 'd') {
        len = 2;
      } else if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) {
        len = 3;
      }
      if (len > 0) {
        emit(i, i + len);
        i += len;
        continue;
      }
    }
    std::size_t j = i;
    if (cp == ' ' && i + 1 < n && cls[i + 1] != C::kSpace) j = i + 1;  // the optional leading space
    const C c = cls[j];
    if (c != C::kSpace) {
      const std::size_t end = run_end(j, c);
      emit(i, end);
      i = end;
      continue;
    }
    // \s+(?!\S) keeps the last space of a run for the word after it; a lone space before a word
    // falls through to \s+.
    const std::size_t end = run_end(i, C::kSpace);
    const std::size_t take = end == n ? end : (end - i >= 2 ? end - 1 : i + 1);
    emit(i, take);
    i = take;
  }
}

}  // namespace vlm::tokenizer_detail
