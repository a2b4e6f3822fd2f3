#include "vlm/think/policy.h"

#include <fstream>

#include "vlm/error.h"

namespace vlm::think {
namespace {

[[noreturn]] void bad(const std::string& what) { throw Error(ErrorCode::kInvalidArgument, "think policy: " + what); }

}  // namespace

std::string normalize_words(std::string_view text) {
  std::string out;
  bool gap = false;
  for (char raw : text) {
    const auto c = static_cast<unsigned char>(raw);
    if (std::isalnum(c) != 0 || c >= 0x80) {
      if (gap && !out.empty()) out.push_back(' ');
      gap = false;
      out.push_back(static_cast<char>(std::tolower(c)));
    } else if (raw == '\'') {
      continue;  // "what's" -> "whats", "don't" -> "dont"
    } else {
      gap = true;
    }
  }
  return out;
}

Policy Policy::from_json(const nlohmann::json& document) {
  if (!document.is_object()) bad("the document is not a JSON object");
  if (document.value("version", 0) != 1)
    bad("\"version\" must be 1, got " + document.value("version", nlohmann::json()).dump());
  Policy policy;
  if (document.contains("max_question_chars")) {
    const auto& max = document["max_question_chars"];
    if (!max.is_number_unsigned() || max.get<std::size_t>() == 0)
      bad("\"max_question_chars\" must be a positive integer");
    policy.max_question_chars = max.get<std::size_t>();
  }
  const auto& refuse = document.value("refuse", nlohmann::json::array());
  if (!refuse.is_array()) bad("\"refuse\" must be an array");
  for (std::size_t i = 0; i < refuse.size(); ++i) {
    const auto& item = refuse[i];
    const std::string where = "refuse[" + std::to_string(i) + "]";
    if (!item.is_object() || !item.contains("topic") || !item["topic"].is_string())
      bad(where + ".topic must be a string");
    if (!item.contains("refusal") || !item["refusal"].is_string() || item["refusal"].get<std::string>().empty()) {
      bad(where + ".refusal must be a non-empty string");
    }
    if (!item.contains("match") || !item["match"].is_array() || item["match"].empty()) {
      bad(where + ".match must be a non-empty array of phrases");
    }
    PolicyTopic topic{item["topic"].get<std::string>(), {}, item["refusal"].get<std::string>()};
    for (const auto& phrase : item["match"]) {
      if (!phrase.is_string() || normalize_words(phrase.get<std::string>()).empty()) {
        bad(where + ".match holds an empty or non-string phrase");
      }
      topic.match.push_back(normalize_words(phrase.get<std::string>()));
    }
    policy.refuse.push_back(std::move(topic));
  }
  return policy;
}

Policy Policy::load(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in) throw Error(ErrorCode::kNotFound, "think policy file not found: " + path.string());
  const auto document = nlohmann::json::parse(in, nullptr, false);
  if (document.is_discarded()) bad(path.string() + " is not valid JSON");
  return from_json(document);
}

const PolicyTopic* Policy::refused_topic(std::string_view question) const {
  const std::string words = " " + normalize_words(question) + " ";
  for (const auto& topic : refuse) {
    for (const auto& phrase : topic.match) {
      if (words.find(" " + phrase + " ") != std::string::npos) return &topic;
    }
  }
  return nullptr;
}

}  // namespace vlm::think
