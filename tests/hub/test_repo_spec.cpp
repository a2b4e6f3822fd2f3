#include <gtest/gtest.h>

#include "vlm/error.h"
#include "vlm/hub/repo_spec.h"

namespace vlm::hub {
namespace {

TEST(RepoSpec, ParsesRepoAndDefaultsToMain) {
  RepoSpec spec = parse_repo_spec("hf://microsoft/Florence-2-base");
  EXPECT_EQ(spec.repo_id, "microsoft/Florence-2-base");
  EXPECT_EQ(spec.revision, "main");
  EXPECT_EQ(spec.to_string(), "hf://microsoft/Florence-2-base@main");
}

TEST(RepoSpec, ParsesBranchTagCommitAndPullRequestRevisions) {
  EXPECT_EQ(parse_repo_spec("hf://org/repo@v1.0").revision, "v1.0");
  EXPECT_EQ(parse_repo_spec("hf://org/repo@refs/pr/3").revision, "refs/pr/3");
  const std::string commit = "0123456789abcdef0123456789abcdef01234567";
  RepoSpec pinned = parse_repo_spec("hf://org/repo@" + commit);
  EXPECT_EQ(pinned.revision, commit);
  EXPECT_TRUE(is_commit_hash(pinned.revision));
  EXPECT_FALSE(is_commit_hash("0123456789ABCDEF0123456789abcdef01234567"));  // the hub's ids are lowercase
  EXPECT_FALSE(is_commit_hash("0123456789abcdef0123456789abcdef0123456"));   // 39 characters
}

TEST(RepoSpec, RejectsMalformedSpecsNamingThePart) {
  struct Case {
    const char* spec;
    const char* mentions;
  };
  const Case cases[] = {
      {"microsoft/Florence-2-base", "does not start with hf://"},
      {"hf://Florence-2-base", "has no ORG/ part"},
      {"hf:///repo", "organisation ''"},
      {"hf://org/", "repository name ''"},
      {"hf://org/a/b", "repository name 'a/b'"},
      {"hf://org/re--po", "repository name 're--po'"},
      {"hf://../repo", "organisation '..'"},
      {"hf://org/repo@", "revision ''"},
      {"hf://org/repo@../../etc", "revision '../../etc'"},
      {"hf://org/repo@a b", "revision 'a b'"},
      {"hf://-org/repo", "organisation '-org'"},
  };
  for (const Case& c : cases) {
    try {
      parse_repo_spec(c.spec);
      ADD_FAILURE() << c.spec << " was accepted";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument) << c.spec;
      EXPECT_NE(std::string(e.what()).find(c.mentions), std::string::npos) << c.spec << ": " << e.what();
    }
  }
}

TEST(RepoSpec, RecognisesTheScheme) {
  EXPECT_TRUE(is_hub_spec("hf://a/b"));
  EXPECT_FALSE(is_hub_spec("/models/yolov8n.torchscript"));
  EXPECT_FALSE(is_hub_spec("hf:/a/b"));
}

}  // namespace
}  // namespace vlm::hub
