#include "vlm/device.h"

#include <torch/cuda.h>

#include "vlm/error.h"

namespace vlm {

c10::Device parse_device(const std::string& name) {
  if (name == "cpu") return c10::Device(c10::kCPU);
  if (name.rfind("cuda", 0) != 0) {
    throw Error(ErrorCode::kInvalidArgument, "device must be cpu, cuda or cuda:N; got '" + name + "'");
  }
  int index = 0;
  if (name.size() > 4) {
    if (name[4] != ':' || name.size() == 5 || name.find_first_not_of("0123456789", 5) != std::string::npos) {
      throw Error(ErrorCode::kInvalidArgument, "device must be cpu, cuda or cuda:N; got '" + name + "'");
    }
    index = std::stoi(name.substr(5));
  }
  auto count = static_cast<int>(torch::cuda::device_count());
  if (count == 0)
    throw Error(ErrorCode::kUnavailable, "device " + name + " asked for, but no CUDA device is available");
  if (index >= count) {
    throw Error(ErrorCode::kUnavailable,
                "device " + name + " asked for, but only " + std::to_string(count) + " CUDA device(s) exist");
  }
  return c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(index));
}

void synchronize(const c10::Device& device) {
  if (device.is_cuda()) torch::cuda::synchronize(device.index());
}

}  // namespace vlm
