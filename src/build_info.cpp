#include "vlm/build_info.h"

#include <ATen/Context.h>
#include <torch/version.h>

#include "vlm/ops/attention.h"

#ifndef VLM_VERSION
#define VLM_VERSION "0.0.0"
#endif

namespace vlm {

nlohmann::json build_info() {
  nlohmann::json cuda = {{"compiled", false}};
#ifdef VLM_WITH_CUDA
  cuda["compiled"] = true;
#endif
  const auto& hooks = at::detail::getCUDAHooks();
  cuda["devices"] = hooks.getNumGPUs();
  // A CPU-only build (VLM_WITH_CUDA=OFF) links no libtorch_cuda, and the default hooks throw here.
  if (hooks.hasCUDART() && hooks.versionCUDART() > 0) {
    const int v = hooks.versionCUDART();
    cuda["runtime"] = std::to_string(v / 1000) + "." + std::to_string((v % 1000) / 10);
  }
  return {{"version", VLM_VERSION},
          {"libtorch", TORCH_VERSION},
          {"cuda", cuda},
          {"attention_backends", available_attention_backends()}};
}

}  // namespace vlm
