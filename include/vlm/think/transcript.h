#pragma once

#include <string>
#include <string_view>

// The private /think transcript and the one parser that lets anything out of it.
//
// A transcript is a sequence of step blocks followed by exactly one final block:
//   <think-observe>..</think-observe> <think-read>..</think-read> <think-ground>..</think-ground>
//   <think-check>..</think-check> <final>..</final>
// Steps appear at most once each, in that order; only whitespace may separate blocks; nothing may
// follow </final>. Block text is escaped (&lt; &gt; &amp;), so a raw '<' inside a block can only be
// its closing tag: model output that contains tag-like text cannot open or close a block.
namespace vlm::think {

enum class Step { kObserve, kRead, kGround, kCheck };
std::string_view step_tag(Step step);  // "think-observe", ...

enum class TranscriptFault {
  kNone,
  kTooLarge,         // over kMaxTranscriptBytes
  kStrayText,        // non-whitespace outside every block
  kMalformedTag,     // '<' that does not start a well-formed tag we know, a raw '>', an unterminated tag
  kUnknownTag,       // <something> that is not one of ours
  kUnclosedBlock,    // input ends inside a block
  kNestedTag,        // an opening tag inside a block
  kMismatchedClose,  // a closing tag that does not close the open block, or one outside any block
  kStepOutOfOrder,
  kRepeatedStep,
  kStepAfterFinal,
  kMissingFinal,
  kEmptyFinal,  // nothing but whitespace inside <final>
  kRepeatedFinal,
  kTextAfterFinal,
  kBadEscape,    // '&' not starting &lt; &gt; or &amp;
  kInvalidUtf8,  // the final text is not valid UTF-8 (it goes into JSON responses)
};
// Stable snake_case name; safe to log and return: it never carries transcript text.
std::string_view fault_name(TranscriptFault fault);

inline constexpr std::size_t kMaxTranscriptBytes = 1 << 20;

struct Redacted {
  TranscriptFault fault = TranscriptFault::kNone;
  std::string final_text;  // unescaped; empty unless ok()
  bool ok() const { return fault == TranscriptFault::kNone; }
};

// Fail-closed redaction: the unescaped text of <final>, or a fault and nothing else.
Redacted redact(std::string_view transcript);
// As redact(); on a fault throws vlm::Error(kInternal) whose message names only the fault.
std::string final_text_or_throw(std::string_view transcript);

std::string escape_block_text(std::string_view text);

// Builds a well-formed transcript. Holds private text: never log or return str().
class TranscriptWriter {
 public:
  TranscriptWriter() = default;
  TranscriptWriter(const TranscriptWriter&) = delete;
  TranscriptWriter& operator=(const TranscriptWriter&) = delete;
  ~TranscriptWriter();
  void step(Step step, std::string_view text);
  void final_answer(std::string_view text);
  const std::string& str() const { return text_; }

 private:
  std::string text_;
};

}  // namespace vlm::think
