// One config-table row (d64 m128 n128 w4, bf16) per file so instantiations compile in parallel.
#include "flash_attention/flash_fwd_kernel.cuh"

namespace vlm::flash {
template void run_flash_config<12, __nv_bfloat16>(const FlashFwdParams&, int, cudaStream_t);
}  // namespace vlm::flash
