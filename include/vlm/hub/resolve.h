#pragma once

#include <filesystem>
#include <string>

#include "vlm/hub/hub_options.h"

namespace vlm::hub {

// `--model NAME=SPEC` hook: "hf://org/repo[@rev]" becomes the local snapshot folder (pulled when
// needed), or the export file itself for a YOLO repository holding one *.torchscript; anything
// else is returned unchanged as a filesystem path.
std::filesystem::path resolve_model_path(const std::string& spec, const HubOptions& options);

}  // namespace vlm::hub
