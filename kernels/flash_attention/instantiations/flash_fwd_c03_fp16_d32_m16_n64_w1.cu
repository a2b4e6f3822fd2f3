// One config-table row (d32 m16 n64 w1 decode, fp16) per file so instantiations compile in parallel.
#include "flash_attention/flash_fwd_kernel.cuh"

namespace vlm::flash {
template void run_flash_config<3, __half>(const FlashFwdParams&, int, cudaStream_t);
}  // namespace vlm::flash
