#include "weight_names.h"

#include <array>
#include <string_view>
#include <vector>

#include "vlm/error.h"

namespace vlm::florence2 {
namespace {

// `*` matches one dot-separated segment; the segments it matched fill the `*`s of the native
// pattern in order. Rows are tried top to bottom.
struct Rule {
  std::string_view original;
  std::string_view native;  // empty: known, not needed
  bool transpose = false;
};

constexpr std::array kRules = {
    Rule{"vision_tower.convs.*.proj.*", "model.vision_tower.convs.*.conv.*"},
    Rule{"vision_tower.convs.*.norm.*", "model.vision_tower.convs.*.norm.*"},
    Rule{"vision_tower.blocks.*.*.spatial_block.conv1.fn.dw.*", "model.vision_tower.blocks.*.*.spatial_block.conv1.*"},
    Rule{"vision_tower.blocks.*.*.spatial_block.window_attn.norm.*",
         "model.vision_tower.blocks.*.*.spatial_block.norm1.*"},
    Rule{"vision_tower.blocks.*.*.spatial_block.window_attn.fn.*.*",
         "model.vision_tower.blocks.*.*.spatial_block.window_attn.*.*"},
    Rule{"vision_tower.blocks.*.*.spatial_block.conv2.fn.dw.*", "model.vision_tower.blocks.*.*.spatial_block.conv2.*"},
    Rule{"vision_tower.blocks.*.*.spatial_block.ffn.norm.*", "model.vision_tower.blocks.*.*.spatial_block.norm2.*"},
    Rule{"vision_tower.blocks.*.*.spatial_block.ffn.fn.net.*.*", "model.vision_tower.blocks.*.*.spatial_block.ffn.*.*"},
    Rule{"vision_tower.blocks.*.*.channel_block.conv1.fn.dw.*", "model.vision_tower.blocks.*.*.channel_block.conv1.*"},
    Rule{"vision_tower.blocks.*.*.channel_block.channel_attn.norm.*",
         "model.vision_tower.blocks.*.*.channel_block.norm1.*"},
    Rule{"vision_tower.blocks.*.*.channel_block.channel_attn.fn.*.*",
         "model.vision_tower.blocks.*.*.channel_block.channel_attn.*.*"},
    Rule{"vision_tower.blocks.*.*.channel_block.conv2.fn.dw.*", "model.vision_tower.blocks.*.*.channel_block.conv2.*"},
    Rule{"vision_tower.blocks.*.*.channel_block.ffn.norm.*", "model.vision_tower.blocks.*.*.channel_block.norm2.*"},
    Rule{"vision_tower.blocks.*.*.channel_block.ffn.fn.net.*.*", "model.vision_tower.blocks.*.*.channel_block.ffn.*.*"},
    Rule{"vision_tower.norms.*", ""},
    Rule{"image_projection", "model.multi_modal_projector.image_projection.weight", true},
    Rule{"image_proj_norm.*", "model.multi_modal_projector.image_proj_norm.*"},
    Rule{"image_pos_embed.*.*", "model.multi_modal_projector.image_position_embed.*.*"},
    Rule{"visual_temporal_embed.pos_idx_to_embed",
         "model.multi_modal_projector.visual_temporal_embed.pos_idx_to_embed"},
    Rule{"language_model.model.encoder.embed_tokens.weight", ""},
    Rule{"language_model.model.decoder.embed_tokens.weight", ""},
    Rule{"language_model.lm_head.weight", ""},
    Rule{"language_model.final_logits_bias", ""},
    Rule{"language_model.model.shared.weight", "model.language_model.shared.weight"},
    Rule{"language_model.model.*.*.*", "model.language_model.*.*.*"},
    Rule{"language_model.model.*.layers.*.*.*", "model.language_model.*.layers.*.*.*"},
    Rule{"language_model.model.*.layers.*.*.*.*", "model.language_model.*.layers.*.*.*.*"},
};

std::vector<std::string_view> split(std::string_view text) {
  std::vector<std::string_view> parts;
  std::size_t start = 0;
  while (true) {
    const auto dot = text.find('.', start);
    parts.push_back(text.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start));
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return parts;
}

std::optional<std::vector<std::string_view>> match(std::string_view pattern, std::string_view name) {
  const auto p = split(pattern);
  const auto n = split(name);
  if (p.size() != n.size()) return std::nullopt;
  std::vector<std::string_view> captures;
  for (std::size_t i = 0; i < p.size(); ++i) {
    if (p[i] == "*") {
      captures.push_back(n[i]);
    } else if (p[i] != n[i]) {
      return std::nullopt;
    }
  }
  return captures;
}

std::string fill(std::string_view pattern, const std::vector<std::string_view>& captures) {
  std::string out;
  std::size_t next = 0;
  for (const char c : pattern) {
    if (c == '*') {
      out += captures.at(next++);
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace

std::optional<NativeName> native_name_for_original(const std::string& original) {
  for (const auto& rule : kRules) {
    if (auto captures = match(rule.original, original)) {
      if (rule.native.empty()) return std::nullopt;
      return NativeName{fill(rule.native, *captures), rule.transpose};
    }
  }
  throw Error(ErrorCode::kBadCheckpoint,
              "unexpected tensor " + original + " in an original-layout (Microsoft) Florence-2 checkpoint");
}

bool is_zero_logits_bias(const std::string& original) { return original == "language_model.final_logits_bias"; }

bool is_tied_to_shared(const std::string& native) {
  return native == "lm_head.weight" || native == "model.language_model.encoder.embed_tokens.weight" ||
         native == "model.language_model.decoder.embed_tokens.weight";
}

}  // namespace vlm::florence2
