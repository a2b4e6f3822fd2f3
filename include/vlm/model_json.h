#pragma once

#include <span>

#include <nlohmann/json.hpp>

#include "vlm/model.h"

// The JSON edge of model results: the one place results, answers and model descriptions become the
// documents /detect, /think, /v1 and `vlmserve detect` write.
namespace vlm {

nlohmann::json to_json(const Detection& detection);
nlohmann::json to_json(const Timings& timings);
// {width, height, detections, [task, result, generated_ids, scores], timings}; callers add
// path/model/request_id.
nlohmann::json to_json(const ImageResult& result);
nlohmann::json to_json(const ModelInfo& info);
// A task's answer in the shape transformers' post_process_generation gives it (coordinates as
// integers, as it returns them); `boxes` are the answer's boxes, in order.
nlohmann::json task_answer_json(const TaskAnswer& answer, std::span<const Detection> boxes);

}  // namespace vlm
