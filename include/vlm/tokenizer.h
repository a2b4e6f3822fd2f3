#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

// Byte-level BPE tokenizer (GPT-2 / RoBERTa / BART family) whose encode and decode match Hugging
// Face `tokenizers` id for id and byte for byte. Torch-free, so the server and CLI can use it.
//
// Pipeline, as in `tokenizers`: added tokens are split out of the text first (leftmost-longest,
// honouring lstrip/rstrip/single_word), every other span goes through the ByteLevel pre-tokenizer
// (GPT-2 regex, bytes mapped to printable characters) and BPE; the post-processor adds <s> ... </s>
// when asked. Decoding concatenates tokens through the ByteLevel decoder and replaces invalid
// UTF-8 with U+FFFD the way Rust's from_utf8_lossy does.
//
//   auto tok = vlm::Tokenizer::from_directory(dir);  // tokenizer.json, else vocab.json + merges.txt
//   tok.add_special_tokens({"<od>", "</od>"});       // what a processor adds at runtime
//   std::vector<int32_t> ids = tok.encode("<od>a cat", /*add_special_tokens=*/true);
//   std::string text = tok.decode(ids, /*skip_special_tokens=*/false);
//
// Every method is safe to call from several threads at once, except the add_* methods, which must
// not run while another thread uses the tokenizer. Errors are vlm::Error: kNotFound / kIo for files,
// kBadCheckpoint for malformed or unsupported tokenizer files, kInvalidArgument for non-UTF-8 text.
namespace vlm {

// One entry of the added vocabulary, with the flags `tokenizers` gives an AddedToken.
struct AddedToken {
  std::string content;
  bool special = true;       // dropped by decode(skip_special_tokens=true)
  bool lstrip = false;       // the match swallows whitespace on its left
  bool rstrip = false;       // the match swallows whitespace on its right
  bool single_word = false;  // only matches when not inside a word
  bool normalized = false;   // matched in the second pass (after the non-normalized tokens)
};

class Tokenizer {
 public:
  // A Hugging Face tokenizer.json with model BPE, ByteLevel pre-tokenizer and decoder, no
  // normalizer, and a RobertaProcessing / BertProcessing / ByteLevel / null post-processor.
  static Tokenizer from_file(const std::filesystem::path& tokenizer_json);
  // The same from the JSON text itself.
  static Tokenizer from_json_string(std::string_view json_text);
  // GPT-2 style vocab.json + merges.txt, set up like transformers' RobertaTokenizer/BartTokenizer:
  // <s> <pad> </s> <unk> special, <mask> special with lstrip, <s> ... </s> around encodings.
  static Tokenizer from_vocab_and_merges(const std::filesystem::path& vocab_json,
                                         const std::filesystem::path& merges_txt);
  // tokenizer.json when the folder has one, otherwise vocab.json + merges.txt.
  static Tokenizer from_directory(const std::filesystem::path& dir);

  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;
  ~Tokenizer();

  // Registers tokens the way tokenizers' add_special_tokens / add_tokens do: a content already in
  // the vocabulary keeps its id (and takes the new flags), a new one gets the next free id.
  // add_special_tokens(strings) uses transformers' flags (special, not normalized, no stripping).
  // Returns how many tokens received a new id.
  std::size_t add_special_tokens(const std::vector<std::string>& contents);
  std::size_t add_tokens(const std::vector<AddedToken>& tokens);

  // Text must be valid UTF-8. add_special_tokens wraps the ids as the post-processor says.
  std::vector<int32_t> encode(std::string_view text, bool add_special_tokens = true) const;
  // Unknown ids are skipped, as in `tokenizers`.
  std::string decode(std::span<const int32_t> ids, bool skip_special_tokens = false) const;
  // decode(ids.first(i + 1)).size() for every i, in one pass over the ids (a prefix that ends inside
  // a character decodes it as U+FFFD, as decode() does).
  std::vector<std::size_t> decoded_prefix_sizes(std::span<const int32_t> ids) const;
  // The ByteLevel decoder applied to token strings, like transformers' convert_tokens_to_string.
  std::string tokens_to_string(std::span<const std::string> tokens) const;

  std::optional<int32_t> token_to_id(std::string_view token) const;
  std::optional<std::string> id_to_token(int32_t id) const;
  bool is_special(int32_t id) const;
  // Contents of the special added tokens, in the order they were registered.
  std::vector<std::string> special_tokens() const;
  // Model vocabulary plus added tokens (the largest id + 1).
  std::size_t vocab_size() const;

  // The post-processor's tokens (<s> and </s> for RoBERTa/BART); nullopt when there is none.
  std::optional<int32_t> bos_id() const;
  std::optional<int32_t> eos_id() const;

  struct Impl;  // opaque; public only so the loaders in tokenizer.cpp can fill it in

 private:
  explicit Tokenizer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace vlm
