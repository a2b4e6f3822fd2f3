#include "vlm/device_image.h"

#include <c10/core/impl/VirtualGuardImpl.h>

namespace vlm {

void use_on_stream(const DeviceImage& image, const c10::Stream& stream) {
  if (image.ready) image.ready->block(stream);
  c10::impl::VirtualGuardImpl(stream.device_type()).recordDataPtrOnStream(image.rgb.storage().data_ptr(), stream);
}

}  // namespace vlm
