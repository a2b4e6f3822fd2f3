#include <gtest/gtest.h>

#include <string>

#include "vlm/hub/digest.h"

namespace vlm::hub {
namespace {

TEST(BlobHasher, Sha256MatchesTheFipsVectors) {
  BlobHasher empty = BlobHasher::sha256();
  EXPECT_EQ(empty.hex_digest(), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  BlobHasher abc = BlobHasher::sha256();
  abc.update("ab", 2);  // split across updates on purpose: the download path hashes chunk by chunk
  abc.update("c", 1);
  EXPECT_EQ(abc.hex_digest(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(BlobHasher, GitBlobIdMatchesGitHashObject) {
  // `printf 'hello\n' | git hash-object --stdin` and `git hash-object /dev/null`.
  BlobHasher hello = BlobHasher::git_blob_sha1(6);
  hello.update("hello\n", 6);
  EXPECT_EQ(hello.hex_digest(), "ce013625030ba8dba906f756967f9e9ca394464a");
  BlobHasher empty = BlobHasher::git_blob_sha1(0);
  EXPECT_EQ(empty.hex_digest(), "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391");
}

TEST(BlobHasher, RecognisesHexIds) {
  EXPECT_TRUE(is_sha256_hex(std::string(64, 'a')));
  EXPECT_FALSE(is_sha256_hex(std::string(64, 'A')));
  EXPECT_FALSE(is_sha256_hex(std::string(63, 'a')));
  EXPECT_TRUE(is_sha1_hex("ce013625030ba8dba906f756967f9e9ca394464a"));
  EXPECT_FALSE(is_sha1_hex("ce013625030ba8dba906f756967f9e9ca394464g"));
}

}  // namespace
}  // namespace vlm::hub
