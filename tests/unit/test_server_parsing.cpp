// Request parsing of the HTTP server, below the socket: base64, parameters, input forms and the
// Prometheus text. The black-box tests in tests/integration cover the same paths
// over HTTP; these pin the edge cases that are awkward to send.
#include <gtest/gtest.h>

#include "image_input.h"
#include "json_body.h"
#include "metrics.h"
#include "request_id.h"
#include "request_params.h"
#include "vlm/error.h"

namespace vlm::server {
namespace {

std::string code_of(const std::function<void()>& action) {
  try {
    action();
  } catch (const Error& error) {
    return std::to_string(http_status(error.code())) + " " + std::string(error_code_name(error.code()));
  }
  return "no error";
}

TEST(Base64, DecodesBothAlphabetsWithOrWithoutPadding) {
  EXPECT_EQ(decode_base64("aGVsbG8="), "hello");
  EXPECT_EQ(decode_base64("aGVsbG8"), "hello");
  EXPECT_EQ(decode_base64("aGVs\nbG8="), "hello");
  EXPECT_EQ(decode_base64("data:image/png;base64,aGVsbG8="), "hello");
  EXPECT_EQ(decode_base64("-_-_"), std::string("\xfb\xff\xbf", 3));
  EXPECT_EQ(decode_base64("+/+/"), std::string("\xfb\xff\xbf", 3));
  EXPECT_EQ(decode_base64(""), "");
}

TEST(Base64, RefusesWhatIsNotBase64) {
  EXPECT_EQ(code_of([] { decode_base64("aGV*bG8="); }), "400 bad_base64");
  EXPECT_EQ(code_of([] { decode_base64("aGVsbG8=x"); }), "400 bad_base64");  // data after padding
  EXPECT_EQ(code_of([] { decode_base64("a"); }), "400 bad_base64");          // 6 bits: no whole byte
  EXPECT_EQ(code_of([] { decode_base64("aGVsbG8==="); }), "400 bad_base64");
  EXPECT_EQ(code_of([] { decode_base64("data:image/png,aGVsbG8="); }), "400 bad_base64");
}

TEST(DetectParams, StringsAndJsonValuesMeanTheSame) {
  const DetectOptions defaults;
  auto from_strings = cli::parse_detect_params({{"conf", "0.5"},
                                                {"iou", "0.3"},
                                                {"max_det", "7"},
                                                {"classes", "0, 2"},
                                                {"agnostic_nms", "true"},
                                                {"model", "m"}},
                                               defaults);
  auto from_json = cli::parse_detect_params(
      {{"conf", 0.5}, {"iou", 0.3}, {"max_det", 7}, {"classes", {0, 2}}, {"agnostic_nms", true}, {"model", "m"}},
      defaults);
  for (const auto* p : {&from_strings, &from_json}) {
    EXPECT_FLOAT_EQ(p->options.conf.value_or(-1.0F), 0.5F);
    EXPECT_FLOAT_EQ(p->options.iou, 0.3F);
    EXPECT_EQ(p->options.max_det, 7);
    EXPECT_EQ(p->options.classes, (std::vector<int>{0, 2}));
    EXPECT_TRUE(p->options.agnostic_nms);
    EXPECT_EQ(p->model, "m");
  }
}

TEST(DetectParams, UnsentParametersKeepTheServerDefaults) {
  DetectOptions defaults;
  defaults.conf = 0.4F;
  defaults.max_det = 12;
  auto parsed = cli::parse_detect_params({{"iou", "0.5"}}, defaults);
  EXPECT_FLOAT_EQ(parsed.options.conf.value_or(-1.0F), 0.4F);
  EXPECT_EQ(parsed.options.max_det, 12);
}

TEST(DetectParams, EdgesOfEveryRange) {
  const DetectOptions d;
  EXPECT_NO_THROW(cli::parse_detect_params({{"conf", "0"}, {"iou", "1"}, {"max_det", "1"}}, d));
  EXPECT_NO_THROW(cli::parse_detect_params({{"max_det", "10000"}}, d));
  for (const nlohmann::json& bad : {nlohmann::json{{"conf", "1.0001"}},
                                    {{"conf", -0.0001}},
                                    {{"conf", "inf"}},
                                    {{"conf", "0.5x"}},
                                    {{"conf", ""}},
                                    {{"max_det", 10001}},
                                    {{"max_det", 2.5}},
                                    {{"classes", "-1"}},
                                    {{"classes", ","}},
                                    {{"classes", {{"a", 1}}}},
                                    {{"agnostic_nms", "yes please"}},
                                    {{"model", 3}}}) {
    EXPECT_EQ(code_of([&] { cli::parse_detect_params(bad, d); }), "422 invalid_argument") << bad.dump();
  }
}

TEST(DetectParams, ClassIdsAreCheckedAgainstTheModel) {
  const std::vector<std::string> names = {"a", "b", "c"};
  DetectOptions options;
  options.classes = {0, 2};
  EXPECT_NO_THROW(check_class_ids(options, names));
  EXPECT_NO_THROW(check_class_ids(options, {}));  // open vocabulary
  options.classes = {0, 3};
  try {
    check_class_ids(options, names);
    ADD_FAILURE() << "id 3 of 3 classes was accepted";
  } catch (const Error& error) {
    EXPECT_EQ(http_status(error.code()), 422);
    EXPECT_NE(std::string(error.what()).find("classes: id 3"), std::string::npos) << error.what();
    EXPECT_NE(std::string(error.what()).find("(0..2)"), std::string::npos) << error.what();
  }
}

HttpRequest request_with(std::string content_type, std::string body) {
  HttpRequest request;
  request.method = "POST";
  request.headers.emplace("content-type", std::move(content_type));  // names are case-insensitive
  request.body = std::move(body);
  return request;
}

const ImageInputRules kRules{2, {"conf", "model"}};

TEST(ImageInput, ThreeFormsAndTheQueryString) {
  auto raw = request_with("image/jpeg; charset=binary", "BYTES");
  raw.query.emplace("conf", "0.3");
  auto parsed = parse_image_input(raw, kRules);
  EXPECT_EQ(parsed.images, std::vector<std::string>{"BYTES"});
  EXPECT_EQ(parsed.params["conf"], "0.3");
  EXPECT_FALSE(parsed.batch);

  auto json = request_with("Application/JSON", R"({"images": ["QUJD"], "conf": 0.5})");
  json.query.emplace("conf", "0.3");
  parsed = parse_image_input(json, kRules);
  EXPECT_EQ(parsed.images, std::vector<std::string>{"ABC"});
  EXPECT_EQ(parsed.params["conf"], 0.5);  // the body wins over the query
  EXPECT_TRUE(parsed.batch);

  auto form = request_with("multipart/form-data; boundary=x", "");
  form.form = {{"image", "a.jpg", "image/jpeg", "A"}, {"conf", "", "", "0.1"}, {"image", "b.jpg", "image/jpeg", "B"}};
  parsed = parse_image_input(form, kRules);
  EXPECT_EQ(parsed.images, (std::vector<std::string>{"A", "B"}));
  EXPECT_TRUE(parsed.batch);
}

TEST(ImageInput, RefusalsCarryTheirStatus) {
  EXPECT_EQ(code_of([] { parse_image_input(request_with("text/plain", "x"), kRules); }), "415 unsupported_media_type");
  EXPECT_EQ(code_of([] { parse_image_input(request_with("", "x"), kRules); }), "415 unsupported_media_type");
  EXPECT_EQ(code_of([] { parse_image_input(request_with("application/json", "{"), kRules); }), "400 bad_json");
  EXPECT_EQ(code_of([] { parse_image_input(request_with("application/json", R"({"image": 5})"), kRules); }),
            "400 bad_json");
  EXPECT_EQ(code_of([] { parse_image_input(request_with("application/json", R"({"conf": 0.5})"), kRules); }),
            "400 missing_image");
  EXPECT_EQ(
      code_of([] { parse_image_input(request_with("application/json", R"({"images": ["QQ", "QQ", "QQ"]})"), kRules); }),
      "413 too_many_images");
  EXPECT_EQ(
      code_of([] { parse_image_input(request_with("application/json", R"({"image": "QQ", "iou": 1})"), kRules); }),
      "422 unknown_parameter");
}

TEST(JsonBody, DepthLimitCountsTheTopLevelAsOne) {
  const auto nested = [](int levels) { return std::string(levels, '[') + std::string(levels, ']'); };
  EXPECT_EQ(parse_json_body(nested(kMaxJsonDepth)).size(), 1U);
  EXPECT_EQ(code_of([&] { parse_json_body(nested(kMaxJsonDepth + 1)); }), "400 bad_json");
  EXPECT_EQ(code_of([&] { parse_json_body("{\"a\": " + nested(kMaxJsonDepth - 1) + "}"); }), "no error");
  EXPECT_EQ(code_of([&] { parse_json_body("{\"a\": " + nested(kMaxJsonDepth) + "}"); }), "400 bad_json");
  EXPECT_EQ(code_of([&] { parse_json_body(nested(2'000'000)); }), "400 bad_json");
  EXPECT_EQ(code_of([] { parse_json_body("{\"a\": [1,}"); }), "400 bad_json");
}

TEST(JsonBody, ErrorsQuoteABoundedRendering) {
  EXPECT_EQ(describe_json(nlohmann::json::array({1, 2, 3})), "an array of 3 items");
  EXPECT_EQ(describe_json(nlohmann::json::object({{"a", 1}})), "an object of 1 key");
  EXPECT_EQ(describe_json("abc"), "'abc'");
  EXPECT_EQ(describe_json(std::string(100'000, 'x')), "'" + std::string(64, 'x') + "...'");
  EXPECT_EQ(describe_json(0.5), "'0.5'");
  EXPECT_EQ(quote_bounded(std::string(65, 'k'), 64), "'" + std::string(64, 'k') + "...'");
}

TEST(RequestId, HonouredOnlyWhenSafeToLog) {
  EXPECT_TRUE(acceptable_request_id("abc-123_x.y:z"));
  EXPECT_FALSE(acceptable_request_id(""));
  EXPECT_FALSE(acceptable_request_id("a b"));
  EXPECT_FALSE(acceptable_request_id("a\nb"));
  EXPECT_FALSE(acceptable_request_id(std::string(129, 'a')));
  EXPECT_TRUE(acceptable_request_id(generate_request_id()));
  EXPECT_NE(generate_request_id(), generate_request_id());
}

TEST(ConstantTimeEqual, ComparesWholeStrings) {
  EXPECT_TRUE(constant_time_equal("secret", "secret"));
  EXPECT_FALSE(constant_time_equal("secret", "secreT"));
  EXPECT_FALSE(constant_time_equal("secret", "secret2"));
  EXPECT_FALSE(constant_time_equal("", "x"));
  EXPECT_TRUE(constant_time_equal("", ""));
}

TEST(Metrics, PrometheusTextWithCumulativeBuckets) {
  Metrics metrics;
  metrics.observe_batch("m\"1", 3, 0.02);
  metrics.observe_batch("m\"1", 1, 0.01);
  metrics.observe_request("/detect", "POST", 200, 0.03);
  const std::string text = metrics.render();
  EXPECT_NE(text.find("vlm_batch_size_bucket{model=\"m\\\"1\",le=\"1\"} 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("vlm_batch_size_bucket{model=\"m\\\"1\",le=\"4\"} 2\n"), std::string::npos) << text;
  EXPECT_NE(text.find("vlm_batch_size_bucket{model=\"m\\\"1\",le=\"+Inf\"} 2\n"), std::string::npos) << text;
  EXPECT_NE(text.find("vlm_batch_size_sum{model=\"m\\\"1\"} 4\n"), std::string::npos) << text;
  EXPECT_NE(text.find("vlm_images_processed_total{model=\"m\\\"1\"} 4\n"), std::string::npos) << text;
  EXPECT_NE(text.find("vlm_http_requests_total{route=\"/detect\",method=\"POST\",status=\"200\"} 1\n"),
            std::string::npos);
}

TEST(Metrics, StageHistogramsRenderEveryStageOfEveryModel) {
  Metrics metrics;
  StageHistograms& stages = metrics.stage_histograms("m\"1");
  EXPECT_EQ(&stages, &metrics.stage_histograms("m\"1"));  // resolved once, kept for the model's life
  stages.observe(RequestStage::kDecode, 0.00005);
  stages.observe(RequestStage::kDecode, 0.003);
  stages.observe(RequestStage::kRespond, 20.0);
  const std::string text = metrics.render();
  EXPECT_EQ(text.find("# TYPE vlm_request_stage_seconds histogram\n"),
            text.rfind("# TYPE vlm_request_stage_seconds histogram\n"))
      << text;
  const std::string decode = "vlm_request_stage_seconds_bucket{model=\"m\\\"1\",stage=\"decode\",le=";
  EXPECT_NE(text.find(decode + "\"0.0001\"} 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find(decode + "\"0.0025\"} 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find(decode + "\"0.005\"} 2\n"), std::string::npos) << text;
  EXPECT_NE(text.find("vlm_request_stage_seconds_count{model=\"m\\\"1\",stage=\"decode\"} 2\n"), std::string::npos);
  EXPECT_NE(text.find("vlm_request_stage_seconds_bucket{model=\"m\\\"1\",stage=\"respond\",le=\"10\"} 0\n"),
            std::string::npos);
  EXPECT_NE(text.find("vlm_request_stage_seconds_bucket{model=\"m\\\"1\",stage=\"respond\",le=\"+Inf\"} 1\n"),
            std::string::npos);
  for (const char* stage : {"receive", "decode", "queue", "preprocess", "forward", "postprocess", "respond"}) {
    EXPECT_NE(text.find(std::string("stage=\"") + stage + "\"} "), std::string::npos) << stage;
  }
}

}  // namespace
}  // namespace vlm::server
