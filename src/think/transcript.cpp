#include "vlm/think/transcript.h"

#include <array>
#include <cstdint>
#include <optional>

#include <openssl/crypto.h>

#include "vlm/error.h"

namespace vlm::think {
namespace {

constexpr std::array<std::string_view, 4> kStepTags = {"think-observe", "think-read", "think-ground", "think-check"};
constexpr std::string_view kFinalTag = "final";
constexpr std::size_t kLongestTag = 16;  // "</think-observe>" is the longest tag we know

bool is_space(char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; }

// A tag we know: index 0..3 are the steps, 4 is final.
struct Tag {
  int index = -1;
  bool closing = false;
  std::size_t length = 0;  // bytes from '<' through '>'
};

// Reads the tag at `text[pos] == '<'`. nullopt: not a tag we know; `fault` says how.
std::optional<Tag> read_tag(std::string_view text, std::size_t pos, TranscriptFault& fault) {
  const std::size_t close = text.find('>', pos);
  if (close == std::string_view::npos || close - pos + 1 > kLongestTag) {
    fault = TranscriptFault::kMalformedTag;
    return std::nullopt;
  }
  std::string_view name = text.substr(pos + 1, close - pos - 1);
  Tag tag;
  tag.length = close - pos + 1;
  if (!name.empty() && name.front() == '/') {
    tag.closing = true;
    name.remove_prefix(1);
  }
  for (std::size_t i = 0; i < kStepTags.size(); ++i) {
    if (name == kStepTags[i]) tag.index = static_cast<int>(i);
  }
  if (name == kFinalTag) tag.index = 4;
  if (tag.index < 0) {
    fault = TranscriptFault::kUnknownTag;
    return std::nullopt;
  }
  return tag;
}

bool valid_utf8(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    std::size_t extra = 0;
    std::uint32_t code = 0;
    if (c < 0x80) {
      ++i;
      continue;
    }
    if ((c & 0xE0) == 0xC0) {
      extra = 1;
      code = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      extra = 2;
      code = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      extra = 3;
      code = c & 0x07;
    } else {
      return false;
    }
    if (i + extra >= s.size()) return false;
    for (std::size_t k = 1; k <= extra; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      code = (code << 6) | (cc & 0x3F);
    }
    constexpr std::uint32_t kMin[] = {0, 0x80, 0x800, 0x10000};
    if (code < kMin[extra] || code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF)) return false;
    i += extra + 1;
  }
  return true;
}

// Checks the escapes in block text; appends the unescaped text to `out` when it is given. A raw '>'
// is refused like a raw '<': the writer escapes both, so either one means the text was not ours.
TranscriptFault unescape(std::string_view text, std::string* out) {
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '>') return TranscriptFault::kMalformedTag;
    if (text[i] != '&') {
      if (out != nullptr) out->push_back(text[i]);
      continue;
    }
    const std::string_view rest = text.substr(i);
    char c = 0;
    std::size_t length = 0;
    if (rest.starts_with("&lt;")) {
      c = '<';
      length = 4;
    } else if (rest.starts_with("&gt;")) {
      c = '>';
      length = 4;
    } else if (rest.starts_with("&amp;")) {
      c = '&';
      length = 5;
    } else {
      return TranscriptFault::kBadEscape;
    }
    if (out != nullptr) out->push_back(c);
    i += length - 1;
  }
  return TranscriptFault::kNone;
}

Redacted fault(TranscriptFault f) {
  Redacted r;
  r.fault = f;
  return r;
}

}  // namespace

std::string_view step_tag(Step step) { return kStepTags[static_cast<std::size_t>(step)]; }

std::string_view fault_name(TranscriptFault fault) {
  switch (fault) {
    case TranscriptFault::kNone: return "none";
    case TranscriptFault::kTooLarge: return "too_large";
    case TranscriptFault::kStrayText: return "stray_text";
    case TranscriptFault::kMalformedTag: return "malformed_tag";
    case TranscriptFault::kUnknownTag: return "unknown_tag";
    case TranscriptFault::kUnclosedBlock: return "unclosed_block";
    case TranscriptFault::kNestedTag: return "nested_tag";
    case TranscriptFault::kMismatchedClose: return "mismatched_close";
    case TranscriptFault::kStepOutOfOrder: return "step_out_of_order";
    case TranscriptFault::kRepeatedStep: return "repeated_step";
    case TranscriptFault::kStepAfterFinal: return "step_after_final";
    case TranscriptFault::kMissingFinal: return "missing_final";
    case TranscriptFault::kEmptyFinal: return "empty_final";
    case TranscriptFault::kRepeatedFinal: return "repeated_final";
    case TranscriptFault::kTextAfterFinal: return "text_after_final";
    case TranscriptFault::kBadEscape: return "bad_escape";
    case TranscriptFault::kInvalidUtf8: return "invalid_utf8";
  }
  return "unknown";
}

