"""Test setup: reference encodings and decodings from the pinned Hugging Face tokenizers.

Writes $VLM_TEST_DATA/tokenizer/reference.json for tokenizer_parity_test (C++), which must
reproduce every id and every decoded string:
  - "microsoft": microsoft/Florence-2-base's tokenizer.json loaded by transformers, with Florence's
    1,024 task/loc tokens registered the way the remote-code processor registers them
    (add_special_tokens additional_special_tokens); cross-checked against `tokenizers` directly.
  - "onnx": onnx-community/Florence-2-base's tokenizer.json (all 1,029 added tokens baked in),
    loaded by `tokenizers`.
It also records how the GPT-2 pre-tokenizer regex classes every code point (letter, number,
space, other), read back from `tokenizers`, so the generated C++ table is checked exhaustively.
"""

import json
import os
import random
import sys
from pathlib import Path

import tokenizers
import transformers
from tokenizers import Regex, Tokenizer
from tokenizers.pre_tokenizers import Split
from transformers import AutoTokenizer

ASSETS = Path(os.environ.get("VLM_ASSETS", Path(__file__).resolve().parents[2] / ".." / "shared" / "assets"))
OUT = Path(os.environ.get("VLM_TEST_DATA", "build/test-data")) / "tokenizer"
MS_DIR = ASSETS / "florence2" / "Florence-2-base"
ONNX_DIR = ASSETS / "florence2" / "onnx-community-Florence-2-base"

# microsoft/Florence-2-base processing_florence2.py, Florence2Processor.__init__.
FLORENCE_TOKENS = (
    ["<od>", "</od>", "<ocr>", "</ocr>"]
    + [f"<loc_{x}>" for x in range(1000)]
    + ["<cap>", "</cap>", "<ncap>", "</ncap>", "<dcap>", "</dcap>", "<grounding>", "</grounding>", "<seg>",
       "</seg>", "<sep>", "<region_cap>", "</region_cap>", "<region_to_desciption>", "</region_to_desciption>",
       "<proposal>", "</proposal>", "<poly>", "</poly>", "<and>"]
)


