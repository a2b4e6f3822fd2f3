// Compiled only by ctest torch_fence, with exactly what server/ and cli/ link: it must not compile,
// because no torch header is reachable from there (see vlm_torch in src/CMakeLists.txt).
#include "vlm/model.h"  // a torch-free public header, which must be found

#include <ATen/core/Tensor.h>
