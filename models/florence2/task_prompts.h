#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

// Florence-2 task tokens and the prompts the model was trained on, as transformers'
// Florence2Processor builds them (processing_florence2.py, transformers 5.23). Torch-free.
//
//   construct_prompt("<OD>")                                  -> "Locate the objects with category name in the image."
//   construct_prompt("<CAPTION_TO_PHRASE_GROUNDING>a red car") -> "Locate the phrases in the caption: a red car"
//   task_prompt("<REGION_TO_CATEGORY>", "<loc_1><loc_2><loc_3><loc_4>")
//
// The model input is then image tokens + <s> + prompt + </s> (transformers-native layout) or
// <s> + prompt + </s> (remote-code layout); that assembly belongs to the model's processor.
namespace vlm::florence2 {

// How post_process_generation parses a task's answer (transformers' tasks_answer_post_processing_type).
enum class PostProcessType {
  kPureText,
  kOcr,
  kDescriptionWithBboxes,
  kBboxes,
  kPhraseGrounding,
  kPolygons,
  kDescriptionWithBboxesOrPolygons,
};

struct TaskInfo {
  std::string_view token;   // "<OD>"
  std::string_view prompt;  // "Locate {input} in the image." for tasks with input
  bool takes_input;         // the prompt has an {input} slot
  PostProcessType post_process;
};

// Every task transformers knows, in its table order (tasks without input first).
std::span<const TaskInfo> tasks();
// nullptr for an unknown token.
const TaskInfo* find_task(std::string_view token);

// transformers' Florence2Processor._construct_prompts for one prompt: a task token without input
// must be the whole prompt (vlm::Error kInvalidArgument otherwise) and becomes its prompt; a task
// token with input is removed wherever it occurs, the rest is stripped and put into {input}. Text
// without a task token comes back unchanged.
std::string construct_prompt(std::string_view prompt);
// construct_prompt(task + text), the way callers pass text="<TASK>" + input to the processor.
std::string task_prompt(std::string_view task, std::string_view text = {});

// The prompt for a request's task and text, held to stricter rules than task_prompt: the task
// must be one of tasks(); a task with an {input} slot needs text that is not blank (transformers
// would run it on an empty input, "Locate  in the image.", and answer a question nobody asked);
// a task without one takes no text (transformers raises there too). Throws vlm::Error
// kInvalidArgument saying which rule the request broke.
std::string request_prompt(std::string_view task, std::string_view text);

// The parse type post_process_generation uses for a task; unknown tasks are pure text.
PostProcessType post_process_type(std::string_view task);
std::string_view post_process_type_name(PostProcessType type);  // "description_with_bboxes", ...

// The 1,024 tokens Microsoft's remote-code processor registers at runtime (<od>, </od>, <ocr>,
// </ocr>, <loc_0>..<loc_999>, <cap>, ..., <and>), in registration order: passed to
// Tokenizer::add_special_tokens they take ids 50265..51288 on BART's 50,265-token vocabulary, and
// they are no-ops for tokenizer.json files that already carry them.
std::vector<std::string> processor_added_tokens();

}  // namespace vlm::florence2
