// The single-pass decode kernel for one (dtype, head dim) per file, 1-4 query rows.
#include "flash_attention/flash_decode_kernel.cuh"

namespace vlm::flash {
template void run_flash_decode_dim<__nv_bfloat16, 64>(const FlashFwdParams&, int, cudaStream_t);
}  // namespace vlm::flash
