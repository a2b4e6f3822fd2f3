#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "remove_tree.h"
#include "vlm/hub/cache_layout.h"
#include "vlm/hub/file_lock.h"

namespace vlm::hub {
namespace {
namespace fs = std::filesystem;

class CacheLayoutTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("vlm_hub_cache_" + std::to_string(::getpid()));
    vlm::hub::testing::remove_tree(root_);
  }
  void TearDown() override { vlm::hub::testing::remove_tree(root_); }
  fs::path root_;
};

TEST_F(CacheLayoutTest, UsesHuggingfaceHubNames) {
  EXPECT_EQ(repo_folder_name("microsoft/Florence-2-base"), "models--microsoft--Florence-2-base");
  RepoCache cache(root_, "org/repo");
  EXPECT_EQ(cache.repo_dir(), root_ / "models--org--repo");
  EXPECT_EQ(cache.blob_path("abc"), root_ / "models--org--repo" / "blobs" / "abc");
  EXPECT_EQ(cache.incomplete_path("abc"), root_ / "models--org--repo" / "blobs" / "abc.incomplete");
  EXPECT_EQ(cache.lock_path("abc"), root_ / ".locks" / "models--org--repo" / "abc.lock");
  EXPECT_EQ(cache.snapshot_file("c0mm1t", "onnx/model.onnx"),
            root_ / "models--org--repo" / "snapshots" / "c0mm1t" / "onnx/model.onnx");
}

TEST_F(CacheLayoutTest, RefsRoundTripIncludingPullRequestRefs) {
  RepoCache cache(root_, "org/repo");
  EXPECT_FALSE(cache.read_ref("main").has_value());
  cache.write_ref("main", "1111111111111111111111111111111111111111");
  cache.write_ref("refs/pr/3", "2222222222222222222222222222222222222222");
  EXPECT_EQ(cache.read_ref("main"), "1111111111111111111111111111111111111111");
  EXPECT_EQ(cache.read_ref("refs/pr/3"), "2222222222222222222222222222222222222222");
  EXPECT_TRUE(fs::is_regular_file(root_ / "models--org--repo" / "refs" / "refs" / "pr" / "3"));
  cache.write_ref("main", "3333333333333333333333333333333333333333");  // replaced, not appended
  EXPECT_EQ(cache.read_ref("main"), "3333333333333333333333333333333333333333");
}

TEST_F(CacheLayoutTest, SnapshotLinksAreRelativeAndResolveToTheBlob) {
  RepoCache cache(root_, "org/repo");
  fs::create_directories(cache.blob_path("b1").parent_path());
  std::ofstream(cache.blob_path("b1")) << "weights";
  cache.link_snapshot_file("c0", "model.safetensors", "b1");
  cache.link_snapshot_file("c0", "sub/dir/tokenizer.json", "b1");
  fs::path top = cache.snapshot_file("c0", "model.safetensors");
  fs::path nested = cache.snapshot_file("c0", "sub/dir/tokenizer.json");
  EXPECT_EQ(fs::read_symlink(top), fs::path("../../blobs/b1"));
  EXPECT_EQ(fs::read_symlink(nested), fs::path("../../../../blobs/b1"));
  EXPECT_EQ(fs::canonical(top), fs::canonical(cache.blob_path("b1")));
  EXPECT_EQ(fs::canonical(nested), fs::canonical(cache.blob_path("b1")));
  // Moving the whole cache keeps the links valid, which absolute links would not.
  fs::path moved = root_.string() + "_moved";
  vlm::hub::testing::remove_tree(moved);
  fs::rename(root_, moved);
  std::ifstream in(RepoCache(moved, "org/repo").snapshot_file("c0", "sub/dir/tokenizer.json"));
  std::string content;
  in >> content;
  EXPECT_EQ(content, "weights");
  fs::rename(moved, root_);
}

TEST_F(CacheLayoutTest, AtomicWriteLeavesNoTemporaryFiles) {
  write_file_atomically(root_ / "a" / "file", "one");
  write_file_atomically(root_ / "a" / "file", "two");
  std::ifstream in(root_ / "a" / "file");
  std::string content;
  in >> content;
  EXPECT_EQ(content, "two");
  EXPECT_EQ(std::distance(fs::directory_iterator(root_ / "a"), fs::directory_iterator()), 1);
}

TEST_F(CacheLayoutTest, FileLockExcludesAnotherProcess) {
  fs::path lock_file = root_ / ".locks" / "x.lock";
  auto other_process_can_lock = [&] {
    pid_t child = ::fork();
    if (child == 0) {
      int fd = ::open(lock_file.c_str(), O_RDWR | O_CREAT, 0644);
      ::_exit(fd >= 0 && ::flock(fd, LOCK_EX | LOCK_NB) == 0 ? 0 : 1);
    }
    int status = 0;
    ::waitpid(child, &status, 0);
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
  };
  {
    FileLock lock(lock_file, "test blob");
    EXPECT_TRUE(fs::exists(lock_file));
    EXPECT_FALSE(other_process_can_lock());
  }
  EXPECT_TRUE(other_process_can_lock());
}

}  // namespace
}  // namespace vlm::hub
