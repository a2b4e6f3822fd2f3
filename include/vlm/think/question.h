#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace vlm::think {

enum class QuestionKind { kCount, kText, kDescribe };

struct Question {
  QuestionKind kind = QuestionKind::kDescribe;
  std::string subject;  // normalized words naming what the question is about; may be empty
};

// "how many people are there?" -> {kCount, "people"}; "what does the sign say?" -> {kText, "sign"};
// anything else -> kDescribe with the words left after question words and fillers are removed.
Question parse_question(std::string_view question);

// Class names (as a detector spells them) that `subject` refers to, accepting plurals and a few
// synonyms ("people" -> "person"). Empty when the subject names none of them.
std::vector<std::string> matching_labels(std::string_view subject, const std::vector<std::string>& classes);

// "person" x 3 -> "people"; "bus" x 2 -> "buses"; any label x 1 -> itself.
std::string counted_noun(const std::string& label, std::size_t count);

}  // namespace vlm::think
