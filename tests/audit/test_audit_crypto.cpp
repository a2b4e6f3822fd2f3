#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "vlm/audit/crypto.h"
#include "vlm/audit/merkle.h"
#include "vlm/audit/record.h"
#include "vlm/error.h"

namespace vlm::audit {
namespace {

std::string bytes(std::initializer_list<int> values) {
  std::string out;
  for (int v : values) out.push_back(static_cast<char>(v));
  return out;
}

// The leaves of the RFC 6962 reference test vectors (certificate-transparency / trillian testdata).
std::vector<std::string> rfc6962_leaves() {
  return {"",
          bytes({0x00}),
          bytes({0x10}),
          bytes({0x20, 0x21}),
          bytes({0x30, 0x31}),
          bytes({0x40, 0x41, 0x42, 0x43}),
          bytes({0x50, 0x51, 0x52, 0x53, 0x54, 0x55, 0x56, 0x57}),
          bytes({0x60, 0x61, 0x62, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6a, 0x6b, 0x6c, 0x6d, 0x6e, 0x6f})};
}

// MTH(D[n]) exactly as RFC 6962 section 2.1 writes it, recursively, to check the O(log n) frontier.
Digest reference_root(const std::vector<std::string>& leaves, std::size_t begin, std::size_t end) {
  const std::size_t n = end - begin;
  if (n == 0) return sha256(std::string_view());
  if (n == 1) return merkle_leaf_hash(leaves[begin]);
  std::size_t k = 1;
  while (k * 2 < n) k *= 2;
  return merkle_node_hash(reference_root(leaves, begin, begin + k), reference_root(leaves, begin + k, end));
}

TEST(AuditCrypto, Sha256AndHmacMatchPublishedVectors) {
  EXPECT_EQ(to_hex(sha256(std::string_view("abc"))),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  const std::string key = "Jefe";  // RFC 4231 test case 2
  EXPECT_EQ(to_hex(hmac_sha256(std::span(reinterpret_cast<const std::uint8_t*>(key.data()), key.size()),
                               "what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST(AuditCrypto, Ed25519MatchesRfc8032TestOne) {
  const auto key = SigningKey::from_seed(from_hex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"));
  EXPECT_EQ(to_hex(key.public_key()), "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a");
  const auto signature = key.sign("");
  EXPECT_EQ(to_hex(signature),
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f059"
            "5bbe2465"
            "5141438e7a100b");
  EXPECT_TRUE(ed25519_verify(key.public_key(), "", signature));
  EXPECT_FALSE(ed25519_verify(key.public_key(), "x", signature));
  auto bad = signature;
  bad[10] ^= 1;
  EXPECT_FALSE(ed25519_verify(key.public_key(), "", bad));
}

TEST(AuditCrypto, HexRoundTripAndRejects) {
  EXPECT_EQ(to_hex(from_hex("00ff10Ab")), "00ff10ab");
  EXPECT_THROW(from_hex("abc"), Error);
  EXPECT_THROW(from_hex("zz"), Error);
  EXPECT_THROW(digest_from_hex("00"), Error);
}

TEST(AuditMerkle, MatchesRfc6962TestVectors) {
  const auto leaves = rfc6962_leaves();
  MerkleFrontier frontier;
  EXPECT_EQ(to_hex(frontier.root()), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  std::vector<std::string> expected = {"6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
                                       "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
                                       "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
                                       "",
                                       "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
                                       "",
                                       "",
                                       "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"};
  for (std::size_t i = 0; i < leaves.size(); ++i) {
    frontier.append(leaves[i]);
    if (!expected[i].empty()) {
      EXPECT_EQ(to_hex(frontier.root()), expected[i]) << "tree size " << i + 1;
    }
  }
}

TEST(AuditMerkle, FrontierEqualsRecursiveDefinitionForOddSizes) {
  std::vector<std::string> leaves;
  MerkleFrontier frontier;
  for (std::size_t n = 1; n <= 131; ++n) {
    leaves.push_back("leaf-" + std::to_string(n * 7919));
    frontier.append(leaves.back());
    ASSERT_EQ(frontier.root(), reference_root(leaves, 0, n)) << "tree size " << n;
    // A frontier restored from its saved nodes continues identically (file_start records rely on it).
    MerkleFrontier restored(frontier.size(), frontier.nodes());
    ASSERT_EQ(restored.root(), frontier.root());
  }
  EXPECT_THROW(MerkleFrontier(3, {}), Error);
}

TEST(AuditRecord, SealedRecordOpensAndAnyEditFails) {
  nlohmann::json record = {{"v", 1}, {"seq", 5}, {"text", "caf\xc3\xa9 \"quoted\"\n"}};
  const std::string line = seal_record(record);
  EXPECT_EQ(line.find('\n'), std::string::npos);
  EXPECT_EQ(line.find("\xc3"), std::string::npos) << "non-ASCII must be escaped";
  std::string problem;
  ASSERT_TRUE(open_record(line, problem).has_value()) << problem;
  std::string spaced = line;
  spaced.insert(1, " ");
  EXPECT_FALSE(open_record(spaced, problem).has_value());
  std::string changed = line;
  changed[changed.find("\"seq\":5") + 6] = '6';
  EXPECT_FALSE(open_record(changed, problem).has_value());
  EXPECT_NE(problem.find("record_hash"), std::string::npos) << problem;
  EXPECT_THROW(canonical_json({{"x", 1.5}}), Error);
}

TEST(AuditRecord, TextHmacIsKeyedAndDomainSeparated) {
  const std::vector<std::uint8_t> key(32, 7);
  const std::vector<std::uint8_t> other(32, 8);
  EXPECT_EQ(text_hmac(key, "question", "how many?"), text_hmac(key, "question", "how many?"));
  EXPECT_NE(text_hmac(key, "question", "how many?"), text_hmac(other, "question", "how many?"));
  EXPECT_NE(text_hmac(key, "question", "how many?"), text_hmac(key, "final", "how many?"));
  const std::string message = "vlmserve-audit/v1/final\n3 people";
  EXPECT_EQ(text_hmac(key, "final", "3 people"), to_hex(hmac_sha256(key, message)));
}

TEST(AuditRecord, RotatedNames) {
  EXPECT_EQ(rotated_file_name(42), "audit-000000000042.jsonl");
  EXPECT_TRUE(is_rotated_file_name("audit-000000000042.jsonl"));
  EXPECT_FALSE(is_rotated_file_name("audit.jsonl"));
  EXPECT_FALSE(is_rotated_file_name("audit-00000000004x.jsonl"));
  EXPECT_EQ(format_time(std::chrono::system_clock::time_point(std::chrono::milliseconds(1'700'000'000'123))),
            "2023-11-14T22:13:20.123Z");
}

}  // namespace
}  // namespace vlm::audit
