// vlm::Tokenizer behaviour that parity with Hugging Face does not cover: BPE merge order on a
// small vocabulary, loading errors, invalid input, thread safety and time on long inputs.

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "byte_level.h"  // byte_to_chars: the single-byte tokens
#include "utf8.h"        // append_utf8: builds the random texts
#include "vlm/error.h"
#include "vlm/tokenizer.h"

namespace {

using Json = nlohmann::json;
namespace fs = std::filesystem;

fs::path florence_dir(const char* name) {
  const char* assets = std::getenv("VLM_ASSETS");
  return fs::path(assets != nullptr ? assets : "../shared/assets") / "florence2" / name;
}

// A byte-level BPE over "a", "b", "c" and space ("Ġ") with merges given in rank order.
Json tiny_tokenizer(const std::vector<std::string>& merges) {
  Json vocab = {{"a", 0}, {"b", 1}, {"c", 2}, {"Ġ", 3}, {"ab", 4}, {"bc", 5}, {"abc", 6}, {"Ġa", 7}, {"<x>", 8}};
  return Json{{"version", "1.0"},
              {"added_tokens", Json::array({Json{{"id", 8}, {"content", "<x>"}, {"special", true}}})},
              {"normalizer", nullptr},
              {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}}},
              {"post_processor", nullptr},
              {"decoder", {{"type", "ByteLevel"}}},
              {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", merges}}}};
}

vlm::ErrorCode code_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const vlm::Error& e) {
    return e.code();
  }
  ADD_FAILURE() << "no vlm::Error thrown";
  return vlm::ErrorCode::kInternal;
}

TEST(Tokenizer, MergesApplyByRankNotPosition) {
  // (b, c) outranks (a, b): "abc" must become a + bc, then abc through the third merge.
  auto tok = vlm::Tokenizer::from_json_string(tiny_tokenizer({"b c", "a b", "a bc"}).dump());
  EXPECT_EQ(tok.encode("abc", false), (std::vector<int32_t>{6}));
  // Without (a, bc) the word stops at a + bc, not ab + c.
  auto partial = vlm::Tokenizer::from_json_string(tiny_tokenizer({"b c", "a b"}).dump());
  EXPECT_EQ(partial.encode("abc", false), (std::vector<int32_t>{0, 5}));
  // Ranked the other way round, ab wins.
  auto reversed = vlm::Tokenizer::from_json_string(tiny_tokenizer({"a b", "b c"}).dump());
  EXPECT_EQ(reversed.encode("abc", false), (std::vector<int32_t>{4, 2}));
  // Space joins the following word; the added token is cut out first.
  EXPECT_EQ(reversed.encode("ab<x> a", false), (std::vector<int32_t>{4, 8, 3, 0}));
  EXPECT_EQ(reversed.decode(std::vector<int32_t>{4, 8, 3, 0}, false), "ab<x> a");
  EXPECT_EQ(reversed.decode(std::vector<int32_t>{4, 8, 3, 0}, true), "ab a");
}

TEST(Tokenizer, NewMergeFormatLoads) {
  Json j = tiny_tokenizer({});
  j["model"]["merges"] = Json::array({Json::array({"b", "c"}), Json::array({"a", "bc"})});
  auto tok = vlm::Tokenizer::from_json_string(j.dump());
  EXPECT_EQ(tok.encode("abc", false), (std::vector<int32_t>{6}));
}

