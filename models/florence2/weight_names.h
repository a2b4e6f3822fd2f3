#pragma once

#include <optional>
#include <string>

namespace vlm::florence2 {

// How a Microsoft remote-code parameter becomes a transformers-native one.
struct NativeName {
  std::string name;
  bool transpose = false;  // image_projection is stored [in, out] there, as a Linear weight here
};

// The one table between Microsoft's original parameter names and transformers-native names
// (the renames of transformers' convert_florence2_original_pytorch_to_hf.py).
// Returns nullopt for names that have no native counterpart and are not needed: tied copies of the
// shared embedding, the unused final DaViT norm, and BART's final_logits_bias (checked to be zero).
// Throws kBadCheckpoint for a name the table does not know.
std::optional<NativeName> native_name_for_original(const std::string& original);

// Original-layout names that map to nothing but must satisfy a check when present.
bool is_zero_logits_bias(const std::string& original);

// Native-layout names that transformers ties to model.language_model.shared.weight (they may be
// saved or not; either way the shared table is used).
bool is_tied_to_shared(const std::string& native);

}  // namespace vlm::florence2
