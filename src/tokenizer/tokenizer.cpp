#include "vlm/tokenizer.h"

#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "added_vocabulary.h"
#include "bpe.h"
#include "byte_level.h"
#include "utf8.h"
#include "vlm/error.h"

namespace vlm {

using tokenizer_detail::AddedVocabulary;
using tokenizer_detail::BpeModel;
using tokenizer_detail::BpeOptions;
using tokenizer_detail::TextSplit;
using tokenizer_detail::Vocab;
using Json = nlohmann::json;

struct Tokenizer::Impl {
  std::unique_ptr<BpeModel> model;
  AddedVocabulary added;
  bool add_prefix_space = false;
  bool use_regex = true;
  // What the post-processor puts around a single sequence.
  std::vector<int32_t> prefix_ids;
  std::vector<int32_t> suffix_ids;
  std::optional<int32_t> bos;
  std::optional<int32_t> eos;

  // tokenizers' AddedVocabulary::add_tokens: existing content keeps its id, otherwise the next id
  // after both the model vocabulary and every added token.
  std::size_t add(const std::vector<AddedToken>& tokens) {
    std::size_t fresh = 0;
    for (const AddedToken& token : tokens) {
      if (token.content.empty()) continue;
      std::optional<int32_t> id = added.token_to_id(token.content);
      if (!id) id = model->token_to_id(token.content);
      if (!id) {
        auto next = static_cast<int32_t>(model->size());
        if (auto max = added.max_id(); max && *max >= next) next = *max + 1;
        id = next;
        ++fresh;
      }
      added.add(token, *id);
    }
    added.rebuild();
    return fresh;
  }

