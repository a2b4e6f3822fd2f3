#include <gtest/gtest.h>

#include <string>

#include "vlm/error.h"
#include "vlm/hub/http_client.h"
#include "vlm/hub/repo_metadata.h"

namespace vlm::hub {
namespace {

// Shaped like the hub's answer to /api/models/{repo}/revision/main?blobs=true.
constexpr const char* kRevision = R"({
  "_id": "6576c9a4e0fb2f5b0d5e7a11", "id": "org/repo", "private": false,
  "sha": "ee1f1f163f352801f3b7af6b2b96e4baaa6ff2ff",
  "siblings": [
    {"rfilename": "config.json", "blobId": "a3b7b5f5b2b9d7c94ae3b8c2b69b2ec2e74f5ab2", "size": 2432},
    {"rfilename": "model.safetensors", "blobId": "5fd9a1e0f4ad1f9e1c6a24a4d1f25db66bbbb2f0", "size": 464000000,
     "lfs": {"sha256": "b6eb1a1d2e0b0e8f58bb5c6a5a0c9e6b2cf1f65d5d8e2b6f3f1f9fb8d8a7e6c5", "size": 464000000,
             "pointerSize": 135}}
  ]})";

TEST(RepoMetadata, ParsesCommitSizesBlobIdsAndLfsHashes) {
  RepoRevision revision = parse_repo_revision(kRevision, "hf://org/repo@main");
  EXPECT_EQ(revision.commit, "ee1f1f163f352801f3b7af6b2b96e4baaa6ff2ff");
  ASSERT_EQ(revision.files.size(), 2u);
  const RepoFile* config = revision.find("config.json");
  ASSERT_NE(config, nullptr);
  EXPECT_EQ(config->size, 2432u);
  EXPECT_TRUE(config->sha256.empty());
  EXPECT_EQ(config->cache_blob_id(), "a3b7b5f5b2b9d7c94ae3b8c2b69b2ec2e74f5ab2");  // git files: blob id
  const RepoFile* weights = revision.find("model.safetensors");
  ASSERT_NE(weights, nullptr);
  EXPECT_EQ(weights->size, 464000000u);
  EXPECT_EQ(weights->cache_blob_id(), weights->sha256);  // LFS files: content SHA-256, as huggingface_hub
}

TEST(RepoMetadata, RejectsDocumentsThatAreNotTheHubs) {
  const char* bad[] = {
      "<html>proxy login</html>",
      R"({"siblings": []})",
      R"({"sha": "main", "siblings": []})",
      R"({"sha": "ee1f1f163f352801f3b7af6b2b96e4baaa6ff2ff"})",
      R"({"sha": "ee1f1f163f352801f3b7af6b2b96e4baaa6ff2ff", "siblings": [{"rfilename": "../x"}]})",
      R"({"sha": "ee1f1f163f352801f3b7af6b2b96e4baaa6ff2ff", "siblings": [{"rfilename": "a", "lfs": {"sha256": "zz"}}]})",
  };
  for (const char* document : bad) {
    EXPECT_THROW(parse_repo_revision(document, "hf://org/repo@main"), Error) << document;
  }
}

TEST(RepoMetadata, BuildsResolveUrlsAndNormalisesEtags) {
  RepoSpec spec{"org/repo", "refs/pr/1"};
  EXPECT_EQ(resolve_url("https://hub.example", spec, "ee1f", "onnx/model v2.onnx"),
            "https://hub.example/org/repo/resolve/ee1f/onnx/model%20v2.onnx");
  EXPECT_EQ(url_quote("refs/pr/1", false), "refs%2Fpr%2F1");
  EXPECT_EQ(normalize_etag("W/\"abc\""), "abc");
  EXPECT_EQ(normalize_etag("\"abc\""), "abc");
  EXPECT_EQ(normalize_etag("abc"), "abc");
}

TEST(HttpUrl, ParsesAndResolvesRedirectLocations) {
  Url url = parse_url("https://127.0.0.1:8443/org/repo/resolve/main/config.json");
  EXPECT_EQ(url.scheme, "https");
  EXPECT_EQ(url.host, "127.0.0.1");
  EXPECT_EQ(url.port, 8443);
  EXPECT_EQ(url.target, "/org/repo/resolve/main/config.json");
  EXPECT_EQ(parse_url("https://huggingface.co").origin(), "https://huggingface.co");
  EXPECT_EQ(parse_url("http://mirror.local/x").port, 80);
  EXPECT_EQ(resolve_location(url, "/new/repo/resolve/main/config.json").to_string(),
            "https://127.0.0.1:8443/new/repo/resolve/main/config.json");
  EXPECT_EQ(resolve_location(url, "https://cdn.example/blob?x=1").origin(), "https://cdn.example");
  EXPECT_THROW(parse_url("ftp://x/y"), Error);
  EXPECT_THROW(parse_url("https://user:pw@host/"), Error);
  EXPECT_THROW(parse_url("https://host:99999/"), Error);
}

}  // namespace
}  // namespace vlm::hub