def corpus(rng):
    texts = [
        "",
        " ",
        "   ",
        "a",
        "Hello world",
        " Hello world ",
        "What does the image describe?",
        "Locate the phrases in the caption: A green car parked in front of a yellow building.",
        # added and special tokens, alone, adjacent, inside words, partial, nested
        "<s>",
        "</s>",
        "<pad><unk><mask>",
        "<s>hello</s>",
        "a <mask> b",
        "a   <mask>   b",
        "\t\n<mask>\n",
        "<mask>x",
        "<od>car<loc_52><loc_0><loc_999><loc_620></od>",
        "word<loc_1>word <loc_2> word",
        "<poly><loc_1><loc_2><sep><loc_3><loc_4></poly>",
        "<loc_><loc_1000><loc_-1><loc_01><od<od>>",
        "<<od>></</od>><s><s></s></s>",
        "<region_to_desciption><and><proposal></proposal><grounding></grounding>",
        "<OD><CAPTION>",
        # contractions and quotes
        "don't I'm we've they're you'd he'll it's 'S 'LL 'Re",
        "'s'll've're'm'd't ''s ''' ' ' '",
        "rock 'n' roll, \"quoted\" and `ticked`",
        # digits and punctuation
        "0 1 12 123 1234 3.14159 1,000,000 x2y 2x 1st",
        "!!!??? ... --- *** ((([[[{{{}}}]]]))) @#$%^&_+=|\\/~",
        "e-mail: someone@example.com, url: https://example.com/a?b=c&d=e#f",
        # odd whitespace
        "tab\there\t\ttwo\t\t\tthree",
        "multi  space   run    end     ",
        "line\nbreak\n\ntwo\n\n\nthree\r\nwindows\rold mac",
        "nbsp\u00a0here\u00a0\u00a0two and\u00a0 mixed \u00a0",
        "zero\u200bwidth\u200cnon\u200djoiner\ufeffbom",
        "ideographic\u3000space, en\u2002em\u2003thin\u2009hair\u200a",
        "line\u2028para\u2029sep\u0085nel\u1680ogham\u202fnnbsp\u205fmmsp",
        "ctrl\x0bvt\x0cff\x1cfs\x1dgs\x1ers\x1fus\x00nul\x07bel\x7fdel",
        " leading",
        "trailing ",
        "\n",
        "\n\n \n",
        " \t \t ",
        # unicode: accents, scripts, marks, numbers of other kinds
        "héllo wörld, ça va? naïve café résumé Ångström",
        "e\u0301 a\u0308 combining marks n\u0303",
        "日本語のテキスト、中文文本。한국어 텍스트",
        "Привет, мир! Ελληνικά κείμενο. עברית טקסט. العربية نص",
        "हिन्दी पाठ। தமிழ் உரை. ภาษาไทย",
        "Ⅻ ⅻ ² ³ ¼ ½ ① ⑳ ０１２３ ٣٤٥ ߀ 𝟘𝟙𝟚",
        "ﬁ ﬂ Ⓐ 𝐀𝐁𝐂 𝒜 ℌ ℍ",
        # emoji: plain, ZWJ sequences, flags, skin tones, keycaps
        "😀🎉🚀 ❤️ 👍🏽 👩‍👩‍👧‍👦 🏳️‍🌈 🇺🇸🇯🇵 1️⃣ #️⃣",
        "emoji😀inside😀words",
        "\U0001f9d1\u200d\U0001f4bb coder \U0001fae0",
        # replacement character and noncharacters, private use
        "\ufffd \uffff \U0010ffff \ue000",
        # a long word with no separators (BPE over thousands of symbols)
        "a" * 3000,
        "ab" * 1500 + "c",
        "".join(chr(rng.randrange(0x4E00, 0x9FFF)) for _ in range(800)),
        " " * 1000 + "x",
        "\t" * 500,
    ]
    # Every added token, in order, with text between, and all of them glued together.
    texts.append(" ".join(FLORENCE_TOKENS))
    texts.append("".join(FLORENCE_TOKENS))
    texts.append("x".join(FLORENCE_TOKENS[::7]))

    pool = (
        list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
        + list(" " * 12)
        + list(".,;:!?'\"()[]{}<>-_/\\@#$%^&*+=|~`")
        + ["\t", "\n", "\r", "\u00a0", "\u200b", "\u3000", "\u2028", "\x0b"]
        + ["'s", "'ll", "'re", " '", "''"]
        + list("éüñçßøåæœ") + list("日本語中文한국어") + list("αβγδЖЯж") + list("٣४๕")
        + ["😀", "🎉", "👍🏽", "👩‍👩‍👧", "🇺🇸", "❤️"]
        + ["<s>", "</s>", "<pad>", "<unk>", "<mask>", "<od>", "</od>", "<poly>", "<sep>", "<loc_"]
        + [f"<loc_{rng.randrange(1000)}>" for _ in range(20)]
    )
    for _ in range(300):
        texts.append("".join(rng.choice(pool) for _ in range(rng.randrange(1, 60))))
    # Long mixed text, ~60 KB: the linear-time paths get exercised at size.
    paragraph = "".join(rng.choice(pool) for _ in range(20000))
    texts.append(paragraph)
    return texts


def random_id_lists(rng, vocab_size):
    lists = [[], [0], [2], [0, 2], [50264], [vocab_size - 1], [vocab_size, vocab_size + 5, 10**6]]
    for _ in range(200):
        n = rng.randrange(1, 40)
        ids = []
        for _ in range(n):
            r = rng.random()
            if r < 0.1:
                ids.append(rng.randrange(0, 5))  # <s> <pad> </s> <unk>
            elif r < 0.25:
                ids.append(rng.randrange(50264, vocab_size))  # <mask> and Florence tokens
            elif r < 0.3:
                ids.append(rng.randrange(vocab_size, vocab_size + 100))  # unknown ids
            else:
                ids.append(rng.randrange(4, 50264))
        lists.append(ids)
    return lists


