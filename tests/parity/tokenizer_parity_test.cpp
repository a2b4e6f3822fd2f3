// Parity of vlm::Tokenizer with Hugging Face tokenizers/transformers on the reference written by
// tokenizer_reference.py (test setup): every id and every decoded string must be identical.

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "unicode_classes.h"
#include "vlm/tokenizer.h"

namespace {

using Json = nlohmann::json;
namespace fs = std::filesystem;

fs::path env_path(const char* name) {
  const char* value = std::getenv(name);
  if (value == nullptr) throw std::runtime_error(std::string(name) + " is not set (run through ctest)");
  return value;
}

const Json& reference() {
  static const Json kReference = [] {
    const fs::path path = env_path("VLM_TEST_DATA") / "tokenizer" / "reference.json";
    std::ifstream in(path);
    if (!in) throw std::runtime_error("missing " + path.string() + " (the tokenizer_reference fixture writes it)");
    return Json::parse(in);
  }();
  return kReference;
}

fs::path florence_dir(const char* name) { return env_path("VLM_ASSETS") / "florence2" / name; }

std::vector<std::string> florence_tokens() { return reference().at("florence_tokens").get<std::vector<std::string>>(); }

vlm::Tokenizer microsoft_tokenizer() {
  auto tok = vlm::Tokenizer::from_directory(florence_dir("Florence-2-base"));
  EXPECT_EQ(tok.add_special_tokens(florence_tokens()), 1024u);
  return tok;
}

std::string show(const std::string& text) {
  std::string out = Json(text).dump();
  return out.size() > 160 ? out.substr(0, 160) + "..." : out;
}

// Compares everything recorded for one tokenizer; reports the first few differences in full.
void expect_matches(const vlm::Tokenizer& tok, const Json& recorded) {
  int failures = 0;
  for (const Json& c : recorded.at("encode")) {
    const std::string text = c.at("text").get<std::string>();
    const auto ids = c.at("ids").get<std::vector<int32_t>>();
    const auto wrapped = c.at("ids_with_special").get<std::vector<int32_t>>();
    const auto got = tok.encode(text, false);
    const auto got_wrapped = tok.encode(text, true);
    const std::string decoded = tok.decode(wrapped, false);
    const std::string decoded_skip = tok.decode(wrapped, true);
    const bool ok = got == ids && got_wrapped == wrapped && decoded == c.at("decoded").get<std::string>() &&
                    decoded_skip == c.at("decoded_skip_special").get<std::string>();
    if (!ok && ++failures <= 5) {
      ADD_FAILURE() << "text " << show(text) << "\n  ids " << Json(got).dump().substr(0, 300) << "\n want "
                    << Json(ids).dump().substr(0, 300) << "\n  decoded " << show(decoded) << " want "
                    << show(c.at("decoded").get<std::string>());
    }
  }
  for (const Json& c : recorded.at("decode")) {
    const auto ids = c.at("ids").get<std::vector<int32_t>>();
    const std::string decoded = tok.decode(ids, false);
    const std::string decoded_skip = tok.decode(ids, true);
    if ((decoded != c.at("decoded").get<std::string>() ||
         decoded_skip != c.at("decoded_skip_special").get<std::string>()) &&
        ++failures <= 10) {
      ADD_FAILURE() << "decode " << c.at("ids").dump() << "\n  got " << show(decoded) << " / " << show(decoded_skip)
                    << "\n want " << show(c.at("decoded").get<std::string>()) << " / "
                    << show(c.at("decoded_skip_special").get<std::string>());
    }
  }
  EXPECT_EQ(failures, 0) << "of " << recorded.at("encode").size() << " texts and " << recorded.at("decode").size()
                         << " id lists";
}

TEST(TokenizerParity, MicrosoftTokenizerWithProcessorTokens) {
  const auto tok = microsoft_tokenizer();
  EXPECT_EQ(tok.vocab_size(), 51289u);
  expect_matches(tok, reference().at("microsoft"));
}

TEST(TokenizerParity, OnnxCommunityTokenizerWithBakedInTokens) {
  const auto tok = vlm::Tokenizer::from_file(florence_dir("onnx-community-Florence-2-base") / "tokenizer.json");
  EXPECT_EQ(tok.vocab_size(), 51289u);
  expect_matches(tok, reference().at("onnx"));
}

// The tokenizer as transformers saves it for florence-community checkpoints (with <image>).
TEST(TokenizerParity, TransformersSavedLayout) {
  const auto tok =
      vlm::Tokenizer::from_directory(env_path("VLM_TEST_DATA") / "tokenizer" / "florence_community_layout");
  EXPECT_EQ(tok.token_to_id("<image>"), 51289);
  expect_matches(tok, reference().at("native"));
}

// vocab.json + merges.txt with the processor's tokens must behave as microsoft's tokenizer.json.
TEST(TokenizerParity, VocabAndMergesFiles) {
  const fs::path dir = florence_dir("onnx-community-Florence-2-base");
  auto tok = vlm::Tokenizer::from_vocab_and_merges(dir / "vocab.json", dir / "merges.txt");
  EXPECT_EQ(tok.add_special_tokens(florence_tokens()), 1024u);
  expect_matches(tok, reference().at("microsoft"));
}

// lstrip, rstrip, single_word, normalized and special flags, and re-flagging an existing token.
TEST(TokenizerParity, AddedTokenFlags) {
  auto tok = vlm::Tokenizer::from_file(florence_dir("onnx-community-Florence-2-base") / "tokenizer.json");
  for (const Json& t : reference().at("flag_tokens")) {
    tok.add_tokens({{t.at("content").get<std::string>(), t.at("special").get<bool>(), t.at("lstrip").get<bool>(),
                     t.at("rstrip").get<bool>(), t.at("single_word").get<bool>(), t.at("normalized").get<bool>()}});
  }
  expect_matches(tok, reference().at("flags"));
}

TEST(TokenizerParity, AddingTokensAgainKeepsIds) {
  auto tok = microsoft_tokenizer();
  const auto before = tok.encode("<od>car<loc_7></od>", true);
  EXPECT_EQ(tok.add_special_tokens(florence_tokens()), 0u);
  EXPECT_EQ(tok.encode("<od>car<loc_7></od>", true), before);
  EXPECT_EQ(tok.token_to_id("<loc_0>"), 50269);
  EXPECT_EQ(tok.id_to_token(51288), "<and>");
  EXPECT_TRUE(tok.is_special(51288));
  EXPECT_FALSE(tok.is_special(31414));
  EXPECT_EQ(tok.bos_id(), 0);
  EXPECT_EQ(tok.eos_id(), 2);
}

TEST(TokenizerParity, TokensToString) {
  const auto tok = microsoft_tokenizer();
  for (const Json& c : reference().at("tokens_to_string")) {
    const auto tokens = c.at("tokens").get<std::vector<std::string>>();
    EXPECT_EQ(tok.tokens_to_string(tokens), c.at("text").get<std::string>()) << c.at("tokens").dump();
  }
}

// Every code point's class under the GPT-2 regex, as `tokenizers` sees it, against the generated table.
TEST(TokenizerParity, CodePointClassesMatchTokenizers) {
  using vlm::tokenizer_detail::CodePointClass;
  const std::string classes = reference().at("code_point_classes").get<std::string>();
  ASSERT_EQ(classes.size(), 0x110000u);
  int mismatches = 0;
  for (char32_t cp = 0; cp < 0x110000; ++cp) {
    if (cp >= 0xD800 && cp < 0xE000) continue;
    const char want = classes[cp];
    const CodePointClass got = vlm::tokenizer_detail::classify_code_point(cp);
    const char got_char = got == CodePointClass::kLetter   ? 'L'
                          : got == CodePointClass::kNumber ? 'N'
                          : got == CodePointClass::kSpace  ? 'S'
                                                           : 'O';
    if (got_char != want && ++mismatches <= 10) {
      ADD_FAILURE() << "U+" << std::hex << static_cast<uint32_t>(cp) << ": got " << got_char << ", tokenizers " << want;
    }
  }
  EXPECT_EQ(mismatches, 0);
}

// The \\w class behind single_word matches, on every code point below U+3000 and a random sample above.
TEST(TokenizerParity, WordCodePointsMatchTokenizers) {
  int mismatches = 0;
  const Json& sample = reference().at("word_code_points");
  ASSERT_GT(sample.size(), 20000u);
  for (const Json& entry : sample) {
    const auto cp = entry[0].get<char32_t>();
    const bool want = entry[1].get<bool>();
    if (vlm::tokenizer_detail::is_word_code_point(cp) != want && ++mismatches <= 10) {
      ADD_FAILURE() << "U+" << std::hex << static_cast<uint32_t>(cp) << ": tokenizers says word=" << want;
    }
  }
  EXPECT_EQ(mismatches, 0);
}

}  // namespace