Redacted redact(std::string_view text) {
  if (text.size() > kMaxTranscriptBytes) return fault(TranscriptFault::kTooLarge);
  int last_step = -1;
  std::optional<std::string_view> final_body;
  std::size_t pos = 0;
  while (pos < text.size()) {
    if (is_space(text[pos])) {
      ++pos;
      continue;
    }
    if (final_body) {
      // Name the most telling fault, but any byte after </final> is already fatal.
      TranscriptFault ignored = TranscriptFault::kNone;
      const auto tag = text[pos] == '<' ? read_tag(text, pos, ignored) : std::nullopt;
      if (tag && !tag->closing) {
        return fault(tag->index == 4 ? TranscriptFault::kRepeatedFinal : TranscriptFault::kStepAfterFinal);
      }
      return fault(TranscriptFault::kTextAfterFinal);
    }
    if (text[pos] != '<') return fault(TranscriptFault::kStrayText);
    TranscriptFault f = TranscriptFault::kNone;
    const auto open = read_tag(text, pos, f);
    if (!open) return fault(f);
    if (open->closing) return fault(TranscriptFault::kMismatchedClose);
    if (open->index < 4) {
      if (open->index == last_step) return fault(TranscriptFault::kRepeatedStep);
      if (open->index < last_step) return fault(TranscriptFault::kStepOutOfOrder);
      last_step = open->index;
    }
    const std::size_t body_start = pos + open->length;
    std::size_t cursor = body_start;
    while (true) {
      const std::size_t lt = text.find('<', cursor);
      if (lt == std::string_view::npos) return fault(TranscriptFault::kUnclosedBlock);
      TranscriptFault inner = TranscriptFault::kNone;
      const auto tag = read_tag(text, lt, inner);
      if (!tag) return fault(inner == TranscriptFault::kUnknownTag ? TranscriptFault::kMalformedTag : inner);
      if (!tag->closing) return fault(TranscriptFault::kNestedTag);
      if (tag->index != open->index) return fault(TranscriptFault::kMismatchedClose);
      const std::string_view body = text.substr(body_start, lt - body_start);
      if (const auto e = unescape(body, nullptr); e != TranscriptFault::kNone) return fault(e);
      if (open->index == 4) final_body = body;
      pos = lt + tag->length;
      break;
    }
  }
  if (!final_body) return fault(TranscriptFault::kMissingFinal);
  Redacted out;
  unescape(*final_body, &out.final_text);
  bool blank = true;
  for (char c : out.final_text) blank = blank && is_space(c);
  if (blank) return fault(TranscriptFault::kEmptyFinal);
  if (!valid_utf8(out.final_text)) return fault(TranscriptFault::kInvalidUtf8);
  return out;
}

std::string final_text_or_throw(std::string_view transcript) {
  Redacted r = redact(transcript);
  if (!r.ok()) {
    throw Error(ErrorCode::kInternal, "transcript rejected by redaction (" + std::string(fault_name(r.fault)) + ")");
  }
  return std::move(r.final_text);
}

std::string escape_block_text(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '&': out += "&amp;"; break;
      default: out.push_back(c);
    }
  }
  return out;
}

TranscriptWriter::~TranscriptWriter() { OPENSSL_cleanse(text_.data(), text_.size()); }

void TranscriptWriter::step(Step s, std::string_view text) {
  const auto tag = step_tag(s);
  text_ += "<" + std::string(tag) + ">" + escape_block_text(text) + "</" + std::string(tag) + ">\n";
}

void TranscriptWriter::final_answer(std::string_view text) {
  text_ += "<final>" + escape_block_text(text) + "</final>";
}

}  // namespace vlm::think
