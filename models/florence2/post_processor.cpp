#include "post_processor.h"

#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <unordered_set>

#include "python_str.h"
#include "task_prompts.h"
#include "vlm/error.h"

// Each parser below reproduces one regular expression of transformers' Florence2PostProcessor
// with Python `re` semantics. All delimiters are ASCII, so scanning UTF-8 bytes finds the same
// matches as Python scanning code points ('.' excludes only '\n', '[^<]' any byte but '<').
namespace vlm::florence2 {
namespace {

using Box = std::array<float, 4>;
constexpr std::size_t kNpos = std::string_view::npos;

std::string replace_first(std::string_view text, std::string_view from) {
  const std::size_t hit = text.find(from);
  if (hit == kNpos) return std::string(text);
  std::string out(text.substr(0, hit));
  out.append(text.substr(hit + from.size()));
  return out;
}

// What every parser except pure text does first.
std::string remove_sequence_tokens(std::string_view text) {
  return replace_all(replace_all(replace_all(text, "<s>", ""), "</s>", ""), "<pad>", "");
}

bool starts_with_at(std::string_view text, std::size_t pos, std::string_view prefix) {
  return text.size() - pos >= prefix.size() && text.compare(pos, prefix.size(), prefix) == 0;
}

// Value of the decimal digit (Python's \d: Unicode category Nd, which int() also reads) at pos, or
// -1; len receives its UTF-8 length. Nd digits come in runs of ten from a zero (a Unicode stability
// guarantee), so the zeros are the whole table; these are Unicode 14's, Python 3.11's version.
int decimal_digit_at(std::string_view text, std::size_t pos, std::size_t& len) {
  const auto b = static_cast<unsigned char>(text[pos]);
  len = 1;
  if (b < 0x80) return b >= '0' && b <= '9' ? b - '0' : -1;
  static constexpr char32_t kZeros[] = {
      0x660,   0x6F0,   0x7C0,   0x966,   0x9E6,   0xA66,   0xAE6,   0xB66,   0xBE6,   0xC66,   0xCE6,
      0xD66,   0xDE6,   0xE50,   0xED0,   0xF20,   0x1040,  0x1090,  0x17E0,  0x1810,  0x1946,  0x19D0,
      0x1A80,  0x1A90,  0x1B50,  0x1BB0,  0x1C40,  0x1C50,  0xA620,  0xA8D0,  0xA900,  0xA9D0,  0xA9F0,
      0xAA50,  0xABF0,  0xFF10,  0x104A0, 0x10D30, 0x11066, 0x110F0, 0x11136, 0x111D0, 0x112F0, 0x11450,
      0x114D0, 0x11650, 0x116C0, 0x11730, 0x118E0, 0x11950, 0x11C50, 0x11D50, 0x11DA0, 0x16A60, 0x16AC0,
      0x16B50, 0x1D7CE, 0x1D7D8, 0x1D7E2, 0x1D7EC, 0x1D7F6, 0x1E140, 0x1E2F0, 0x1E950, 0x1FBF0};
  std::size_t n = 0;
  const char32_t cp = code_point_at(text, pos, n);
  for (char32_t zero : kZeros) {
    if (cp >= zero && cp < zero + 10) {
      len = n;
      return static_cast<int>(cp - zero);
    }
  }
  return -1;
}

// <loc_(\d+)> at pos: end offset and value.
struct Loc {
  std::size_t end;
  long long value;
};

std::optional<Loc> loc_at(std::string_view text, std::size_t pos) {
  if (!starts_with_at(text, pos, "<loc_")) return std::nullopt;
  std::size_t i = pos + 5;
  long long value = 0;
  const std::size_t digits_begin = i;
  std::size_t len = 0;
  for (int digit; i < text.size() && (digit = decimal_digit_at(text, i, len)) >= 0; i += len) {
    // Saturate: torch.tensor would overflow long before this matters.
    value =
        value > std::numeric_limits<long long>::max() / 10 ? std::numeric_limits<long long>::max() : value * 10 + digit;
  }
  if (i == digits_begin || i >= text.size() || text[i] != '>') return std::nullopt;
  return Loc{i + 1, value};
}

// Consecutive (?:<loc_\d+>) from pos: how many and where they end.
std::pair<std::size_t, std::size_t> loc_run(std::string_view text, std::size_t pos) {
  std::size_t count = 0;
  while (auto loc = loc_at(text, pos)) {
    ++count;
    pos = loc->end;
  }
  return {count, pos};
}

// One of <loc_\d+>|<sep>|<poly>|</poly> at pos: its end, or kNpos.
std::size_t polygon_token_at(std::string_view text, std::size_t pos) {
  if (auto loc = loc_at(text, pos)) return loc->end;
  for (std::string_view t : {std::string_view("<sep>"), std::string_view("<poly>"), std::string_view("</poly>")}) {
    if (starts_with_at(text, pos, t)) return pos + t.size();
  }
  return kNpos;
}

std::pair<std::size_t, std::size_t> polygon_token_run(std::string_view text, std::size_t pos) {
  std::size_t count = 0;
  for (std::size_t end; (end = polygon_token_at(text, pos)) != kNpos; pos = end) ++count;
  return {count, pos};
}

using RunFn = std::pair<std::size_t, std::size_t> (*)(std::string_view, std::size_t);

// re.findall(r"([^<]+(?:TOKEN){4,})") when with_text, re.findall(r"(?:TOKEN){4,}") otherwise.
std::vector<std::string_view> find_phrases(std::string_view text, RunFn run, bool with_text) {
  std::vector<std::string_view> out;
  std::size_t i = 0;
  while (i < text.size()) {
    if (!with_text) {
      const auto [count, end] = run(text, i);
      if (count >= 4) {
        out.push_back(text.substr(i, end - i));
        i = end;
      } else {
        ++i;
      }
      continue;
    }
    if (text[i] == '<') {
      ++i;
      continue;
    }
    // [^<]+ is greedy and the tokens all start with '<', so only its longest run can succeed;
    // every later start inside the same run fails the same way.
    std::size_t r = text.find('<', i);
    if (r == kNpos) break;
    const auto [count, end] = run(text, r);
    if (count >= 4) {
      out.push_back(text.substr(i, end - i));
      i = end;
    } else {
      i = r;
    }
  }
  return out;
}

// re.search(r"^\s*(.*?)(?=<od>|</od>|<box>|</box>|<bbox>|</bbox>|<loc_[|<poly>])", text).group():
// the text before the first lookahead token after the leading whitespace, or nothing when a
// newline ('.' does not cross it) or the end comes first.
std::optional<std::string_view> phrase_before_tokens(std::string_view text, bool poly_too) {
  static constexpr std::string_view kStops[] = {"<od>", "</od>", "<box>", "</box>", "<bbox>", "</bbox>", "<loc_"};
  std::size_t p = 0;
  std::size_t len = 0;
  while (p < text.size() && python_isspace(code_point_at(text, p, len))) p += len;
  for (; p < text.size(); ++p) {
    if (text[p] == '\n') return std::nullopt;
    if (text[p] != '<') continue;
    for (std::string_view stop : kStops) {
      if (starts_with_at(text, p, stop)) return text.substr(0, p);
    }
    if (poly_too && starts_with_at(text, p, "<poly>")) return text.substr(0, p);
  }
  return std::nullopt;
}

std::string ascii_only(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (static_cast<unsigned char>(c) < 0x80) out += c;
  }
  return out;
}

// (bin + 0.5) * (size / bins) in float32, then .int(), as torch computes it (int64 + 0.5 promotes
// to float32; the Python float scalar joins the float32 multiply as float32).
int dequantize(long long bin, double size) {
  const float per_bin = static_cast<float>(size / 1000.0);
  const float value = (static_cast<float>(bin) + 0.5f) * per_bin;
  if (!(value > -2147483649.0f && value < 2147483648.0f)) return std::numeric_limits<int>::min();
  return static_cast<int>(value);
}

Box dequantize_box(const long long* bins, ImageSize size) {
  return {static_cast<float>(dequantize(bins[0], size.width)), static_cast<float>(dequantize(bins[1], size.height)),
          static_cast<float>(dequantize(bins[2], size.width)), static_cast<float>(dequantize(bins[3], size.height))};
}

// Points (x, y, x, y, ...): an odd trailing bin is dropped, as the caller of dequantize does.
std::vector<float> dequantize_points(const std::vector<long long>& bins, ImageSize size) {
  std::vector<float> out;
  for (std::size_t i = 0; i + 1 < bins.size(); i += 2) {
    out.push_back(static_cast<float>(dequantize(bins[i], size.width)));
    out.push_back(static_cast<float>(dequantize(bins[i + 1], size.height)));
  }
  return out;
}

// re.finditer(r"<loc_(\d+)><loc_(\d+)><loc_(\d+)><loc_(\d+)>", text), dequantized; each match's
// range, shifted by `offset`, into `ranges`.
std::vector<Box> find_boxes(std::string_view text, ImageSize size, std::vector<TextRange>& ranges, std::size_t offset) {
  std::vector<Box> boxes;
  std::size_t i = 0;
  while (i < text.size()) {
    long long bins[4];
    std::size_t pos = i;
    int k = 0;
    for (; k < 4; ++k) {
      auto loc = loc_at(text, pos);
      if (!loc) break;
      bins[k] = loc->value;
      pos = loc->end;
    }
    if (k == 4) {
      boxes.push_back(dequantize_box(bins, size));
      ranges.push_back({offset + i, offset + pos});
      i = pos;
    } else {
      ++i;
    }
  }
  return boxes;
}

struct Instance {
  std::vector<Box> boxes;
  std::string label;
  TextRange label_range;
  std::vector<TextRange> box_ranges;  // one per box
};

// parse_description_with_bboxes_from_text_and_spans and, with a banned list,
// parse_phrase_grounding_from_text_and_spans (which always requires a phrase).
std::vector<Instance> parse_bboxes(std::string_view raw, ImageSize size, bool allow_empty_phrase,
                                   const std::unordered_set<std::string>* banned) {
  const std::string text = remove_sequence_tokens(raw);
  std::vector<Instance> out;
  for (std::string_view found : find_phrases(text, loc_run, !allow_empty_phrase)) {
    const auto at = static_cast<std::size_t>(found.data() - text.data());
    // A no-op in fact ([^<]+ and loc tokens hold neither), so offsets into phrase_text are offsets
    // into found; kept as transformers has it.
    const std::string phrase_text = replace_first(replace_first(found, "<ground>"), "<obj>");
    if (phrase_text.empty() && !allow_empty_phrase) continue;
    const auto match = phrase_before_tokens(phrase_text, false);
    if (!match) continue;
    std::string phrase = python_strip(*match);
    if (banned != nullptr && banned->contains(phrase)) continue;
    std::vector<TextRange> box_ranges;
    std::vector<Box> boxes = find_boxes(phrase_text, size, box_ranges, at);
    if (boxes.empty()) continue;
    out.push_back({std::move(boxes), ascii_only(phrase), TextRange{at, at + match->size()}, std::move(box_ranges)});
  }
  return out;
}

// re.finditer(r"<poly>(.*?)</poly>") group 1.
std::vector<std::string_view> poly_groups(std::string_view text) {
  std::vector<std::string_view> out;
  std::size_t i = 0;
  while (i < text.size()) {
    if (!starts_with_at(text, i, "<poly>")) {
      ++i;
      continue;
    }
    const std::size_t inner = i + 6;
    std::size_t q = inner;
    while (q < text.size() && text[q] != '\n' && !starts_with_at(text, q, "</poly>")) ++q;
    if (q < text.size() && text[q] != '\n') {
      out.push_back(text.substr(inner, q - inner));
      i = q + 7;
    } else {
      // Every start before the newline (or the end) runs into it as well.
      if (q >= text.size()) break;
      i = q;
    }
  }
  return out;
}

// re.finditer(r"((?:<loc_\d+>)+)(?:<sep>|$)") -> the bins of each group; each group's range, shifted
// by `offset`, into `ranges`.
std::vector<std::vector<long long>> polygon_bin_groups(std::string_view text, std::vector<TextRange>& ranges,
                                                       std::size_t offset) {
  std::vector<std::vector<long long>> out;
  std::size_t i = 0;
  while (i < text.size()) {
    const auto [count, end] = loc_run(text, i);
    if (count == 0) {
      ++i;
      continue;
    }
    const bool at_end = end == text.size();
    if (!at_end && !starts_with_at(text, end, "<sep>")) {
      i = end;  // shorter suffixes of the run end at the same place and fail the same way
      continue;
    }
    std::vector<long long> bins;
    for (std::size_t p = i; p < end;) {
      const auto loc = loc_at(text, p);
      bins.push_back(loc->value);
      p = loc->end;
    }
    out.push_back(std::move(bins));
    ranges.push_back({offset + i, offset + end});
    i = at_end ? end : end + 5;
  }
  return out;
}

struct PolygonInstance {
  std::vector<std::vector<float>> polygons;
  std::string label;
  RegionSource source;
};

// parse_description_with_polygons_from_text_and_spans (with_box_at_start is never set).
std::vector<PolygonInstance> parse_polygons(std::string_view raw, ImageSize size, bool allow_empty_phrase) {
  const std::string text = remove_sequence_tokens(raw);
  std::vector<PolygonInstance> out;
  for (std::string_view phrase_text : find_phrases(text, polygon_token_run, !allow_empty_phrase)) {
    // re.sub(r"^<loc_\d+>", "", phrase_text, count=1)
    std::string_view strip = phrase_text;
    if (auto loc = loc_at(phrase_text, 0)) strip = phrase_text.substr(loc->end);
    if (strip.empty() && !allow_empty_phrase) continue;
    const auto match = phrase_before_tokens(strip, true);
    if (!match) continue;
    const std::string phrase = python_strip(*match);
    const auto label_at = static_cast<std::size_t>(strip.data() - text.data());

    std::vector<std::string_view> instances;
    if (phrase_text.find("<poly>") != kNpos && phrase_text.find("</poly>") != kNpos) {
      instances = poly_groups(phrase_text);
    } else {
      instances = {phrase_text};
    }
    for (std::string_view inst : instances) {
      RegionSource source{TextRange{label_at, label_at + match->size()}, {}};
      const auto groups =
          polygon_bin_groups(inst, source.locations, static_cast<std::size_t>(inst.data() - text.data()));
      if (groups.empty()) continue;
      std::vector<std::vector<float>> polygons;
      for (const auto& bins : groups) polygons.push_back(dequantize_points(bins, size));
      out.push_back({std::move(polygons), phrase, std::move(source)});
    }
  }
  return out;
}

// parse_ocr_from_text_and_spans with the default pattern (.+?)<loc_(\d+)>{8}; each kept line's
// source into `sources`.
std::vector<QuadRegion> parse_ocr(std::string_view raw, ImageSize size, double area_threshold,
                                  std::vector<RegionSource>& sources) {
  const std::string text = remove_sequence_tokens(raw);
  std::vector<QuadRegion> regions;
  const std::size_t n = text.size();
  std::size_t i = 0;
  while (i < n) {
    if (text[i] == '\n') {
      ++i;
      continue;
    }
    // Lazy .+?: the first end e > i where eight loc tokens follow, without crossing a newline.
    std::size_t e = i + 1;
    std::optional<std::pair<std::size_t, std::vector<long long>>> hit;
    for (; e <= n; ++e) {
      if (text[e - 1] == '\n') break;
      if (e < n && text[e] == '<') {
        std::vector<long long> bins;
        std::size_t p = e;
        while (bins.size() < 8) {
          auto loc = loc_at(text, p);
          if (!loc) break;
          bins.push_back(loc->value);
          p = loc->end;
        }
        if (bins.size() == 8) {
          hit.emplace(p, std::move(bins));
          break;
        }
      }
    }
    if (!hit) {
      // Every start up to the newline that stopped this one stops there too.
      if (e > n) break;
      i = e - 1;
      continue;
    }
    const std::string_view content = std::string_view(text).substr(i, e - i);
    const auto& bins = hit->second;
    const RegionSource source{TextRange{i, e}, {TextRange{e, hit->first}}};
    i = hit->first;
    std::vector<long long> quad;
    for (std::size_t k = 0; k < 8; ++k) quad.push_back(dequantize(bins[k], k % 2 == 0 ? size.width : size.height));
    if (area_threshold > 0) {
      long long twice_area = 0;
      for (std::size_t k = 0; k < 3; ++k) {
        twice_area += quad[2 * k] * quad[2 * k + 3] - quad[2 * k + 2] * quad[2 * k + 1];
      }
      const double area = 0.5 * static_cast<double>(std::llabs(twice_area));
      if (area < static_cast<double>(static_cast<long long>(size.width) * size.height) * area_threshold) continue;
    }
    QuadRegion region;
    region.label = python_strip(content);
    for (std::size_t k = 0; k < 8; ++k) region.quad[k] = static_cast<float>(quad[k]);
    regions.push_back(std::move(region));
    sources.push_back(source);
  }
  return regions;
}

// One Detection per box, each labelled with its phrase.
std::vector<Detection> boxes_answer(const std::vector<Instance>& instances, std::vector<RegionSource>& sources) {
  std::vector<Detection> boxes;
  for (const Instance& inst : instances) {
    for (std::size_t b = 0; b < inst.boxes.size(); ++b) {
      Detection d;
      d.label = inst.label;
      d.box = inst.boxes[b];
      boxes.push_back(std::move(d));
      sources.push_back({inst.label_range, {inst.box_ranges[b]}});
    }
  }
  return boxes;
}

std::vector<PolygonRegion> polygon_regions(std::vector<PolygonInstance> instances, std::vector<RegionSource>& sources) {
  std::vector<PolygonRegion> regions;
  for (auto& inst : instances) {
    sources.push_back(std::move(inst.source));
    PolygonRegion region;
    region.label = std::move(inst.label);
    region.polygons = std::move(inst.polygons);
    regions.push_back(std::move(region));
  }
  return regions;
}

}  // namespace

