// The error table (src/error.cpp) against the API document (server/openapi.json, as compiled in):
// every code the server can answer with is documented with the same status, and every documented
// code is one the table knows. A code added on one side only fails here.
#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>

#include <nlohmann/json.hpp>

#include "errors.h"
#include "openapi_document.h"
#include "vlm/error.h"

namespace vlm::server {
namespace {

const nlohmann::json& api() {
  static const nlohmann::json document = nlohmann::json::parse(openapi_document());
  return document;
}

// code -> x-status, from components.schemas.ErrorCode.
std::map<std::string, int> documented_codes() {
  std::map<std::string, int> codes;
  for (const auto& entry : api().at("components").at("schemas").at("ErrorCode").at("oneOf")) {
    const auto [it, inserted] = codes.emplace(entry.at("const").get<std::string>(), entry.at("x-status").get<int>());
    EXPECT_TRUE(inserted) << it->first << " is documented twice";
  }
  return codes;
}

TEST(ErrorTable, EveryCodeIsDocumentedWithItsStatus) {
  const auto documented = documented_codes();
  for (const ErrorCodeInfo& row : error_code_table()) {
    const auto it = documented.find(std::string(row.name));
    if (it == documented.end()) {
      ADD_FAILURE() << row.name << " is in the error table but not in openapi.json";
      continue;
    }
    EXPECT_EQ(it->second, row.http_status) << row.name;
  }
}

TEST(ErrorTable, EveryDocumentedCodeIsInTheTable) {
  std::set<std::string> known;
  for (const ErrorCodeInfo& row : error_code_table()) {
    EXPECT_TRUE(known.insert(std::string(row.name)).second) << row.name << " names two codes";
  }
  for (const auto& [code, status] : documented_codes()) {
    EXPECT_TRUE(known.contains(code)) << code << " (" << status << ") is in openapi.json but in no row of the table";
  }
}

TEST(ErrorTable, ErrorBodiesAreValidatedAgainstTheCodeList) {
  // The integration tests validate real responses against these schemas, so a code missing from
  // the list fails there too.
  const auto& schemas = api().at("components").at("schemas");
  const std::string ref = "#/components/schemas/ErrorCode";
  EXPECT_EQ(schemas.at("Error").at("properties").at("error").at("properties").at("code").at("$ref"), ref);
  EXPECT_EQ(schemas.at("ImageError").at("properties").at("error").at("properties").at("code").at("$ref"), ref);
}

TEST(ErrorTable, RowsFollowTheEnumAndFiveHundredsHideTheirMessage) {
  std::size_t index = 0;
  for (const ErrorCodeInfo& row : error_code_table()) {
    EXPECT_EQ(static_cast<std::size_t>(row.code), index++) << row.name;
    EXPECT_EQ(&error_code_info(row.code), &row);
    // A 500 is a bug or a damaged model: its message may name internal paths.
    if (row.http_status == 500) {
      EXPECT_FALSE(row.client_message) << row.name;
    }
    // Retry-After only where waiting helps.
    if (row.retry_after_s > 0) {
      EXPECT_EQ(row.http_status, 503) << row.name;
    }
  }
  EXPECT_EQ(error_code_name(ErrorCode::kInvalidArgument), "invalid_argument");
  EXPECT_EQ(exit_status(ErrorCode::kInvalidArgument), kExitUsage);
  EXPECT_EQ(exit_status(ErrorCode::kNotFound), kExitNotFound);
  EXPECT_EQ(exit_status(ErrorCode::kUnavailable), kExitRetryLater);
  EXPECT_EQ(exit_status(ErrorCode::kBadCheckpoint), kExitFailure);
  const auto body = error_json(ErrorCode::kImageTooLarge, "m", "id");
  EXPECT_EQ(body.dump(), R"({"error":{"code":"image_too_large","message":"m","request_id":"id"}})");
}

TEST(ErrorTable, ServingOutcomesPassThroughModelErrorWrapping) {
  for (const ErrorCode code :
       {ErrorCode::kQueueFull, ErrorCode::kTimeout, ErrorCode::kClientClosed, ErrorCode::kDraining}) {
    EXPECT_TRUE(is_serving_outcome(code)) << error_code_name(code);
  }
  for (const ErrorCode code : {ErrorCode::kInvalidArgument, ErrorCode::kInternal, ErrorCode::kUnavailable}) {
    EXPECT_FALSE(is_serving_outcome(code)) << error_code_name(code);
  }
}

}  // namespace
}  // namespace vlm::server
