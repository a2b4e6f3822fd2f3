#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace vlm::think {

// configs/think-policy.json: topics whose questions are refused, each with its refusal text.
struct PolicyTopic {
  std::string topic;
  std::vector<std::string> match;  // lower-case phrases, matched on word boundaries
  std::string refusal;
};

struct Policy {
  std::vector<PolicyTopic> refuse;
  std::size_t max_question_chars = 500;

  // Throws kInvalidArgument naming the first malformed field, kNotFound for a missing file.
  static Policy from_json(const nlohmann::json& document);
  static Policy load(const std::filesystem::path& path);
  // configs/think-policy.json as it was when this binary was built.
  static Policy builtin();

  // The first topic whose phrase occurs in the question (case-insensitive, whole words).
  const PolicyTopic* refused_topic(std::string_view question) const;
};

// Lower-case ASCII, every run of non-alphanumerics turned into one space, trimmed: "How MANY  dogs?"
// -> "how many dogs". Phrase matching and subject extraction both work on this form.
std::string normalize_words(std::string_view text);

}  // namespace vlm::think
