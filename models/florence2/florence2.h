#pragma once

#include <filesystem>
#include <memory>

#include "vlm/model.h"

// Torch-free entry point for the registry.
namespace vlm::florence2 {

// A Hugging Face folder whose config.json says model_type florence2 (either checkpoint layout).
bool is_florence2_model_folder(const std::filesystem::path& dir);
std::unique_ptr<Model> load_florence2_model(const std::filesystem::path& dir, const ModelOptions& options);

}  // namespace vlm::florence2
