// libFuzzer target for the /think redaction parser. Beyond "no crash", it checks the properties the
// no-leak guarantee rests on; any violation aborts so libFuzzer (or the replay driver) reports it.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "vlm/error.h"
#include "vlm/think/transcript.h"

namespace {

void require(bool condition) {
  if (!condition) std::abort();
}

std::size_t count(std::string_view haystack, std::string_view needle) {
  std::size_t n = 0;
  for (std::size_t pos = haystack.find(needle); pos != std::string_view::npos; pos = haystack.find(needle, pos + 1))
    ++n;
  return n;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace vlm::think;
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const Redacted result = redact(input);
  if (!result.ok()) {
    require(result.final_text.empty());
    try {
      (void)final_text_or_throw(input);
      require(false);
    } catch (const vlm::Error& error) {
      // The message is fixed text plus the fault name: no byte of the transcript.
      require(std::string(error.what()) ==
              "transcript rejected by redaction (" + std::string(fault_name(result.fault)) + ")");
    }
    return 0;
  }
  // Accepted: exactly one final block, last, whose escaped text is in the input verbatim.
  std::string_view trimmed = input;
  while (!trimmed.empty() &&
         (trimmed.back() == ' ' || trimmed.back() == '\n' || trimmed.back() == '\r' || trimmed.back() == '\t')) {
    trimmed.remove_suffix(1);
  }
  require(trimmed.ends_with("</final>"));
  require(count(input, "<final>") == 1 && count(input, "</final>") == 1);
  const std::string block = "<final>" + escape_block_text(result.final_text) + "</final>";
  require(trimmed.ends_with(block));
  require(!result.final_text.empty());
  // What the writer produces from the final text parses back to the same text.
  TranscriptWriter writer;
  writer.final_answer(result.final_text);
  const Redacted again = redact(writer.str());
  require(again.ok() && again.final_text == result.final_text);
  return 0;
}
