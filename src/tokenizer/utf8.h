#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace vlm::tokenizer_detail {

// Decodes the code point at text[pos] and advances pos. Returns false on invalid UTF-8 (overlong,
// surrogate, out of range, truncated), leaving pos unchanged.
bool next_code_point(std::string_view text, std::size_t& pos, char32_t& cp);

// Byte offset of the first invalid UTF-8 sequence, or npos when the text is valid.
std::size_t find_invalid_utf8(std::string_view text);

// Invalid sequences replaced by U+FFFD exactly as Rust's String::from_utf8_lossy (and Python's
// errors="replace") do: one replacement per maximal subpart of a well-formed sequence.
std::string utf8_lossy(std::string_view bytes);

// Length of the well-formed but truncated sequence that ends `bytes` (0 when none): the bytes that
// utf8_lossy replaces by one U+FFFD now but that further bytes may complete. Everything before
// them decodes the same whatever follows.
std::size_t truncated_utf8_tail(std::string_view bytes);

// Unicode White_Space, which is what Rust's char::is_whitespace and Oniguruma's \s use.
bool is_unicode_whitespace(char32_t cp);

// Appends the UTF-8 encoding of cp.
void append_utf8(std::string& out, char32_t cp);

}  // namespace vlm::tokenizer_detail