std::vector<std::string> PostProcessorConfig::default_banned_grounding_tokens() {
  // The list of microsoft/Florence-2's processing_florence2.py (duplicates included there).
  return {"it",       "I",         "me",         "mine",       "you",         "your",       "yours",
          "he",       "him",       "his",        "she",        "her",         "hers",       "they",
          "them",     "their",     "theirs",     "one",        "oneself",     "we",         "us",
          "our",      "ours",      "you",        "your",       "yours",       "they",       "them",
          "their",    "theirs",    "mine",       "yours",      "his",         "hers",       "its",
          "ours",     "yours",     "theirs",     "myself",     "yourself",    "himself",    "herself",
          "itself",   "ourselves", "yourselves", "themselves", "this",        "that",       "these",
          "those",    "who",       "whom",       "whose",      "which",       "what",       "who",
          "whom",     "whose",     "which",      "that",       "all",         "another",    "any",
          "anybody",  "anyone",    "anything",   "each",       "everybody",   "everyone",   "everything",
          "few",      "many",      "nobody",     "none",       "one",         "several",    "some",
          "somebody", "someone",   "something",  "each other", "one another", "myself",     "yourself",
          "himself",  "herself",   "itself",     "ourselves",  "yourselves",  "themselves", "the image",
          "image",    "images",    "the",        "a",          "an",          "a group",    "other objects",
          "lots",     "a set"};
}