def code_point_classes():
    """One letter per code point: L, N, S (whitespace) or O, derived in two batched passes (the
    generator of the C++ table classifies one code point at a time, so the two derivations are
    independent)."""
    split = Split(Regex(r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"),
                  behavior="isolated")
    cps = [cp for cp in range(0x110000) if not (0xD800 <= cp < 0xE000) and cp != 0x20]

    def pieces_of(points, template):
        out = []
        for k in range(0, len(points), 256):  # short strings: the regex engine is slower on long ones
            text = "".join(template.format(chr(cp)) for cp in points[k:k + 256])
            out.extend(p for p, _ in split.pre_tokenize_str(text))
        return out

    # "a" c "1" "\n": a letter joins "a", a number joins "1", anything else stands alone.
    pieces = pieces_of(cps, "a{}1\n")
    kinds = {}
    i = 0
    for cp in cps:
        c = chr(cp)
        if pieces[i] == "a" + c:
            kinds[cp], step = "L", 3
        elif pieces[i] == "a" and pieces[i + 1] == c + "1":
            kinds[cp], step = "N", 3
        elif pieces[i] == "a" and pieces[i + 1] == c and pieces[i + 2] == "1":
            kinds[cp], step = "?", 4
        else:
            raise SystemExit(f"unexpected pieces at U+{cp:04X}: {pieces[i:i + 4]!r}")
        assert pieces[i + step - 1] == "\n", (hex(cp), pieces[i:i + step])
        i += step
    # "!" c "!" "\n": punctuation stays one piece with the bangs, whitespace splits them.
    rest = [cp for cp in cps if kinds[cp] == "?"]
    pieces = pieces_of(rest, "!{}!\n")
    i = 0
    for cp in rest:
        if pieces[i] == "!" + chr(cp) + "!":
            kinds[cp], step = "O", 2
        elif pieces[i:i + 3] == ["!", chr(cp), "!"]:
            kinds[cp], step = "S", 4
        else:
            raise SystemExit(f"unexpected pieces at U+{cp:04X}: {pieces[i:i + 4]!r}")
        i += step
    kinds[0x20] = "S"
    return "".join("O" if 0xD800 <= cp < 0xE000 else kinds[cp] for cp in range(0x110000))


def word_code_points(rng):
    """[code point, is \\w] for a sample: what decides whether a single_word token matches next to it."""
    tok = Tokenizer.from_file(str(ONNX_DIR / "tokenizer.json"))
    tok.add_tokens([tokenizers.AddedToken("[W]", single_word=True, normalized=False)])
    word_id = tok.token_to_id("[W]")
    sample = list(range(0, 0x3000)) + [rng.randrange(0x3000, 0x110000) for _ in range(20000)]
    sample = [cp for cp in sample if not 0xD800 <= cp < 0xE000]
    out = []
    for k in range(0, len(sample), 4096):
        chunk = sample[k:k + 4096]
        # c "[W]" " ": the token is found after c unless c is a word character.
        enc = tok.encode("".join(chr(c) + "[W] " for c in chunk), add_special_tokens=False)
        matched = {start // 5 for i, (start, _) in zip(enc.ids, enc.offsets) if i == word_id}
        out.extend([c, j not in matched] for j, c in enumerate(chunk))
    return out


# Added tokens with every AddedToken flag, registered on the onnx tokenizer in this order.
FLAG_TOKENS = [
    {"content": "[R]", "special": True, "lstrip": False, "rstrip": True, "single_word": False, "normalized": False},
    {"content": "[L]", "special": True, "lstrip": True, "rstrip": False, "single_word": False, "normalized": False},
    {"content": "[W]", "special": False, "lstrip": False, "rstrip": False, "single_word": True, "normalized": False},
    {"content": "[N]", "special": False, "lstrip": False, "rstrip": False, "single_word": False, "normalized": True},
    {"content": "[LR]", "special": False, "lstrip": True, "rstrip": True, "single_word": False, "normalized": True},
    {"content": "Ġqq", "special": True, "lstrip": False, "rstrip": False, "single_word": False, "normalized": False},
    {"content": "<od>", "special": False, "lstrip": True, "rstrip": False, "single_word": False, "normalized": False},
]
FLAG_TEXTS = [
    "a [R]   b", "a   [L] b", "a[W]b", "a [W] b", "[W]", "é[W] ", "_[W]_", "1[W]2", " [W]\t", "x[N]y",
    "  [L][R]  ", "[R][R]  [L]", "\u00a0\u3000[L]", "[R]\u2028\u00a0x", "a [LR] b [LR]", "[LR]", "Ġqq qq Ġqq",
    "a <od> b  <od>", "[N][LR][W][R][L]", "\u0903[W]", "\u00b2[W]\u00b2", "\u200d[W]", "\u203f[W]",
    "[W]\u0301", "\u0663[W]\u2160", "[[R]] [[L]]", "<s> [L] </s>",
]


def record(encode, decode, texts, id_lists):
    cases = []
    for text in texts:
        plain = encode(text, False)
        wrapped = encode(text, True)
        cases.append({
            "text": text,
            "ids": plain,
            "ids_with_special": wrapped,
            "decoded": decode(wrapped, False),
            "decoded_skip_special": decode(wrapped, True),
        })
    decodes = [{"ids": ids, "decoded": decode(ids, False), "decoded_skip_special": decode(ids, True)}
               for ids in id_lists]
    return {"encode": cases, "decode": decodes}


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    rng = random.Random(20240611)
    texts = corpus(rng)

    # The processor's way: transformers' tokenizer for the folder, then add_special_tokens.
    ms = AutoTokenizer.from_pretrained(MS_DIR)
    added = ms.add_special_tokens({"additional_special_tokens": FLORENCE_TOKENS})
    assert added == 1024 and len(ms) == 51289, (added, len(ms))
    # The same registration done on `tokenizers` directly must agree with it.
    ms_raw = Tokenizer.from_file(str(MS_DIR / "tokenizer.json"))
    ms_raw.add_special_tokens([tokenizers.AddedToken(t, special=True, normalized=False) for t in FLORENCE_TOKENS])

    onnx = Tokenizer.from_file(str(ONNX_DIR / "tokenizer.json"))
    id_lists = random_id_lists(rng, 51289)

    def ms_encode(text, special):
        ids = ms(text, add_special_tokens=special)["input_ids"]
        assert ids == ms_raw.encode(text, add_special_tokens=special).ids, text
        return ids

    def ms_decode(ids, skip):
        text = ms.decode(ids, skip_special_tokens=skip, clean_up_tokenization_spaces=False)
        assert text == ms_raw.decode(ids, skip_special_tokens=skip), ids
        return text

    def onnx_encode_with(tok):
        return lambda text, special: tok.encode(text, add_special_tokens=special).ids

    def onnx_decode_with(tok):
        return lambda ids, skip: tok.decode(ids, skip_special_tokens=skip)

    onnx_encode = onnx_encode_with(onnx)
    onnx_decode = onnx_decode_with(onnx)

    flagged = Tokenizer.from_file(str(ONNX_DIR / "tokenizer.json"))
    for t in FLAG_TOKENS:
        token = tokenizers.AddedToken(t["content"], single_word=t["single_word"], lstrip=t["lstrip"],
                                      rstrip=t["rstrip"], normalized=t["normalized"], special=t["special"])
        (flagged.add_special_tokens if t["special"] else flagged.add_tokens)([token])
    flag_ids = [[flagged.token_to_id(t["content"])] for t in FLAG_TOKENS]

    # The florence-community layout: transformers' own save of the processor's tokenizer, with
    # <image> added as the conversion script does (merges in the newer [a, b] form).
    native = AutoTokenizer.from_pretrained(MS_DIR)
    native.add_special_tokens({"additional_special_tokens": FLORENCE_TOKENS})
    native.add_tokens(transformers.AddedToken("<image>", special=True, normalized=False), special_tokens=True)
    native_dir = OUT / "florence_community_layout"
    native.save_pretrained(native_dir)
    native_raw = Tokenizer.from_file(str(native_dir / "tokenizer.json"))
    native_texts = ["<image>" * 3 + "<s>Locate the objects with category name in the image.</s>"] + texts[:120]

    reference = {
        "versions": {"tokenizers": tokenizers.__version__, "transformers": transformers.__version__},
        "florence_tokens": FLORENCE_TOKENS,
        "microsoft": record(ms_encode, ms_decode, texts, id_lists),
        "onnx": record(onnx_encode, onnx_decode, texts, id_lists),
        "native": record(onnx_encode_with(native_raw), onnx_decode_with(native_raw), native_texts,
                         id_lists[:50] + [[51289, 0, 2, 51289]]),
        "flag_tokens": FLAG_TOKENS,
        "flags": record(onnx_encode_with(flagged), onnx_decode_with(flagged), FLAG_TEXTS, flag_ids),
        "tokens_to_string": [
            {"tokens": toks, "text": ms.convert_tokens_to_string(toks)}
            for toks in (["Ġx"], ["ðŁĺ"], ["ðŁĺ", "Ģ"], ["Hello", "Ġworld"], ["<od>"], ["Ã©", "âĢĭ"], ["é€"])
        ],
        "code_point_classes": code_point_classes(),
        "word_code_points": word_code_points(rng),
    }
    with open(OUT / "reference.json", "w", encoding="utf-8") as f:
        json.dump(reference, f, ensure_ascii=True)
    print(f"wrote {OUT / 'reference.json'}: {len(texts)} texts, {len(id_lists)} id lists")


if __name__ == "__main__":
    sys.exit(main())
