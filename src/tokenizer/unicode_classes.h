#pragma once

namespace vlm::tokenizer_detail {

// What the GPT-2 pre-tokenizer regex sees in a code point: \p{L}, \p{N}, \s or anything else.
enum class CodePointClass : unsigned char { kLetter, kNumber, kSpace, kOther };

// Table generated from `tokenizers` itself (gen_unicode_classes.py); surrogates are kOther.
CodePointClass classify_code_point(char32_t cp);

// Rust regex's \w (alphabetic, marks, decimal digits, connector punctuation, joiners): a
// single_word added token does not match next to one of these.
bool is_word_code_point(char32_t cp);

}  // namespace vlm::tokenizer_detail