int dequantize_bin(long long bin, int axis_size) { return dequantize(bin, axis_size); }

ParsedAnswer post_process_generation(std::string_view text, std::string_view task, ImageSize image_size,
                                     const PostProcessorConfig& config) {
  if (image_size.width <= 0 || image_size.height <= 0) {
    throw Error(ErrorCode::kInvalidArgument, "image size must be positive, got " + std::to_string(image_size.width) +
                                                 "x" + std::to_string(image_size.height));
  }
  ParsedAnswer parsed;
  TaskAnswer& answer = parsed.answer;
  answer.task = std::string(task);
  switch (post_process_type(task)) {
    case PostProcessType::kPureText:
      answer.shape = AnswerShape::kText;
      answer.text = python_strip(replace_all(replace_all(text, "<s>", ""), "</s>", ""));
      break;
    case PostProcessType::kOcr:
      answer.shape = AnswerShape::kQuadBoxes;
      answer.quad_regions = parse_ocr(text, image_size, config.ocr_area_threshold, parsed.sources);
      break;
    case PostProcessType::kDescriptionWithBboxes:
      answer.shape = AnswerShape::kBoxes;
      parsed.boxes = boxes_answer(parse_bboxes(text, image_size, false, nullptr), parsed.sources);
      break;
    case PostProcessType::kBboxes:
      answer.shape = AnswerShape::kBoxes;
      parsed.boxes = boxes_answer(parse_bboxes(text, image_size, true, nullptr), parsed.sources);
      break;
    case PostProcessType::kPhraseGrounding: {
      const std::unordered_set<std::string> banned(config.banned_grounding_tokens.begin(),
                                                   config.banned_grounding_tokens.end());
      answer.shape = AnswerShape::kBoxes;
      parsed.boxes = boxes_answer(parse_bboxes(text, image_size, false, &banned), parsed.sources);
      break;
    }
    case PostProcessType::kPolygons:
      answer.shape = AnswerShape::kPolygons;
      answer.polygon_regions = polygon_regions(parse_polygons(text, image_size, true), parsed.sources);
      break;
    case PostProcessType::kDescriptionWithBboxesOrPolygons:
      answer.shape = AnswerShape::kBoxesOrPolygons;
      if (text.find("<poly>") != kNpos) {
        answer.polygon_regions = polygon_regions(parse_polygons(text, image_size, false), parsed.sources);
      } else {
        parsed.boxes = boxes_answer(parse_bboxes(text, image_size, false, nullptr), parsed.sources);
      }
      break;
  }
  return parsed;
}

}  // namespace vlm::florence2
