#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include <ATen/ATen.h>

#include "config.h"

namespace vlm::florence2 {

// Every parameter the model reads, by transformers-native name, with its shape for `config`.
std::map<std::string, std::vector<std::int64_t>> expected_parameters(const Config& config);

// The model's parameters by transformers-native name, on one device in one dtype.
class Weights {
 public:
  Weights() = default;
  explicit Weights(std::map<std::string, at::Tensor> tensors) : tensors_(std::move(tensors)) {}
  const at::Tensor& get(const std::string& name) const;
  const std::map<std::string, at::Tensor>& all() const { return tensors_; }

 private:
  std::map<std::string, at::Tensor> tensors_;
};

// Which file the weights came from, for logs and ModelInfo.
struct LoadedWeights {
  Weights weights;
  std::filesystem::path file;
  CheckpointLayout layout = CheckpointLayout::kNative;
};

// Loads model.safetensors (single or sharded via model.safetensors.index.json) or, when there is no
// safetensors file, pytorch_model.bin (torch.save zip format, read by libtorch's unpickler).
// Either name layout is accepted; names are mapped through weight_names.h. A missing, extra,
// mis-shaped or non-floating tensor is a kBadCheckpoint error naming it.
LoadedWeights load_weights(const std::filesystem::path& dir, const Config& config, at::ScalarType dtype,
                           const at::Device& device);

}  // namespace vlm::florence2
