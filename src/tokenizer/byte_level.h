#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace vlm::tokenizer_detail {

// GPT-2's reversible byte <-> printable character map: byte b is spelled by the UTF-8 string
// byte_to_chars(b) in vocabularies ("Ġ" for a space).
const std::string& byte_to_chars(unsigned char b);

// The vocabulary spelling of raw bytes (each byte mapped through byte_to_chars).
std::string bytes_to_token_chars(std::string_view bytes);

// The bytes a token stands for, as tokenizers' ByteLevel decoder computes them: every character
// mapped back to its byte, or, when one character is outside the map, the token's own UTF-8.
std::string token_to_bytes(std::string_view token);

// Byte ranges [first, second) of the pieces the GPT-2 pattern
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// finds in text (valid UTF-8). Hand-written rather than a regex engine: linear time, and the
// character classes come from the table `tokenizers` itself produced.
void split_gpt2(std::string_view text, std::vector<std::pair<std::size_t, std::size_t>>& pieces);

}  // namespace vlm::tokenizer_detail