  const std::string* token_of(int32_t id) const {
    if (const AddedToken* t = added.token_for_id(id)) return &t->content;
    return model->id_to_token(id);
  }
};

namespace {

std::string read_file(const std::filesystem::path& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    throw Error(ErrorCode::kNotFound, "tokenizer file " + path.string() + " does not exist");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(ErrorCode::kIo, "cannot open tokenizer file " + path.string());
  std::ostringstream buffer;
  buffer << in.rdbuf();
  if (!in.good() && !in.eof()) throw Error(ErrorCode::kIo, "cannot read tokenizer file " + path.string());
  return buffer.str();
}

Json parse_json(std::string_view text, const std::string& what) {
  try {
    return Json::parse(text);
  } catch (const Json::exception& e) {
    throw Error(ErrorCode::kBadCheckpoint, what + " is not valid JSON: " + e.what());
  }
}

[[noreturn]] void unsupported(const std::string& what, const Json& value) {
  throw Error(ErrorCode::kBadCheckpoint, "unsupported tokenizer " + what + ": " + value.dump().substr(0, 200));
}

Vocab parse_vocab(const Json& vocab, const std::string& what) {
  if (!vocab.is_object()) throw Error(ErrorCode::kBadCheckpoint, what + " vocab is not a JSON object");
  Vocab out;
  out.reserve(vocab.size());
  for (auto it = vocab.begin(); it != vocab.end(); ++it) {
    if (!it.value().is_number_integer()) {
      throw Error(ErrorCode::kBadCheckpoint, what + " vocab entry '" + it.key() + "' has a non-integer id");
    }
    out.emplace(it.key(), it.value().get<int32_t>());
  }
  return out;
}

std::pair<std::string, std::string> split_merge(std::string_view line, std::size_t rank) {
  const std::size_t space = line.find(' ');
  if (space == std::string_view::npos || line.find(' ', space + 1) != std::string_view::npos) {
    throw Error(
        ErrorCode::kBadCheckpoint,
        "merge " + std::to_string(rank) + " is not two tokens separated by one space: '" + std::string(line) + "'");
  }
  return {std::string(line.substr(0, space)), std::string(line.substr(space + 1))};
}

std::vector<std::pair<std::string, std::string>> parse_merges(const Json& merges) {
  if (!merges.is_array()) throw Error(ErrorCode::kBadCheckpoint, "tokenizer.json model.merges is not a list");
  std::vector<std::pair<std::string, std::string>> out;
  out.reserve(merges.size());
  for (const Json& m : merges) {
    // Older files spell a merge "a b", newer ones ["a", "b"].
    if (m.is_string()) {
      out.push_back(split_merge(m.get_ref<const std::string&>(), out.size()));
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      out.emplace_back(m[0].get<std::string>(), m[1].get<std::string>());
    } else {
      unsupported("merge entry", m);
    }
  }
  return out;
}

bool flag(const Json& object, const char* key, bool fallback) {
  auto it = object.find(key);
  return it == object.end() || it->is_null() ? fallback : it->get<bool>();
}

void configure_pre_tokenizer(Tokenizer::Impl& impl, const Json& pre) {
  if (pre.is_null()) unsupported("pre_tokenizer (byte-level BPE needs ByteLevel)", pre);
  const Json* byte_level = &pre;
  if (pre.value("type", "") == "Sequence") {
    const Json& list = pre.at("pretokenizers");
    if (list.size() != 1) unsupported("pre_tokenizer sequence", pre);
    byte_level = &list[0];
  }
  if (byte_level->value("type", "") != "ByteLevel") unsupported("pre_tokenizer", pre);
  impl.add_prefix_space = flag(*byte_level, "add_prefix_space", false);
  impl.use_regex = flag(*byte_level, "use_regex", true);
}

void configure_post_processor(Tokenizer::Impl& impl, const Json& post) {
  if (post.is_null()) return;
  const std::string type = post.value("type", "");
  if (type == "ByteLevel") return;  // offsets only
  if (type == "RobertaProcessing" || type == "BertProcessing") {
    impl.bos = post.at("cls").at(1).get<int32_t>();
    impl.eos = post.at("sep").at(1).get<int32_t>();
    impl.prefix_ids = {*impl.bos};
    impl.suffix_ids = {*impl.eos};
    return;
  }
  if (type == "TemplateProcessing") {
    const Json& specials = post.at("special_tokens");
    bool seen_sequence = false;
    for (const Json& piece : post.at("single")) {
      if (piece.contains("Sequence")) {
        seen_sequence = true;
        continue;
      }
      const std::string name = piece.at("SpecialToken").at("id").get<std::string>();
      for (const Json& id : specials.at(name).at("ids")) {
        (seen_sequence ? impl.suffix_ids : impl.prefix_ids).push_back(id.get<int32_t>());
      }
    }
    if (!impl.prefix_ids.empty()) impl.bos = impl.prefix_ids.front();
    if (!impl.suffix_ids.empty()) impl.eos = impl.suffix_ids.back();
    return;
  }
  unsupported("post_processor", post);
}

}  // namespace

Tokenizer::Tokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

Tokenizer Tokenizer::from_file(const std::filesystem::path& tokenizer_json) {
  try {
    return from_json_string(read_file(tokenizer_json));
  } catch (const Error& e) {
    if (e.code() != ErrorCode::kBadCheckpoint) throw;
    throw Error(ErrorCode::kBadCheckpoint, tokenizer_json.string() + ": " + e.what());
  }
}

Tokenizer Tokenizer::from_json_string(std::string_view json_text) {
  const Json root = parse_json(json_text, "tokenizer.json");
  auto impl = std::make_unique<Impl>();
  try {
    if (auto it = root.find("normalizer"); it != root.end() && !it->is_null()) unsupported("normalizer", *it);
    if (auto it = root.find("truncation"); it != root.end() && !it->is_null()) unsupported("truncation", *it);
    if (auto it = root.find("padding"); it != root.end() && !it->is_null()) unsupported("padding", *it);
    if (auto it = root.find("decoder"); it == root.end() || it->value("type", "") != "ByteLevel") {
      unsupported("decoder (byte-level BPE needs ByteLevel)", it == root.end() ? Json() : *it);
    }
    configure_pre_tokenizer(*impl, root.value("pre_tokenizer", Json()));

    const Json& model = root.at("model");
    if (model.value("type", "BPE") != "BPE") unsupported("model", model.value("type", Json()));
    if (auto d = model.find("dropout"); d != model.end() && !d->is_null() && d->get<double>() > 0.0) {
      unsupported("BPE dropout", *d);
    }
    for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
      if (auto s = model.find(key); s != model.end() && !s->is_null() && !s->get<std::string>().empty()) {
        unsupported(std::string("BPE ") + key, *s);
      }
    }
    if (flag(model, "byte_fallback", false)) unsupported("BPE byte_fallback", model.at("byte_fallback"));
    BpeOptions options;
    if (auto u = model.find("unk_token"); u != model.end() && !u->is_null()) options.unk_token = u->get<std::string>();
    options.fuse_unk = flag(model, "fuse_unk", false);
    options.ignore_merges = flag(model, "ignore_merges", false);
    impl->model = std::make_unique<BpeModel>(parse_vocab(model.at("vocab"), "tokenizer.json model"),
                                             parse_merges(model.at("merges")), std::move(options));

    for (const Json& t : root.value("added_tokens", Json::array())) {
      AddedToken token{t.at("content").get<std::string>(), flag(t, "special", false),     flag(t, "lstrip", false),
                       flag(t, "rstrip", false),           flag(t, "single_word", false), flag(t, "normalized", true)};
      impl->added.add(token, t.at("id").get<int32_t>());
    }
    impl->added.rebuild();
    configure_post_processor(*impl, root.value("post_processor", Json()));
  } catch (const Json::exception& e) {
    throw Error(ErrorCode::kBadCheckpoint, std::string("malformed tokenizer.json: ") + e.what());
  }
  return Tokenizer(std::move(impl));
}

