#include "vlm/build_info.h"

#include <ATen/Context.h>
#include <torch/version.h>

#include "vlm/attention.h"

#ifndef VLM_VERSION
#define VLM_VERSION "0.0.0"
#endif

namespace vlm {

nlohmann::json build_info() {
  nlohmann::json cuda = {{"compiled", false}};
#ifdef VLM_WITH_CUDA
  cuda["compiled"] = true;
#endif
  cuda["devices"] = at::detail::getCUDAHooks().getNumGPUs();
  if (at::detail::getCUDAHooks().versionCUDART() > 0) {
    int v = at::detail::getCUDAHooks().versionCUDART();
    cuda["runtime"] = std::to_string(v / 1000) + "." + std::to_string((v % 1000) / 10);
  }
  return {{"version", VLM_VERSION},
          {"libtorch", TORCH_VERSION},
          {"cuda", cuda},
          {"attention_backends", available_attention_backends()}};
}

}  // namespace vlm
