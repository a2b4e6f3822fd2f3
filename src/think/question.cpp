#include "vlm/think/question.h"

#include <map>
#include <set>
#include <sstream>

#include "vlm/think/policy.h"

namespace vlm::think {
namespace {

const std::set<std::string, std::less<>>& fillers() {
  static const std::set<std::string, std::less<>> kWords = {
      "what",    "where", "which", "who",    "how",      "many",  "much",  "is",     "are",   "was",    "were",
      "the",     "a",     "an",    "this",   "that",     "these", "those", "there",  "in",    "on",     "of",
      "at",      "to",    "do",    "does",   "did",      "can",   "could", "you",    "see",   "image",  "photo",
      "picture", "say",   "says",  "read",   "written",  "text",  "any",   "please", "tell",  "me",     "count",
      "number",  "show",  "find",  "locate", "describe", "it",    "its",   "i",      "whats", "wheres", "visible",
      "here",    "shown", "total", "for",    "with",     "by",    "be",    "have",   "has"};
  return kWords;
}

std::vector<std::string> split(const std::string& words) {
  std::vector<std::string> out;
  std::istringstream in(words);
  std::string word;
  while (in >> word) out.push_back(word);
  return out;
}

std::string join(const std::vector<std::string>& words) {
  std::string out;
  for (const auto& w : words) out += (out.empty() ? "" : " ") + w;
  return out;
}

bool contains_word(const std::string& padded, std::string_view word) {
  return padded.find(" " + std::string(word) + " ") != std::string::npos;
}

const std::map<std::string, std::vector<std::string>, std::less<>>& irregular() {
  static const std::map<std::string, std::vector<std::string>, std::less<>> kForms = {
      {"person",
       {"people", "persons", "man", "men", "woman", "women", "child", "children", "kid", "kids", "human", "humans",
        "pedestrian", "pedestrians", "player", "players"}},
      {"mouse", {"mice"}},
      {"knife", {"knives"}},
      {"sheep", {"sheep"}},
      {"skis", {"ski"}},
  };
  return kForms;
}

}  // namespace

Question parse_question(std::string_view text) {
  const std::string words = normalize_words(text);
  const std::string padded = " " + words + " ";
  Question question;
  if (padded.find(" how many ") != std::string::npos || words.starts_with("count ") ||
      padded.find(" number of ") != std::string::npos) {
    question.kind = QuestionKind::kCount;
  } else {
    for (std::string_view cue : {"say", "says", "read", "written", "text", "writing", "words", "word", "ocr"}) {
      if (contains_word(padded, cue)) question.kind = QuestionKind::kText;
    }
  }
  auto tokens = split(words);
  if (question.kind == QuestionKind::kCount) {
    // The subject is the run of content words right after "how many" / "number of" / "count".
    std::size_t start = 0;
    for (std::size_t i = 0; i + 1 < tokens.size(); ++i) {
      if ((tokens[i] == "how" && tokens[i + 1] == "many") || (tokens[i] == "number" && tokens[i + 1] == "of")) {
        start = i + 2;
        break;
      }
      if (tokens[i] == "count") {
        start = i + 1;
        break;
      }
    }
    std::vector<std::string> subject;
    for (std::size_t i = start; i < tokens.size(); ++i) {
      if (fillers().contains(tokens[i])) {
        if (subject.empty()) continue;
        break;
      }
      subject.push_back(tokens[i]);
    }
    question.subject = join(subject);
    return question;
  }
  std::vector<std::string> subject;
  for (const auto& token : tokens) {
    if (!fillers().contains(token)) subject.push_back(token);
  }
  question.subject = join(subject);
  return question;
}

std::vector<std::string> matching_labels(std::string_view subject, const std::vector<std::string>& classes) {
  std::vector<std::string> out;
  const std::string padded = " " + normalize_words(subject) + " ";
  if (padded.size() <= 2) return out;
  for (const auto& label : classes) {
    const std::string name = normalize_words(label);
    if (name.empty()) continue;
    std::vector<std::string> forms = {name, name + "s", name + "es"};
    if (auto it = irregular().find(name); it != irregular().end())
      forms.insert(forms.end(), it->second.begin(), it->second.end());
    for (const auto& form : forms) {
      if (contains_word(padded, form)) {
        out.push_back(label);
        break;
      }
    }
  }
  return out;
}

std::string counted_noun(const std::string& label, std::size_t count) {
  if (count == 1) return label;
  if (label == "person") return "people";
  if (label == "mouse") return "mice";
  if (label == "knife") return "knives";
  if (label == "sheep" || label == "skis" || label == "scissors") return label;
  if (label.ends_with("s") || label.ends_with("ch") || label.ends_with("sh") || label.ends_with("x"))
    return label + "es";
  return label + "s";
}

}  // namespace vlm::think
