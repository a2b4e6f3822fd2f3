#include "vlm/runtime.h"

#include <ATen/Context.h>
#include <ATen/Parallel.h>

#include "vlm/attention.h"

namespace vlm {

void set_cpu_threads(int threads) { at::set_num_threads(threads); }

void require_exact_float32() {
  at::globalContext().setAllowTF32CuDNN(false);
  at::globalContext().setAllowTF32CuBLAS(false);
}

void set_default_attention_backend_by_name(std::string_view name) {
  set_default_attention_backend(parse_attention_backend(name));
}

}  // namespace vlm
