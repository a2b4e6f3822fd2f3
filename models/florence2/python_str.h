#pragma once

#include <cstddef>
#include <string>
#include <string_view>

// The few Python str operations Florence-2's processor relies on, over UTF-8: its results depend
// on Python's notion of whitespace, which differs from C's isspace and from Unicode White_Space.
namespace vlm::florence2 {

// str.isspace() for one code point (also what the `re` module's \s matches).
bool python_isspace(char32_t cp);

// Decodes the code point at pos (callers hold UTF-8 produced by the tokenizer) and its length.
char32_t code_point_at(std::string_view text, std::size_t pos, std::size_t& length);

// str.strip() with no argument.
std::string python_strip(std::string_view text);

// str.replace(old, new): every non-overlapping occurrence, left to right.
std::string replace_all(std::string_view text, std::string_view from, std::string_view to);

}  // namespace vlm::florence2
