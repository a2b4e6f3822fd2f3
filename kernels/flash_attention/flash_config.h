#pragma once

// The one table of kernel configurations. Each row is compiled as its own small .cu per dtype
// (instantiations/), so they build in parallel; rows marked kTuning are built only with
// -DVLM_FLASH_TUNING_CONFIGS=ON (the GPU benchmark build) to compare alternatives without
// slowing the 2-core CI build. The launcher (flash_launch.cu) picks a row per shape.

namespace vlm::flash {

enum class ConfigRole { kPrefill, kDecode, kTuning };

struct FlashConfig {
  int head_dim;
  int block_m;  // query rows per block = 16 * m_tiles_per_warp * warps
  int block_n;  // keys per pipeline stage
  int warps;
  int min_blocks;  // blocks per SM the register allocation must allow (__launch_bounds__)
  bool q_in_regs;  // keep Q fragments in registers (else re-read them from shared memory per key tile)
  ConfigRole role;
  const char* name;
};

// Why these tiles (sm_80 code; register and spill counts from `cmake --build . --target
// flash_attention_resources`, timings in notes/flash_attention.md):
// - 128 query rows per block halve the K/V re-reads from L2 against 64 rows; at seq 4096 the m64
//   tiles move 34 GB through L2 per B16 H16 call, close to its bandwidth.
// - d128 m128 n64 w8 keeps Q in shared memory (re-read per key tile): with Q fragments in registers
//   the 16x128 accumulator, 16x64 scores and 32 Q registers do not fit under 255 without spills.
// - d32 m48 n48 w3: DaViT windows are 12x12 = 144 tokens = 3 x 48, so no row or key is wasted.
// - decode rows (m16, one warp): 1-16 query rows are memory bound; small blocks let the split-KV
//   launch spread a single request's keys over every SM. d128 uses n32 so a block needs 36 KiB of
//   shared memory, not 68, and more blocks share an SM.
// Configs with more than 16 rows per warp (m_tiles 2) re-read Q from shared memory per key tile.
inline constexpr FlashConfig kFlashConfigs[] = {
    {32, 48, 48, 3, 4, true, ConfigRole::kPrefill, "d32 m48 n48 w3"},
    {64, 128, 64, 8, 1, true, ConfigRole::kPrefill, "d64 m128 n64 w8"},
    {128, 128, 64, 8, 1, false, ConfigRole::kPrefill, "d128 m128 n64 w8"},
    {32, 16, 64, 1, 8, true, ConfigRole::kDecode, "d32 m16 n64 w1 decode"},
    {64, 16, 64, 1, 8, true, ConfigRole::kDecode, "d64 m16 n64 w1 decode"},
    {128, 16, 32, 1, 8, true, ConfigRole::kDecode, "d128 m16 n32 w1 decode"},
    {32, 64, 64, 4, 3, true, ConfigRole::kTuning, "d32 m64 n64 w4"},
    {64, 128, 64, 4, 2, false, ConfigRole::kTuning, "d64 m128 n64 w4"},
    {64, 64, 64, 4, 3, true, ConfigRole::kTuning, "d64 m64 n64 w4"},
    {128, 64, 64, 4, 2, true, ConfigRole::kTuning, "d128 m64 n64 w4"},
};
inline constexpr int kNumFlashConfigs = sizeof(kFlashConfigs) / sizeof(kFlashConfigs[0]);

}  // namespace vlm::flash