Tokenizer Tokenizer::from_vocab_and_merges(const std::filesystem::path& vocab_json,
                                           const std::filesystem::path& merges_txt) {
  const Json vocab_root = parse_json(read_file(vocab_json), vocab_json.string());
  const std::string merges_text = read_file(merges_txt);
  std::vector<std::pair<std::string, std::string>> merges;
  std::istringstream lines(merges_text);
  for (std::string line; std::getline(lines, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || line.starts_with("#version")) continue;
    merges.push_back(split_merge(line, merges.size()));
  }
  auto impl = std::make_unique<Impl>();
  impl->model = std::make_unique<BpeModel>(parse_vocab(vocab_root, vocab_json.string()), merges, BpeOptions{});
  // transformers' RobertaTokenizer / BartTokenizer defaults.
  impl->add({{"<s>", true, false, false, false, true},
             {"<pad>", true, false, false, false, true},
             {"</s>", true, false, false, false, true},
             {"<unk>", true, false, false, false, true},
             {"<mask>", true, true, false, false, true}});
  impl->bos = impl->added.token_to_id("<s>");
  impl->eos = impl->added.token_to_id("</s>");
  impl->prefix_ids = {*impl->bos};
  impl->suffix_ids = {*impl->eos};
  return Tokenizer(std::move(impl));
}

Tokenizer Tokenizer::from_directory(const std::filesystem::path& dir) {
  std::error_code ec;
  if (std::filesystem::is_regular_file(dir / "tokenizer.json", ec)) return from_file(dir / "tokenizer.json");
  if (std::filesystem::is_regular_file(dir / "vocab.json", ec) &&
      std::filesystem::is_regular_file(dir / "merges.txt", ec)) {
    return from_vocab_and_merges(dir / "vocab.json", dir / "merges.txt");
  }
  throw Error(ErrorCode::kNotFound, "no tokenizer.json, nor vocab.json with merges.txt, in " + dir.string());
}

std::size_t Tokenizer::add_special_tokens(const std::vector<std::string>& contents) {
  std::vector<AddedToken> tokens;
  tokens.reserve(contents.size());
  for (const std::string& c : contents) tokens.push_back({c, true, false, false, false, false});
  return impl_->add(tokens);
}

