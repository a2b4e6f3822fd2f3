#include "weights.h"

#include <cstring>
#include <fstream>
#include <sstream>
#include <string_view>

#include <caffe2/serialize/inline_container.h>
#include <torch/csrc/jit/serialization/unpickler.h>

#include "vlm/error.h"
#include "vlm/safetensors.h"
#include "weight_names.h"

namespace vlm::florence2 {
namespace {

using Shape = std::vector<std::int64_t>;

std::string shape_string(at::IntArrayRef shape) {
  std::ostringstream out;
  out << '[';
  for (std::size_t i = 0; i < shape.size(); ++i) out << (i ? ", " : "") << shape[i];
  out << ']';
  return out.str();
}

void add_linear(std::map<std::string, Shape>& out, const std::string& prefix, std::int64_t in, std::int64_t out_dim,
                bool bias = true) {
  out[prefix + ".weight"] = {out_dim, in};
  if (bias) out[prefix + ".bias"] = {out_dim};
}

void add_norm(std::map<std::string, Shape>& out, const std::string& prefix, std::int64_t dim) {
  out[prefix + ".weight"] = {dim};
  out[prefix + ".bias"] = {dim};
}

void add_vision_block(std::map<std::string, Shape>& out, const std::string& prefix, const char* attention,
                      std::int64_t dim, const VisionConfig& v) {
  const auto hidden = static_cast<std::int64_t>(static_cast<double>(dim) * v.mlp_ratio);
  for (const char* conv : {".conv1", ".conv2"}) {
    out[prefix + conv + ".weight"] = {dim, 1, 3, 3};
    out[prefix + conv + ".bias"] = {dim};
  }
  add_norm(out, prefix + ".norm1", dim);
  add_norm(out, prefix + ".norm2", dim);
  add_linear(out, prefix + "." + attention + ".qkv", dim, 3 * dim, v.qkv_bias);
  add_linear(out, prefix + "." + attention + ".proj", dim, dim);
  add_linear(out, prefix + ".ffn.fc1", dim, hidden);
  add_linear(out, prefix + ".ffn.fc2", hidden, dim);
}

void add_attention(std::map<std::string, Shape>& out, const std::string& prefix, std::int64_t dim) {
  for (const char* proj : {".q_proj", ".k_proj", ".v_proj", ".out_proj"}) add_linear(out, prefix + proj, dim, dim);
}

// Entry the rewrite below adds to the unpickled dict; skipped when reading tensors.
constexpr std::string_view kMemoEntry = "__vlm_ordered_dict_class";

// torch.save's zip archive: data.pkl plus one record per storage. Hugging Face writes plain dicts,
// but a state dict saved as collections.OrderedDict unpickles to None in libtorch (its unpickler
// only expects OrderedDict as a tensor's empty backward hooks). So the leading `OrderedDict()` call
// is rewritten into an empty dict that holds the class in one entry: the class still lands in memo
// slot 0, where every tensor's hooks argument fetches it.
c10::IValue unpickle_state_dict(const std::filesystem::path& bin) {
  caffe2::serialize::PyTorchStreamReader reader(bin.string());
  auto [pickle_data, pickle_size] = reader.getRecord("data.pkl");
  std::string pickle(static_cast<const char*>(pickle_data.get()), pickle_size);
  using namespace std::string_view_literals;
  static constexpr auto kOrderedDict = "ccollections\nOrderedDict\nq\x00)R"sv;
  const auto at = pickle.find(kOrderedDict);
  if (at != std::string::npos && at <= 2) {
    std::string replacement = "}X";
    const auto length = static_cast<std::uint32_t>(kMemoEntry.size());
    for (int i = 0; i < 4; ++i) replacement += static_cast<char>((length >> (8 * i)) & 0xFF);
    replacement += kMemoEntry;
    replacement += "(ccollections\nOrderedDict\nq\x00ts"sv;
    pickle.replace(at, kOrderedDict.size(), replacement);
  }
  std::size_t offset = 0;
  auto read = [&](char* out, std::size_t n) {
    n = std::min(n, pickle.size() - offset);
    std::memcpy(out, pickle.data() + offset, n);
    offset += n;
    return n;
  };
  auto read_record = [&](const std::string& name) { return std::get<0>(reader.getRecord("data/" + name)); };
  torch::jit::Unpickler unpickler(read, nullptr, nullptr, read_record, c10::Device(c10::kCPU));
  return unpickler.parse_ivalue();
}

struct RawTensor {
  std::string source_name;
  at::Tensor tensor;
};

// Reads every tensor of the checkpoint file(s) under their stored names.
std::pair<std::map<std::string, RawTensor>, std::filesystem::path> read_checkpoint(const std::filesystem::path& dir) {
  std::map<std::string, RawTensor> tensors;
  const auto single = dir / "model.safetensors";
  const auto index = dir / "model.safetensors.index.json";
  if (std::filesystem::exists(single) || std::filesystem::exists(index)) {
    const SafetensorsCheckpoint checkpoint(std::filesystem::exists(index) ? index : single);
    for (const auto& name : checkpoint.names()) tensors[name] = {name, checkpoint.tensor(name)};
    return {std::move(tensors), std::filesystem::exists(index) ? index : single};
  }
  const auto bin = dir / "pytorch_model.bin";
  if (!std::filesystem::exists(bin)) {
    throw Error(ErrorCode::kNotFound,
                "no model.safetensors, model.safetensors.index.json or pytorch_model.bin in " + dir.string());
  }
  c10::IValue value;
  try {
    value = unpickle_state_dict(bin);
  } catch (const c10::Error& e) {
    throw Error(ErrorCode::kBadCheckpoint, bin.string() +
                                               " is not a readable torch.save archive (truncated or legacy format?): " +
                                               std::string(e.what_without_backtrace()).substr(0, 300));
  }
  if (!value.isGenericDict()) {
    throw Error(ErrorCode::kBadCheckpoint, bin.string() + " does not hold a state dict (got " + value.tagKind() + ")");
  }
  for (const auto& item : value.toGenericDict()) {
    if (item.key().isString() && item.key().toStringRef() == kMemoEntry) continue;
    if (!item.key().isString() || !item.value().isTensor()) {
      throw Error(ErrorCode::kBadCheckpoint, bin.string() + " holds a non-tensor entry " +
                                                 (item.key().isString() ? item.key().toStringRef() : "?"));
    }
    const auto& name = item.key().toStringRef();
    tensors[name] = {name, item.value().toTensor()};
  }
  return {std::move(tensors), bin};
}

}  // namespace

const at::Tensor& Weights::get(const std::string& name) const {
  auto it = tensors_.find(name);
  if (it == tensors_.end()) throw Error(ErrorCode::kInternal, "parameter " + name + " was not loaded");
  return it->second;
}

std::map<std::string, Shape> expected_parameters(const Config& config) {
  std::map<std::string, Shape> out;
  const auto& v = config.vision;
  for (int s = 0; s < v.num_stages(); ++s) {
    const std::int64_t in = s == 0 ? v.in_channels : v.embed_dim[s - 1];
    const std::int64_t dim = v.embed_dim[s];
    const auto prefix = "model.vision_tower.convs." + std::to_string(s);
    out[prefix + ".conv.weight"] = {dim, in, v.patch_size[s], v.patch_size[s]};
    out[prefix + ".conv.bias"] = {dim};
    add_norm(out, prefix + ".norm", v.patch_prenorm[s] ? in : dim);
    for (int b = 0; b < v.depths[s]; ++b) {
      const auto block = "model.vision_tower.blocks." + std::to_string(s) + "." + std::to_string(b);
      add_vision_block(out, block + ".spatial_block", "window_attn", dim, v);
      add_vision_block(out, block + ".channel_block", "channel_attn", dim, v);
    }
  }
  const std::int64_t last = v.embed_dim.back();
  const std::string projector = "model.multi_modal_projector";
  out[projector + ".image_projection.weight"] = {v.projection_dim, last};
  add_norm(out, projector + ".image_proj_norm", v.projection_dim);
  out[projector + ".image_position_embed.row_embeddings.weight"] = {v.max_position_embeddings, last / 2};
  out[projector + ".image_position_embed.column_embeddings.weight"] = {v.max_position_embeddings, last - last / 2};
  out[projector + ".visual_temporal_embed.pos_idx_to_embed"] = {v.max_temporal_embeddings, last};

  const auto& t = config.text;
  const std::int64_t d = t.d_model;
  out["model.language_model.shared.weight"] = {t.vocab_size, d};
  for (const char* side : {"encoder", "decoder"}) {
    const std::string prefix = std::string("model.language_model.") + side;
    const bool decoder = std::string(side) == "decoder";
    out[prefix + ".embed_positions.weight"] = {t.max_position_embeddings + 2, d};
    add_norm(out, prefix + ".layernorm_embedding", d);
    const int layers = decoder ? t.decoder_layers : t.encoder_layers;
    const std::int64_t ffn = decoder ? t.decoder_ffn_dim : t.encoder_ffn_dim;
    for (int i = 0; i < layers; ++i) {
      const auto layer = prefix + ".layers." + std::to_string(i);
      add_attention(out, layer + ".self_attn", d);
      add_norm(out, layer + ".self_attn_layer_norm", d);
      if (decoder) {
        add_attention(out, layer + ".encoder_attn", d);
        add_norm(out, layer + ".encoder_attn_layer_norm", d);
      }
      add_linear(out, layer + ".fc1", d, ffn);
      add_linear(out, layer + ".fc2", ffn, d);
      add_norm(out, layer + ".final_layer_norm", d);
    }
  }
  return out;
}

LoadedWeights load_weights(const std::filesystem::path& dir, const Config& config, at::ScalarType dtype,
                           const at::Device& device) {
  if (config.vision.projection_dim != config.text.d_model) {
    throw Error(ErrorCode::kBadCheckpoint, "vision projection_dim " + std::to_string(config.vision.projection_dim) +
                                               " differs from text d_model " + std::to_string(config.text.d_model));
  }
  auto [raw, file] = read_checkpoint(dir);
  const auto expected = expected_parameters(config);
  const bool original = !raw.empty() && std::none_of(raw.begin(), raw.end(), [](const auto& item) {
    return item.first.rfind("model.", 0) == 0;
  });

  std::map<std::string, at::Tensor> found;
  for (auto& [stored, entry] : raw) {
    std::string name = stored;
    bool transpose = false;
    if (original) {
      if (is_zero_logits_bias(stored)) {
        // transformers drops the bias when converting; it must add nothing.
        if (entry.tensor.is_floating_point() && entry.tensor.abs().max().item<double>() != 0.0) {
          throw Error(ErrorCode::kUnsupportedModel,
                      "tensor " + stored + " in " + file.string() + " is not zero; transformers ignores it");
        }
        continue;
      }
      const auto mapped = native_name_for_original(stored);
      if (!mapped) continue;
      name = mapped->name;
      transpose = mapped->transpose;
    } else if (is_tied_to_shared(stored)) {
      continue;
    }
    const auto want = expected.find(name);
    if (want == expected.end()) {
      throw Error(ErrorCode::kBadCheckpoint, "unexpected tensor " + stored + " in " + file.string() +
                                                 " (not a parameter of this Florence-2 config)");
    }
    at::Tensor tensor = entry.tensor;
    if (!tensor.is_floating_point()) {
      throw Error(ErrorCode::kBadCheckpoint, "tensor " + stored + " has dtype " +
                                                 std::string(c10::toString(tensor.scalar_type())) +
                                                 ", expected a floating-point type");
    }
    if (transpose) {
      if (tensor.dim() != 2) {
        throw Error(ErrorCode::kBadCheckpoint,
                    "tensor " + stored + " has shape " + shape_string(tensor.sizes()) + ", expected 2 dimensions");
      }
      tensor = tensor.t();
    }
    if (tensor.sizes() != at::IntArrayRef(want->second)) {
      throw Error(ErrorCode::kBadCheckpoint, "tensor " + stored + " has shape " + shape_string(tensor.sizes()) +
                                                 ", expected " + shape_string(want->second));
    }
    found[name] = tensor.to(device, dtype).contiguous();
  }
  std::vector<std::string> missing;
  for (const auto& [name, shape] : expected) {
    if (!found.count(name)) missing.push_back(name);
  }
  if (!missing.empty()) {
    std::string list;
    for (std::size_t i = 0; i < missing.size() && i < 5; ++i) list += (i ? ", " : "") + missing[i];
    if (missing.size() > 5) list += ", ...";
    throw Error(ErrorCode::kBadCheckpoint, "missing tensor" + std::string(missing.size() > 1 ? "s " : " ") + list +
                                               " (" + std::to_string(missing.size()) + " missing, native names) in " +
                                               file.string());
  }
  return {Weights(std::move(found)), file, original ? CheckpointLayout::kOriginal : CheckpointLayout::kNative};
}

}  // namespace vlm::florence2
