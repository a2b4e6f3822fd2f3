// POST /v1/chat/completions below the socket: how a chat body becomes one image, one Florence-2 task
// and an answer shape, which addresses an image URL may reach, and the OpenAI error body. The
// black-box test with the openai client (tests/integration/test_openai_api.py) covers the route.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "chat_request.h"
#include "chat_response.h"
#include "errors.h"
#include "image_url.h"

namespace vlm::server {
namespace {

using Json = nlohmann::json;

Json body_with(Json content, Json extra = Json::object()) {
  Json body = {{"model", "m"}, {"messages", {{{"role", "user"}, {"content", std::move(content)}}}}};
  body.update(extra);
  return body;
}

Json image_part(const std::string& url = "data:image/png;base64,aGVsbG8=") {
  return {{"type", "image_url"}, {"image_url", {{"url", url}}}};
}

// "422 invalid_argument n": status, code and field of the FieldError `action` throws.
std::string refusal(const Json& body) {
  try {
    parse_chat_request(body);
  } catch (const FieldError& error) {
    return std::to_string(http_status(error.code())) + " " + std::string(error_code_name(error.code())) + " " +
           error.field();
  } catch (const Error& error) {
    return std::to_string(http_status(error.code())) + " " + std::string(error_code_name(error.code()));
  }
  return "accepted";
}

TEST(ChatRequest, ReadsTheLastUserMessage) {
  Json body = {{"model", "florence"},
               {"stream", true},
               {"stream_options", {{"include_usage", true}}},
               {"temperature", 0.3},
               {"messages",
                {{{"role", "system"}, {"content", "be brief"}},
                 {{"role", "user"}, {"content", {image_part("data:,old")}}},
                 {{"role", "assistant"}, {"content", "a dog"}},
                 {{"role", "user"}, {"content", {{{"type", "text"}, {"text", "<OD>"}}, image_part()}}}}}};
  const ChatRequest chat = parse_chat_request(body);
  EXPECT_EQ(chat.model, "florence");
  EXPECT_EQ(chat.image_url, "data:image/png;base64,aGVsbG8=");
  EXPECT_EQ(chat.image_url_field, "messages[3].content[1].image_url.url");
  EXPECT_EQ(chat.prompt, "<OD>");
  EXPECT_TRUE(chat.stream);
  EXPECT_TRUE(chat.include_usage);
}

TEST(ChatRequest, RefusesWhatItCannotHonourNamingTheField) {
  const Json parts = Json::array({image_part()});
  EXPECT_EQ(refusal(body_with(parts, {{"n", 2}})), "422 invalid_argument n");
  EXPECT_EQ(refusal(body_with(parts, {{"n", 1}})), "accepted");
  EXPECT_EQ(refusal(body_with(parts, {{"max_tokens", 10}})), "accepted");
  EXPECT_EQ(refusal(body_with(parts, {{"max_tokens", nullptr}})), "accepted");
  EXPECT_EQ(refusal(body_with(parts, {{"max_tokens", 0}})), "422 invalid_argument max_tokens");
  EXPECT_EQ(refusal(body_with(parts, {{"max_completion_tokens", 2.5}})), "422 invalid_argument max_completion_tokens");
  EXPECT_EQ(parse_chat_request(body_with(parts, {{"max_completion_tokens", 12}})).max_new_tokens, 12);
  EXPECT_FALSE(parse_chat_request(body_with(parts, Json::object())).max_new_tokens.has_value());
  EXPECT_EQ(refusal(body_with(parts, {{"tools", Json::array({{{"type", "function"}}})}})),
            "422 invalid_argument tools");
  EXPECT_EQ(refusal(body_with(parts, {{"tools", Json::array()}, {"tool_choice", "none"}})), "accepted");
  EXPECT_EQ(refusal(body_with(parts, {{"response_format", {{"type", "json_object"}}}})),
            "422 invalid_argument response_format");
  EXPECT_EQ(refusal(body_with(parts, {{"best_of", 2}})), "422 unknown_parameter best_of");
  EXPECT_EQ(refusal(body_with(parts, {{"stream_options", {{"continuous", true}}}})),
            "422 unknown_parameter stream_options.continuous");
}

TEST(ChatRequest, ShapeErrorsAndMissingImages) {
  EXPECT_EQ(refusal(Json::array()), "400 bad_json");
  EXPECT_EQ(refusal({{"model", "m"}}), "400 bad_json messages");
  EXPECT_EQ(refusal({{"messages", Json::array()}}), "400 bad_json messages");
  EXPECT_EQ(refusal({{"messages", {{{"role", "robot"}, {"content", "x"}}}}}), "400 bad_json messages[0].role");
  EXPECT_EQ(refusal(body_with("describe it")), "400 missing_image messages[0].content");
  EXPECT_EQ(refusal({{"messages", {{{"role", "system"}, {"content", "x"}}}}}), "400 missing_image messages");
  EXPECT_EQ(refusal(body_with({image_part(), image_part()})), "422 invalid_argument messages[0].content[1]");
  EXPECT_EQ(refusal(body_with({{{"type", "input_audio"}}})), "422 invalid_argument messages[0].content[0].type");
  EXPECT_EQ(refusal(body_with({{{"type", "image_url"}, {"image_url", {{"url", 3}}}}})),
            "400 bad_json messages[0].content[0].image_url.url");
  EXPECT_EQ(refusal(body_with({image_part()}, {{"model", 7}})), "422 invalid_argument model");
}

TEST(ChatRequest, Florence2TaskFromThePrompt) {
  auto task = [](std::optional<std::string> prompt) {
    const ChatTask t = florence2_chat_task(prompt);
    return t.task + "|" + t.text;
  };
  EXPECT_EQ(task(std::nullopt), "<MORE_DETAILED_CAPTION>|");
  EXPECT_EQ(task(" \n"), "<MORE_DETAILED_CAPTION>|");
  EXPECT_EQ(task("<OD>"), "<OD>|");
  EXPECT_EQ(task("<CAPTION_TO_PHRASE_GROUNDING>a bus"), "<CAPTION_TO_PHRASE_GROUNDING>|a bus");
  EXPECT_EQ(task("<NOPE> x"), "<NOPE>| x");  // the model refuses it, naming its tasks
  EXPECT_EQ(task("a bus and two people"), "<CAPTION_TO_PHRASE_GROUNDING>|a bus and two people");
  EXPECT_EQ(task("<b>bold</b> words"), "<CAPTION_TO_PHRASE_GROUNDING>|<b>bold</b> words");
}

TEST(ImageUrl, OnlyPublicAddressesArePublic) {
  for (const char* address : {"127.0.0.1",
                              "10.1.2.3",
                              "172.16.0.1",
                              "172.31.255.255",
                              "192.168.1.1",
                              "169.254.169.254",
                              "100.64.0.1",
                              "0.0.0.0",
                              "224.0.0.1",
                              "255.255.255.255",
                              "::1",
                              "::",
                              "fe80::1",
                              "fd00::1",
                              "::ffff:127.0.0.1",
                              "::ffff:10.0.0.1",
                              "2002:7f00:1::1",
                              "64:ff9b::a00:1",
                              "not an address",
                              ""}) {
    EXPECT_FALSE(is_public_address(address)) << address;
  }
  for (const char* address : {"8.8.8.8", "172.32.0.1", "100.128.0.1", "1.1.1.1", "2606:4700::1111", "::ffff:8.8.8.8"}) {
    EXPECT_TRUE(is_public_address(address)) << address;
  }
}

TEST(ImageUrl, AllowListMatchesNamesAndSubdomains) {
  const std::vector<std::string> hosts = {"images.example.com", "*.cdn.example.org"};
  EXPECT_TRUE(host_allowed("images.example.com", hosts));
  EXPECT_TRUE(host_allowed("IMAGES.Example.com", hosts));
  EXPECT_TRUE(host_allowed("a.cdn.example.org", hosts));
  EXPECT_FALSE(host_allowed("cdn.example.org", hosts));
  EXPECT_FALSE(host_allowed("evilcdn.example.org", hosts));
  EXPECT_FALSE(host_allowed("images.example.com.evil.net", hosts));
  EXPECT_FALSE(host_allowed("example.com", hosts));
}

TEST(ImageUrl, DataUrlsAlwaysAndOtherUrlsOnlyWhenListed) {
  EXPECT_EQ(load_image_url("data:image/png;base64,aGVsbG8=", "f", {}), "hello");
  try {
    load_image_url("http://images.example.com/a.jpg", "f", {});
    ADD_FAILURE() << "fetched with no allow-list";
  } catch (const FieldError& error) {
    EXPECT_EQ(error.code(), ErrorCode::kInvalidArgument);
    EXPECT_EQ(error.field(), "f");
    EXPECT_NE(std::string(error.what()).find("--image-url-hosts"), std::string::npos) << error.what();
  }
}

TEST(OpenAiErrors, SameCodeAndStatusInOpenAisShape) {
  const Json body = openai_error_json(ErrorCode::kInvalidArgument, "n '2' is not supported", "n");
  EXPECT_EQ(body, Json::parse(R"({"error": {"message": "n '2' is not supported", "type": "invalid_request_error",
                                             "param": "n", "code": "invalid_argument"}})"));
  EXPECT_TRUE(openai_error_json(ErrorCode::kQueueFull, "full", "")["error"]["param"].is_null());
  EXPECT_EQ(openai_error_type(ErrorCode::kUnauthorized), "authentication_error");
  EXPECT_EQ(openai_error_type(ErrorCode::kModelNotFound), "not_found_error");
  EXPECT_EQ(openai_error_type(ErrorCode::kQueueFull), "server_error");
  EXPECT_EQ(openai_error_type(ErrorCode::kPayloadTooLarge), "invalid_request_error");
  EXPECT_EQ(error_shape_for("/v1/chat/completions"), ErrorShape::kOpenAi);
  EXPECT_EQ(error_shape_for("/v1/models"), ErrorShape::kOpenAi);
  EXPECT_EQ(error_shape_for("/detect"), ErrorShape::kVlm);
}

TEST(ChatResponse, StreamEndsWithDoneAndCarriesUsageLast) {
  ChatAnswer answer{"chatcmpl-x", 5, "m", "a bus", "stop", {3, 4, false}};
  const std::string events = chat_completion_events(answer, true);
  EXPECT_TRUE(events.ends_with("data: [DONE]\n\n")) << events;
  const auto last = events.rfind("data: {");
  const Json usage_chunk = Json::parse(events.substr(last + 6, events.find("\n\n", last) - last - 6));
  EXPECT_EQ(usage_chunk["choices"], Json::array());
  EXPECT_EQ(usage_chunk["usage"]["total_tokens"], 7);
  EXPECT_EQ(chat_completion_json(answer)["choices"][0]["message"]["content"], "a bus");
}

}  // namespace
}  // namespace vlm::server
