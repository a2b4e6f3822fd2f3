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

// Why these tiles (sm_80 code; registers/spills from the flash_attention_resources target, timings
// on an H200 in docs/kernels.md; every shipped row reports 0 spill bytes):
// - d128 m64 n64 w4: Q fragments stay in registers (251 registers, two 80 KiB blocks per SM).
//   Beat m128 n64 w8 (Q re-read from shared memory, 220 registers, one block per SM): 320 vs 296
//   TFLOP/s at B16 H16 S4096.
// - d64 m128 n64 w4: 32 query rows per warp halve the K/V shared-memory reads per MMA; 239
//   registers, two blocks per SM. 199 vs 155 TFLOP/s (m128 w8) at Florence-2's B8 S577.
// - d32 m48 n48 w3: DaViT windows are 12x12 = 144 tokens = 3 x 48, so no row or key is wasted
//   (120 vs 82 TFLOP/s for m64 n64 w4).
// - decode rows (m16, one warp): 1-16 query rows are memory bound; small blocks let the split-KV
//   launch spread a single request's keys over every SM. d128 uses n32 so a block needs 36 KiB of
//   shared memory, not 68, and more blocks share an SM.
// Configs with more than 16 rows per warp (m_tiles 2) re-read Q from shared memory per key tile.
// Several kPrefill rows of one head dim are alternatives: the launcher times them once per shape
// bucket on the GPU in use and keeps the fastest (flash_autotune.h); the first is the default when
// autotuning is off (--flash-autotune=false) or impossible (stream capture).
// - d128 m128 n32 w4: 32 rows per warp like FA2's sm80 tile; 333 vs 315 TFLOP/s for m64 at the seed
//   shape on an H200, 0 spills only since the swizzle offsets are recomputed per key tile
//   (m128 n64 w4 still spills 68 bytes: tuning only).
// - d64 m64 n64 w4: twice the blocks of m128 for short sequences and small batches.
inline constexpr FlashConfig kFlashConfigs[] = {
    {32, 48, 48, 3, 4, true, ConfigRole::kPrefill, "d32 m48 n48 w3"},
    {64, 128, 64, 4, 2, false, ConfigRole::kPrefill, "d64 m128 n64 w4"},
    {128, 64, 64, 4, 2, true, ConfigRole::kPrefill, "d128 m64 n64 w4"},
    {32, 16, 64, 1, 8, true, ConfigRole::kDecode, "d32 m16 n64 w1 decode"},
    {64, 16, 64, 1, 8, true, ConfigRole::kDecode, "d64 m16 n64 w1 decode"},
    {128, 16, 32, 1, 8, true, ConfigRole::kDecode, "d128 m16 n32 w1 decode"},
    {32, 64, 64, 4, 3, true, ConfigRole::kTuning, "d32 m64 n64 w4"},
    {64, 128, 64, 8, 1, true, ConfigRole::kTuning, "d64 m128 n64 w8"},
    {64, 64, 64, 4, 3, true, ConfigRole::kPrefill, "d64 m64 n64 w4"},
    {128, 128, 64, 8, 1, false, ConfigRole::kTuning, "d128 m128 n64 w8"},
    {128, 128, 64, 4, 2, false, ConfigRole::kTuning, "d128 m128 n64 w4"},
    {128, 128, 32, 4, 2, false, ConfigRole::kPrefill, "d128 m128 n32 w4"},
    {64, 128, 128, 4, 2, false, ConfigRole::kTuning, "d64 m128 n128 w4"},
    {64, 64, 128, 4, 2, true, ConfigRole::kTuning, "d64 m64 n128 w4"},
};
inline constexpr int kNumFlashConfigs = sizeof(kFlashConfigs) / sizeof(kFlashConfigs[0]);

}  // namespace vlm::flash
