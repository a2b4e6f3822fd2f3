#include "utf8.h"

namespace vlm::tokenizer_detail {
namespace {

constexpr char32_t kReplacement = 0xFFFD;

// Sequence length and the allowed range of the second byte for a lead byte (Unicode table 3-7);
// length 0 means the byte cannot start a sequence.
struct LeadInfo {
  int length;
  unsigned char second_lo;
  unsigned char second_hi;
};

LeadInfo lead_info(unsigned char b) {
  if (b >= 0xC2 && b <= 0xDF) return {2, 0x80, 0xBF};
  if (b == 0xE0) return {3, 0xA0, 0xBF};
  if ((b >= 0xE1 && b <= 0xEC) || b == 0xEE || b == 0xEF) return {3, 0x80, 0xBF};
  if (b == 0xED) return {3, 0x80, 0x9F};
  if (b == 0xF0) return {4, 0x90, 0xBF};
  if (b >= 0xF1 && b <= 0xF3) return {4, 0x80, 0xBF};
  if (b == 0xF4) return {4, 0x80, 0x8F};
  return {0, 0, 0};
}

// Length of the well-formed sequence at pos, or the negated length of its maximal invalid subpart.
int sequence_length(std::string_view text, std::size_t pos) {
  const auto b = static_cast<unsigned char>(text[pos]);
  if (b < 0x80) return 1;
  const LeadInfo info = lead_info(b);
  if (info.length == 0) return -1;
  std::size_t i = pos + 1;
  if (i >= text.size()) return -1;
  auto c = static_cast<unsigned char>(text[i]);
  if (c < info.second_lo || c > info.second_hi) return -1;
  ++i;
  for (int k = 2; k < info.length; ++k, ++i) {
    if (i >= text.size()) return -static_cast<int>(i - pos);
    c = static_cast<unsigned char>(text[i]);
    if (c < 0x80 || c > 0xBF) return -static_cast<int>(i - pos);
  }
  return info.length;
}

}  // namespace

bool next_code_point(std::string_view text, std::size_t& pos, char32_t& cp) {
  const int len = sequence_length(text, pos);
  if (len < 0) return false;
  const auto b0 = static_cast<unsigned char>(text[pos]);
  if (len == 1) {
    cp = b0;
  } else {
    static constexpr unsigned char kLeadMask[5] = {0, 0, 0x1F, 0x0F, 0x07};
    cp = b0 & kLeadMask[len];
    for (int k = 1; k < len; ++k) cp = (cp << 6) | (static_cast<unsigned char>(text[pos + k]) & 0x3F);
  }
  pos += static_cast<std::size_t>(len);
  return true;
}

std::size_t find_invalid_utf8(std::string_view text) {
  std::size_t pos = 0;
  while (pos < text.size()) {
    const int len = sequence_length(text, pos);
    if (len < 0) return pos;
    pos += static_cast<std::size_t>(len);
  }
  return std::string_view::npos;
}

std::string utf8_lossy(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  std::size_t pos = 0;
  while (pos < bytes.size()) {
    const int len = sequence_length(bytes, pos);
    if (len > 0) {
      out.append(bytes.substr(pos, static_cast<std::size_t>(len)));
      pos += static_cast<std::size_t>(len);
    } else {
      append_utf8(out, kReplacement);
      pos += static_cast<std::size_t>(-len);
    }
  }
  return out;
}

std::size_t truncated_utf8_tail(std::string_view bytes) {
  // A lead byte is never a continuation byte, so the sequence that may still be open starts at the
  // last lead byte among the final three.
  const std::size_t size = bytes.size();
  for (std::size_t back = 1; back <= 3 && back <= size; ++back) {
    const std::size_t pos = size - back;
    const auto b = static_cast<unsigned char>(bytes[pos]);
    if (b < 0x80) return 0;
    if (b <= 0xBF) continue;  // a continuation byte: look further back
    // Truncated exactly when what is there is well formed so far: the maximal subpart is the rest.
    const bool open =
        lead_info(b).length > static_cast<int>(back) && sequence_length(bytes, pos) == -static_cast<int>(back);
    return open ? back : 0;
  }
  return 0;
}

bool is_unicode_whitespace(char32_t cp) {
  if (cp <= 0x20) return cp == 0x20 || (cp >= 0x09 && cp <= 0x0D);
  if (cp < 0x85) return false;
  return cp == 0x85 || cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 ||
         cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

void append_utf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

}  // namespace vlm::tokenizer_detail