std::size_t Tokenizer::add_tokens(const std::vector<AddedToken>& tokens) { return impl_->add(tokens); }

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_special_tokens) const {
  if (const std::size_t bad = tokenizer_detail::find_invalid_utf8(text); bad != std::string_view::npos) {
    throw Error(ErrorCode::kInvalidArgument, "text to tokenize is not valid UTF-8 (byte " + std::to_string(bad) +
                                                 " of " + std::to_string(text.size()) + ")");
  }
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 4);
  if (add_special_tokens) ids.insert(ids.end(), impl_->prefix_ids.begin(), impl_->prefix_ids.end());

  std::vector<TextSplit> splits;
  impl_->added.split(text, splits);
  if (splits.empty()) splits.push_back({0, 0, -1});
  std::vector<std::pair<std::size_t, std::size_t>> words;
  std::string prefixed;
  for (const TextSplit& s : splits) {
    if (s.id >= 0) {
      ids.push_back(s.id);
      continue;
    }
    std::string_view piece = text.substr(s.begin, s.end - s.begin);
    if (impl_->add_prefix_space && !piece.starts_with(' ')) {
      prefixed.assign(1, ' ');
      prefixed.append(piece);
      piece = prefixed;
    }
    words.clear();
    if (impl_->use_regex) {
      tokenizer_detail::split_gpt2(piece, words);
    } else if (!piece.empty()) {
      words.emplace_back(0, piece.size());
    }
    for (const auto& [a, b] : words) impl_->model->encode_word(piece.substr(a, b - a), ids);
  }
  if (add_special_tokens) ids.insert(ids.end(), impl_->suffix_ids.begin(), impl_->suffix_ids.end());
  return ids;
}

std::string Tokenizer::decode(std::span<const int32_t> ids, bool skip_special_tokens) const {
  std::string bytes;
  bytes.reserve(ids.size() * 4);
  for (int32_t id : ids) {
    if (skip_special_tokens && impl_->added.is_special_id(id)) continue;
    const std::string* token = impl_->token_of(id);
    if (token == nullptr) continue;
    bytes += tokenizer_detail::token_to_bytes(*token);
  }
  return tokenizer_detail::utf8_lossy(bytes);
}

std::vector<std::size_t> Tokenizer::decoded_prefix_sizes(std::span<const int32_t> ids) const {
  std::vector<std::size_t> sizes;
  sizes.reserve(ids.size());
  std::size_t settled = 0;  // decoded size of the bytes that no later byte can change
  std::string open;         // the bytes after them: a character some later token may complete
  for (int32_t id : ids) {
    if (const std::string* token = impl_->token_of(id)) open += tokenizer_detail::token_to_bytes(*token);
    const std::size_t tail = tokenizer_detail::truncated_utf8_tail(open);
    settled += tokenizer_detail::utf8_lossy(std::string_view(open).substr(0, open.size() - tail)).size();
    open.erase(0, open.size() - tail);
    constexpr std::size_t kReplacementSize = 3;  // U+FFFD in UTF-8
    sizes.push_back(settled + (tail > 0 ? kReplacementSize : 0));
  }
  return sizes;
}

std::string Tokenizer::tokens_to_string(std::span<const std::string> tokens) const {
  std::string bytes;
  for (const std::string& t : tokens) bytes += tokenizer_detail::token_to_bytes(t);
  return tokenizer_detail::utf8_lossy(bytes);
}

std::optional<int32_t> Tokenizer::token_to_id(std::string_view token) const {
  if (auto id = impl_->added.token_to_id(token)) return id;
  return impl_->model->token_to_id(token);
}

std::optional<std::string> Tokenizer::id_to_token(int32_t id) const {
  if (const std::string* t = impl_->token_of(id)) return *t;
  return std::nullopt;
}

bool Tokenizer::is_special(int32_t id) const { return impl_->added.is_special_id(id); }

std::vector<std::string> Tokenizer::special_tokens() const { return impl_->added.special_contents(); }

std::size_t Tokenizer::vocab_size() const {
  std::size_t size = impl_->model->size();
  if (auto max = impl_->added.max_id(); max && static_cast<std::size_t>(*max) + 1 > size) {
    size = static_cast<std::size_t>(*max) + 1;
  }
  return size;
}

std::optional<int32_t> Tokenizer::bos_id() const { return impl_->bos; }
std::optional<int32_t> Tokenizer::eos_id() const { return impl_->eos; }

}  // namespace vlm
