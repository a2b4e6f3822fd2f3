#include "task_prompts.h"

#include <array>

#include "python_str.h"
#include "vlm/error.h"

namespace vlm::florence2 {
namespace {

using P = PostProcessType;

// Request text in an error message: enough to recognise it, never a whole megabyte of it.
std::string quoted(std::string_view text) {
  constexpr std::size_t kShown = 64;
  if (text.size() <= kShown) return std::string(text);
  std::size_t cut = kShown;
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0U) == 0x80U) --cut;  // not inside a UTF-8 sequence
  return std::string(text.substr(0, cut)) + "...";
}

// Same order as transformers' dicts: the first matching token wins there too.
constexpr std::array<TaskInfo, 15> kTasks = {{
    {"<OCR>", "What is the text in the image?", false, P::kPureText},
    {"<OCR_WITH_REGION>", "What is the text in the image, with regions?", false, P::kOcr},
    {"<CAPTION>", "What does the image describe?", false, P::kPureText},
    {"<DETAILED_CAPTION>", "Describe in detail what is shown in the image.", false, P::kPureText},
    {"<MORE_DETAILED_CAPTION>", "Describe with a paragraph what is shown in the image.", false, P::kPureText},
    {"<OD>", "Locate the objects with category name in the image.", false, P::kDescriptionWithBboxes},
    {"<DENSE_REGION_CAPTION>", "Locate the objects in the image, with their descriptions.", false,
     P::kDescriptionWithBboxes},
    {"<REGION_PROPOSAL>", "Locate the region proposals in the image.", false, P::kBboxes},
    {"<CAPTION_TO_PHRASE_GROUNDING>", "Locate the phrases in the caption: {input}", true, P::kPhraseGrounding},
    {"<REFERRING_EXPRESSION_SEGMENTATION>", "Locate {input} in the image with mask", true, P::kPolygons},
    {"<REGION_TO_SEGMENTATION>", "What is the polygon mask of region {input}", true, P::kPolygons},
    {"<OPEN_VOCABULARY_DETECTION>", "Locate {input} in the image.", true, P::kDescriptionWithBboxesOrPolygons},
    {"<REGION_TO_CATEGORY>", "What is the region {input}?", true, P::kPureText},
    {"<REGION_TO_DESCRIPTION>", "What does the region {input} describe?", true, P::kPureText},
    {"<REGION_TO_OCR>", "What text is in the region {input}?", true, P::kPureText},
}};

}  // namespace

std::vector<std::string> processor_added_tokens() {
  std::vector<std::string> tokens = {"<od>", "</od>", "<ocr>", "</ocr>"};
  for (int i = 0; i < 1000; ++i) tokens.push_back("<loc_" + std::to_string(i) + ">");
  for (const char* t : {"<cap>",
                        "</cap>",
                        "<ncap>",
                        "</ncap>",
                        "<dcap>",
                        "</dcap>",
                        "<grounding>",
                        "</grounding>",
                        "<seg>",
                        "</seg>",
                        "<sep>",
                        "<region_cap>",
                        "</region_cap>",
                        "<region_to_desciption>",
                        "</region_to_desciption>",
                        "<proposal>",
                        "</proposal>",
                        "<poly>",
                        "</poly>",
                        "<and>"}) {
    tokens.emplace_back(t);
  }
  return tokens;
}

std::span<const TaskInfo> tasks() { return kTasks; }

const TaskInfo* find_task(std::string_view token) {
  for (const TaskInfo& t : kTasks) {
    if (t.token == token) return &t;
  }
  return nullptr;
}

std::string construct_prompt(std::string_view prompt) {
  std::string result(prompt);
  for (const TaskInfo& t : kTasks) {
    if (t.takes_input || result.find(t.token) == std::string::npos) continue;
    if (result != t.token) {
      throw Error(
          ErrorCode::kInvalidArgument,
          "task " + std::string(t.token) + " takes no text and must be the whole prompt, got '" + quoted(result) + "'");
    }
    result = std::string(t.prompt);
    break;
  }
  for (const TaskInfo& t : kTasks) {
    if (!t.takes_input || result.find(t.token) == std::string::npos) continue;
    const std::string input = python_strip(replace_all(result, t.token, ""));
    result = replace_all(t.prompt, "{input}", input);
    break;
  }
  return result;
}

std::string task_prompt(std::string_view task, std::string_view text) {
  std::string joined(task);
  joined.append(text);
  return construct_prompt(joined);
}

std::string request_prompt(std::string_view task, std::string_view text) {
  const TaskInfo* info = find_task(task);
  if (info == nullptr) {
    std::string known;
    for (const TaskInfo& t : kTasks) known += (known.empty() ? "" : ", ") + std::string(t.token);
    throw Error(ErrorCode::kInvalidArgument, "unknown Florence-2 task '" + quoted(task) + "' (known: " + known + ")");
  }
  if (info->takes_input && python_strip(text).empty()) {
    throw Error(ErrorCode::kInvalidArgument, "task " + std::string(task) + " needs text (its prompt is \"" +
                                                 std::string(info->prompt) + "\"), got none");
  }
  if (!info->takes_input && !text.empty()) {
    throw Error(ErrorCode::kInvalidArgument,
                "task " + std::string(task) + " takes no text, got '" + quoted(text) + "'");
  }
  return task_prompt(task, text);
}

PostProcessType post_process_type(std::string_view task) {
  const TaskInfo* t = find_task(task);
  return t == nullptr ? PostProcessType::kPureText : t->post_process;
}

std::string_view post_process_type_name(PostProcessType type) {
  switch (type) {
    case P::kPureText: return "pure_text";
    case P::kOcr: return "ocr";
    case P::kDescriptionWithBboxes: return "description_with_bboxes";
    case P::kBboxes: return "bboxes";
    case P::kPhraseGrounding: return "phrase_grounding";
    case P::kPolygons: return "polygons";
    case P::kDescriptionWithBboxesOrPolygons: return "description_with_bboxes_or_polygons";
  }
  return "pure_text";
}

}  // namespace vlm::florence2