TEST(Tokenizer, LoadingErrorsSayWhatWasWrong) {
  EXPECT_EQ(code_of([] { vlm::Tokenizer::from_file("/nonexistent/tokenizer.json"); }), vlm::ErrorCode::kNotFound);
  EXPECT_EQ(code_of([] { vlm::Tokenizer::from_directory(fs::temp_directory_path() / "vlm-no-such-dir"); }),
            vlm::ErrorCode::kNotFound);
  EXPECT_EQ(code_of([] { vlm::Tokenizer::from_json_string("{not json"); }), vlm::ErrorCode::kBadCheckpoint);

  Json normalizer = tiny_tokenizer({});
  normalizer["normalizer"] = {{"type", "NFC"}};
  try {
    vlm::Tokenizer::from_json_string(normalizer.dump());
    ADD_FAILURE() << "a normalizer was accepted";
  } catch (const vlm::Error& e) {
    EXPECT_EQ(e.code(), vlm::ErrorCode::kBadCheckpoint);
    EXPECT_NE(std::string(e.what()).find("normalizer"), std::string::npos) << e.what();
  }

  try {
    vlm::Tokenizer::from_json_string(tiny_tokenizer({"a b", "c Ġa"}).dump());
    ADD_FAILURE() << "a merge producing an unknown token was accepted";
  } catch (const vlm::Error& e) {
    EXPECT_EQ(e.code(), vlm::ErrorCode::kBadCheckpoint);
    EXPECT_NE(std::string(e.what()).find("merge 1 'c Ġa'"), std::string::npos) << e.what();
  }

  Json wordpiece = tiny_tokenizer({});
  wordpiece["model"]["type"] = "WordPiece";
  EXPECT_EQ(code_of([&] { vlm::Tokenizer::from_json_string(wordpiece.dump()); }), vlm::ErrorCode::kBadCheckpoint);
}

TEST(Tokenizer, RejectsInvalidUtf8) {
  auto tok = vlm::Tokenizer::from_json_string(tiny_tokenizer({}).dump());
  for (std::string bad : {std::string("a\xff"), std::string("\xc3"), std::string("\xed\xa0\x80"),
                          std::string("\xc0\xaf"), std::string("ab\xf4\x90\x80\x80")}) {
    EXPECT_EQ(code_of([&] { tok.encode(bad); }), vlm::ErrorCode::kInvalidArgument) << "byte count " << bad.size();
  }
}

