// One config-table row (d128 m16 n32 w1 decode, fp16) per file so instantiations compile in parallel.
#include "flash_attention/flash_fwd_kernel.cuh"

namespace vlm::flash {
template void run_flash_config<5, __half>(const FlashFwdParams&, int, cudaStream_t);
}  // namespace vlm::flash
