#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>

#include "vlm/error.h"
#include "vlm/think/policy.h"
#include "vlm/think/question.h"

namespace vlm::think {
namespace {

std::filesystem::path repo_policy() {
  // ctest runs from the build tree; the policy lives in the source tree's configs/.
  return std::filesystem::path(VLM_SOURCE_DIR) / "configs" / "think-policy.json";
}

TEST(ThinkPolicy, ShippedPolicyLoadsAndRefusesOnWholeWords) {
  const auto policy = Policy::load(repo_policy());
  ASSERT_FALSE(policy.refuse.empty());
  const auto* topic = policy.refused_topic("Who is THIS, in the red shirt?");
  ASSERT_NE(topic, nullptr);
  EXPECT_EQ(topic->topic, "identify_person");
  EXPECT_EQ(topic->refusal, "I can't identify people from their appearance.");
  EXPECT_EQ(policy.refused_topic("How many people are in this photo?"), nullptr);
  // "who is the" must not fire inside other words ("whois thermal").
  EXPECT_EQ(policy.refused_topic("whois thermal camera count"), nullptr);
}

TEST(ThinkPolicy, BuiltinCopyEqualsTheShippedFile) {
  const auto builtin = Policy::builtin();
  const auto shipped = Policy::load(repo_policy());
  ASSERT_EQ(builtin.refuse.size(), shipped.refuse.size());
  for (std::size_t i = 0; i < builtin.refuse.size(); ++i) {
    EXPECT_EQ(builtin.refuse[i].topic, shipped.refuse[i].topic);
    EXPECT_EQ(builtin.refuse[i].match, shipped.refuse[i].match);
    EXPECT_EQ(builtin.refuse[i].refusal, shipped.refuse[i].refusal);
  }
  EXPECT_EQ(builtin.max_question_chars, shipped.max_question_chars);
}

TEST(ThinkPolicy, MalformedPoliciesNameTheField) {
  const auto message = [](const nlohmann::json& doc) {
    try {
      Policy::from_json(doc);
    } catch (const Error& error) {
      EXPECT_EQ(error.code(), ErrorCode::kInvalidArgument);
      return std::string(error.what());
    }
    return std::string("accepted");
  };
  EXPECT_NE(message({{"version", 2}}).find("version"), std::string::npos);
  EXPECT_NE(message({{"version", 1}, {"refuse", {{{"topic", "x"}, {"match", {"a"}}}}}}).find("refuse[0].refusal"),
            std::string::npos);
  EXPECT_NE(
      message({{"version", 1}, {"refuse", {{{"topic", "x"}, {"refusal", "no"}, {"match", nlohmann::json::array()}}}}})
          .find("refuse[0].match"),
      std::string::npos);
  EXPECT_NE(message({{"version", 1}, {"max_question_chars", 0}}).find("max_question_chars"), std::string::npos);
  EXPECT_THROW(Policy::load("/nonexistent/think-policy.json"), Error);
}

TEST(ThinkQuestion, KindsAndSubjects) {
  auto q = parse_question("How many people are in this photo?");
  EXPECT_EQ(q.kind, QuestionKind::kCount);
  EXPECT_EQ(q.subject, "people");
  q = parse_question("how many red cars are there");
  EXPECT_EQ(q.kind, QuestionKind::kCount);
  EXPECT_EQ(q.subject, "red cars");
  q = parse_question("Count the dogs");
  EXPECT_EQ(q.kind, QuestionKind::kCount);
  EXPECT_EQ(q.subject, "dogs");
  q = parse_question("What does the sign say?");
  EXPECT_EQ(q.kind, QuestionKind::kText);
  EXPECT_EQ(q.subject, "sign");
  q = parse_question("Where is the bus?");
  EXPECT_EQ(q.kind, QuestionKind::kDescribe);
  EXPECT_EQ(q.subject, "bus");
  EXPECT_EQ(parse_question("how many?").subject, "");
}

TEST(ThinkQuestion, SubjectsMapToDetectorClasses) {
  const std::vector<std::string> coco = {"person", "bicycle", "car", "bus", "traffic light", "mouse", "wine glass"};
  EXPECT_EQ(matching_labels("people", coco), std::vector<std::string>{"person"});
  EXPECT_EQ(matching_labels("women", coco), std::vector<std::string>{"person"});
  EXPECT_EQ(matching_labels("buses", coco), std::vector<std::string>{"bus"});
  EXPECT_EQ(matching_labels("red cars", coco), std::vector<std::string>{"car"});
  EXPECT_EQ(matching_labels("traffic lights", coco), std::vector<std::string>{"traffic light"});
  EXPECT_EQ(matching_labels("mice", coco), std::vector<std::string>{"mouse"});
  EXPECT_EQ(matching_labels("wine glasses", coco), std::vector<std::string>{"wine glass"});
  EXPECT_TRUE(matching_labels("giraffes", coco).empty());
  EXPECT_TRUE(matching_labels("", coco).empty());
  EXPECT_TRUE(matching_labels("carpet", coco).empty()) << "whole words only";
}

TEST(ThinkQuestion, CountedNouns) {
  EXPECT_EQ(counted_noun("person", 1), "person");
  EXPECT_EQ(counted_noun("person", 3), "people");
  EXPECT_EQ(counted_noun("bus", 2), "buses");
  EXPECT_EQ(counted_noun("car", 0), "cars");
  EXPECT_EQ(counted_noun("wine glass", 2), "wine glasses");
  EXPECT_EQ(counted_noun("skis", 2), "skis");
}

}  // namespace
}  // namespace vlm::think