TEST(Tokenizer, ConcurrentEncodesAgree) {
  const auto tok = vlm::Tokenizer::from_file(florence_dir("onnx-community-Florence-2-base") / "tokenizer.json");
  std::vector<std::string> texts;
  std::mt19937 rng(7);
  const std::vector<std::string> pool = {"car", " person", " 日本", "😀", "<loc_5>", "  ", "\n", "café", "'s", "42"};
  for (int i = 0; i < 64; ++i) {
    std::string t;
    for (int k = 0; k < 200; ++k) t += pool[rng() % pool.size()];
    texts.push_back(t);
  }
  std::vector<std::vector<int32_t>> expected;
  for (const auto& t : texts) expected.push_back(tok.encode(t));
  // A fresh tokenizer has an empty cache, so the threads race on filling it.
  const auto fresh = vlm::Tokenizer::from_file(florence_dir("onnx-community-Florence-2-base") / "tokenizer.json");
  std::vector<int> mismatches(4, 0);
  std::vector<std::thread> threads;
  for (int w = 0; w < 4; ++w) {
    threads.emplace_back([&, w] {
      for (int round = 0; round < 5; ++round) {
        for (std::size_t i = 0; i < texts.size(); ++i) {
          if (fresh.encode(texts[(i + static_cast<std::size_t>(w) * 16) % texts.size()]) !=
              expected[(i + static_cast<std::size_t>(w) * 16) % texts.size()]) {
            ++mismatches[static_cast<std::size_t>(w)];
          }
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  for (int m : mismatches) EXPECT_EQ(m, 0);
}

// Byte-level BPE loses nothing: any UTF-8 text decodes back to itself (no token here strips
// whitespace, so the property holds for every input).
TEST(Tokenizer, RandomUnicodeRoundTrips) {
  const auto tok = vlm::Tokenizer::from_file(florence_dir("Florence-2-base") / "tokenizer.json");
  std::mt19937 rng(11);
  const std::vector<std::string> pieces = {"<s>", "</s>", "<pad>", "<unk>", " ", "  ", "\n", "\t", "'s", "'ll"};
  int failures = 0;
  for (int n = 0; n < 400; ++n) {
    std::string text;
    const int length = static_cast<int>(rng() % 80);
    for (int k = 0; k < length; ++k) {
      const unsigned r = rng() % 10;
      char32_t cp = 0;
      if (r < 3) {
        cp = 0x20 + rng() % 0x5F;  // ASCII
      } else if (r < 5) {
        cp = rng() % 0x800;
      } else if (r < 7) {
        cp = rng() % 0x10000;
      } else if (r < 8) {
        cp = rng() % 0x110000;
      } else {
        text += pieces[rng() % pieces.size()];
        continue;
      }
      if (cp >= 0xD800 && cp < 0xE000) cp = 0xFFFD;
      vlm::tokenizer_detail::append_utf8(text, cp);
    }
    const auto ids = tok.encode(text, true);
    if (tok.decode(ids, false) != "<s>" + text + "</s>" && ++failures <= 5) {
      ADD_FAILURE() << "round trip lost text of " << text.size() << " bytes: " << Json(text).dump();
    }
  }
  EXPECT_EQ(failures, 0);
}

// decoded_prefix_sizes is decode() of every prefix, computed in one pass. Sequences of single-byte
// tokens make every kind of UTF-8 boundary: characters split across tokens, truncated ones
// completed later or never, invalid lead and continuation bytes, special tokens in between.
TEST(Tokenizer, DecodedPrefixSizesAreThoseOfEachPrefix) {
  const auto tok = vlm::Tokenizer::from_file(florence_dir("Florence-2-base") / "tokenizer.json");
  std::vector<int32_t> byte_ids(256);
  for (int b = 0; b < 256; ++b) {
    const auto id = tok.token_to_id(vlm::tokenizer_detail::byte_to_chars(static_cast<unsigned char>(b)));
    ASSERT_TRUE(id.has_value()) << "no single-byte token for " << b;
    byte_ids[static_cast<std::size_t>(b)] = *id;
  }
  const std::vector<int32_t> words = tok.encode(" the cat 北京 <loc_5></s><pad>😀 é", false);
  // Lead bytes of 2-, 3- and 4-byte sequences (including the ranges that restrict the next byte)
  // and continuation bytes of both halves, so that well-formed and broken sequences both occur.
  const std::vector<int> interesting = {0xC2, 0xDF, 0xE0, 0xE2, 0xED, 0xEF, 0xF0, 0xF4, 0xF5,
                                        0xC0, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0x41, 0x20};
  std::mt19937 rng(5);
  int failures = 0;
  for (int n = 0; n < 3000; ++n) {
    std::vector<int32_t> ids;
    const int length = 1 + static_cast<int>(rng() % 16);
    for (int k = 0; k < length; ++k) {
      const unsigned r = rng() % 10;
      if (r < 6) {
        ids.push_back(byte_ids[static_cast<std::size_t>(interesting[rng() % interesting.size()])]);
      } else if (r < 8) {
        ids.push_back(byte_ids[rng() % 256]);
      } else {
        ids.push_back(words[rng() % words.size()]);
      }
    }
    const std::vector<std::size_t> sizes = tok.decoded_prefix_sizes(ids);
    ASSERT_EQ(sizes.size(), ids.size());
    for (std::size_t i = 0; i < ids.size(); ++i) {
      const std::size_t want = tok.decode(std::span<const int32_t>(ids).first(i + 1)).size();
      if (sizes[i] != want && ++failures <= 5) {
        ADD_FAILURE() << "prefix of " << i + 1 << " ids: " << sizes[i] << " bytes, decode() gives " << want;
      }
    }
  }
  EXPECT_EQ(failures, 0);
}

// A quadratic merge loop or pre-tokenizer would need hours here; the linear ones take about a second.
TEST(Tokenizer, LongInputsStayFast) {
  const auto tok = vlm::Tokenizer::from_file(florence_dir("onnx-community-Florence-2-base") / "tokenizer.json");
  std::string word;
  std::mt19937 rng(3);
  for (int i = 0; i < 300000; ++i) word += static_cast<char>('a' + rng() % 26);  // one 300 KB word
  const std::string spaces(300000, ' ');
  std::string locs;
  for (int i = 0; i < 30000; ++i) locs += "<loc_" + std::to_string(i % 1000) + ">x";
  const auto start = std::chrono::steady_clock::now();
  const auto word_ids = tok.encode(word, false);
  const auto space_ids = tok.encode(spaces + "x", false);
  const auto loc_ids = tok.encode(locs, false);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_LT(seconds, 20.0);
  EXPECT_EQ(tok.decode(word_ids), word);
  EXPECT_EQ(tok.decode(space_ids), spaces + "x");
  EXPECT_EQ(loc_ids.size(), 60000u);
  EXPECT_EQ(tok.decode(loc_ids), locs);
}

}  // namespace
