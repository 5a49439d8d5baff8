/* tvmx's Gemmini programming interface: one macro per RoCC command, and tiled int8 kernels.
 *
 * The configuration (GEMMINI_DIM, memory sizes) comes from gemmini_params.h, generated from the
 * target YAML into the build directory by tvmx (Gemmini.include_dirs). Semantics of every command
 * are those of the Spike model in spike/gemmini.cc; TIMING.md describes its cycle model.
 */
#ifndef TVMX_GEMMINI_H
#define TVMX_GEMMINI_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "gemmini_params.h"

typedef int8_t elem_t;
typedef int32_t acc_t;

/* ---------------------------------------------------------------- local addresses */
/* A local address counts rows of GEMMINI_DIM elements. Bit 31 selects the accumulator, bit 30
   accumulates on write, bit 29 reads the raw int32 row on mvout. */
#define GEMMINI_GARBAGE 0xFFFFFFFFu
#define GEMMINI_ACC (1u << 31)
#define GEMMINI_ACCUMULATE (1u << 30)
#define GEMMINI_FULL_ROW (1u << 29)
#define GEMMINI_ACC_ADDR(row) (GEMMINI_ACC | (uint32_t)(row))

/* rs operand: [31:0] local address, [47:32] columns, [63:48] rows */
#define GEMMINI_OPERAND(local, cols, rows) \
  (((uint64_t)(rows) << 48) | ((uint64_t)(cols) << 32) | (uint64_t)(uint32_t)(local))

/* ---------------------------------------------------------------- raw commands */
#define GEMMINI_FUNCT_CONFIG 0
#define GEMMINI_FUNCT_MVIN2 1
#define GEMMINI_FUNCT_MVIN 2
#define GEMMINI_FUNCT_MVOUT 3
#define GEMMINI_FUNCT_COMPUTE_PRELOADED 4
#define GEMMINI_FUNCT_COMPUTE_ACCUMULATED 5
#define GEMMINI_FUNCT_PRELOAD 6
#define GEMMINI_FUNCT_FLUSH 7
#define GEMMINI_FUNCT_MVIN3 14
#define GEMMINI_FUNCT_COUNTER 126

#define GEMMINI_STR_(x) #x
#define GEMMINI_STR(x) GEMMINI_STR_(x)
/* custom-3 opcode, funct3 0b011 (reads rs1 and rs2, no rd) */
#define GEMMINI_CMD(funct, rs1, rs2)                                                          \
  __asm__ volatile(".insn r 0x7b, 0x3, " GEMMINI_STR(funct) ", x0, %0, %1" ::"r"((uint64_t)(rs1)), \
                   "r"((uint64_t)(rs2))                                                        \
                   : "memory")

enum { GEMMINI_OS = 0, GEMMINI_WS = 1 };
enum { GEMMINI_NO_ACT = 0, GEMMINI_RELU = 1 };

static inline uint64_t gemmini_f32_bits(float f) {
  uint32_t u;
  memcpy(&u, &f, sizeof u);
  return u;
}

/* config_ex: dataflow, activation for array results written to the scratchpad, A/B transposes
   (A transpose in OS only), row strides of A and C in local rows, OS/scratchpad rounding shift. */
#define gemmini_config_ex(dataflow, act, a_transpose, b_transpose, a_stride, c_stride, in_shift)           \
  GEMMINI_CMD(GEMMINI_FUNCT_CONFIG,                                                                       \
              0u | ((uint64_t)((dataflow) & 1) << 2) | ((uint64_t)((act) & 3) << 3) |                      \
                  ((uint64_t)((a_transpose) & 1) << 8) | ((uint64_t)((b_transpose) & 1) << 9) |          \
                  ((uint64_t)((a_stride) & 0xFFFF) << 16),                                               \
              ((uint64_t)((c_stride) & 0xFFFF) << 48) | (uint32_t)(in_shift))

/* config_mvin for load state `id` (0 mvin, 1 mvin2, 2 mvin3): DRAM row stride in bytes, scale
   applied on the way in (round half to even, saturate), `shrink` reads int8 into the accumulator,
   block stride in local rows between the DIM-wide column blocks of one mvin. */
#define gemmini_config_ld(id, dram_stride, scale, shrink, block_stride)                                  \
  GEMMINI_CMD(GEMMINI_FUNCT_CONFIG,                                                                       \
              1u | ((uint64_t)((shrink) & 1) << 2) | ((uint64_t)((id) & 3) << 3) |                        \
                  ((uint64_t)((block_stride) & 0xFFFF) << 16) | (gemmini_f32_bits(scale) << 32),         \
              (uint64_t)(dram_stride))

/* config_mvout: DRAM row stride in bytes, activation and scale for accumulator reads. */
#define gemmini_config_st(dram_stride, act, acc_scale)                                                  \
  GEMMINI_CMD(GEMMINI_FUNCT_CONFIG, 2u | ((uint64_t)((act) & 3) << 2),                                    \
              (gemmini_f32_bits(acc_scale) << 32) | (uint32_t)(dram_stride))

/* config_norm: accepted and ignored by the model (no normalisation unit). */
#define gemmini_config_norm() GEMMINI_CMD(GEMMINI_FUNCT_CONFIG, 3u, 0u)

#define gemmini_mvin(dram, local, cols, rows) \
  GEMMINI_CMD(GEMMINI_FUNCT_MVIN, (uintptr_t)(dram), GEMMINI_OPERAND(local, cols, rows))
#define gemmini_mvin2(dram, local, cols, rows) \
  GEMMINI_CMD(GEMMINI_FUNCT_MVIN2, (uintptr_t)(dram), GEMMINI_OPERAND(local, cols, rows))
#define gemmini_mvin3(dram, local, cols, rows) \
  GEMMINI_CMD(GEMMINI_FUNCT_MVIN3, (uintptr_t)(dram), GEMMINI_OPERAND(local, cols, rows))
#define gemmini_mvout(dram, local, cols, rows) \
  GEMMINI_CMD(GEMMINI_FUNCT_MVOUT, (uintptr_t)(dram), GEMMINI_OPERAND(local, cols, rows))

/* preload: WS — B (weights) staged for the next compute_preloaded, C = output address;
            OS — D (initial accumulators) for the next compute_preloaded, C = output address. */
#define gemmini_preload(bd, c, bd_cols, bd_rows, c_cols, c_rows) \
  GEMMINI_CMD(GEMMINI_FUNCT_PRELOAD, GEMMINI_OPERAND(bd, bd_cols, bd_rows), GEMMINI_OPERAND(c, c_cols, c_rows))
/* compute_preloaded: WS — C = A·B(preloaded) + D(bd); OS — acc = D(preloaded) + A·B(bd); C <- result. */
#define gemmini_compute_preloaded(a, bd, a_cols, a_rows, bd_cols, bd_rows)   \
  GEMMINI_CMD(GEMMINI_FUNCT_COMPUTE_PRELOADED, GEMMINI_OPERAND(a, a_cols, a_rows), \
              GEMMINI_OPERAND(bd, bd_cols, bd_rows))
/* compute_accumulated: WS — reuse the weights in the array; OS — keep accumulating in the array. */
#define gemmini_compute_accumulated(a, bd, a_cols, a_rows, bd_cols, bd_rows)   \
  GEMMINI_CMD(GEMMINI_FUNCT_COMPUTE_ACCUMULATED, GEMMINI_OPERAND(a, a_cols, a_rows), \
              GEMMINI_OPERAND(bd, bd_cols, bd_rows))

/* flush: the CPU waits until the accelerator is idle and its stores have landed. */
#define gemmini_flush() GEMMINI_CMD(GEMMINI_FUNCT_FLUSH, 0u, 0u)
#define gemmini_fence() gemmini_flush()

/* COUNTER (funct3 0b111 writes rd): the model's counters, read at the moment of issue. */
enum {
  GEMMINI_CTR_CYCLES = 0,      /* estimated CPU cycles so far: minstret + stall cycles */
  GEMMINI_CTR_LOAD_BUSY = 1,   /* cycles the load (mvin) unit was occupied */
  GEMMINI_CTR_EXEC_BUSY = 2,   /* cycles the execute unit (preload/compute) was occupied */
  GEMMINI_CTR_STORE_BUSY = 3,  /* cycles the store (mvout) unit was occupied */
  GEMMINI_CTR_STALL = 4,       /* CPU cycles stalled on full queues and flushes */
  GEMMINI_CTR_COMMANDS = 5,    /* accelerator commands executed */
  GEMMINI_CTR_MACS = 6,        /* useful multiply-accumulates */
  GEMMINI_CTR_ACTIVE = 7,      /* cycles with at least one unit busy */
  GEMMINI_CTR_DMA_READ = 8,    /* bytes read from memory by mvin */
  GEMMINI_CTR_DMA_WRITTEN = 9, /* bytes written to memory by mvout */
};
static inline uint64_t gemmini_counter(unsigned id) {
  uint64_t v;
  __asm__ volatile(".insn r 0x7b, 0x7, " GEMMINI_STR(GEMMINI_FUNCT_COUNTER) ", %0, %1, x0"
                   : "=r"(v)
                   : "r"((uint64_t)id)
                   : "memory");
  return v;
}

/* ---------------------------------------------------------------- tiled matmul */
/* Tile sizes in DIM x DIM blocks. The scratchpad holds two (A, B) tile pairs and the accumulator
   two C tiles, so the loads of the next step and the stores of the previous C tile overlap the
   computation of the current one. */
typedef struct {
  size_t i, j, k;
} gemmini_tiling;

#ifndef GEMMINI_LOOKAHEAD
#define GEMMINI_LOOKAHEAD 3 /* (j, k) block pairs whose loads run ahead of the computes */
#endif
#define GEMMINI_CEIL_DIV(a, b) (((a) + (b) - 1) / (b))
#define GEMMINI_MIN(a, b) ((a) < (b) ? (a) : (b))

static inline int gemmini_tiling_fits(size_t ti, size_t tj, size_t tk) {
  return 2 * GEMMINI_DIM * (ti * tk + tk * tj) <= GEMMINI_SP_ROWS && 2 * GEMMINI_DIM * ti * tj <= GEMMINI_ACC_ROWS;
}

/* Greedy. Grow the C tile's height i first: each weight block preloaded into the array is reused
   by i computes, which amortises the CPU's per-block issue work (the CPU issuing commands one by one
   is the bottleneck at DIM 16). Then its width j while two C tiles fit in the accumulator, then k
   while two (A, B) tile pairs fit in the scratchpad (unless k already spans K). */
static inline gemmini_tiling gemmini_auto_tiling(size_t M, size_t N, size_t K) {
  size_t mb = GEMMINI_CEIL_DIV(M, GEMMINI_DIM), nb = GEMMINI_CEIL_DIV(N, GEMMINI_DIM);
  size_t kb = GEMMINI_CEIL_DIV(K, GEMMINI_DIM);
  gemmini_tiling t = {1, 1, 1};
  /* All of K in one step if a 1-block-wide tile allows it: the A panel then stays in the
     scratchpad for a whole row of C tiles instead of being re-read for each one. */
  if (gemmini_tiling_fits(1, 1, kb)) t.k = kb;
  while (t.i < mb && gemmini_tiling_fits(t.i + 1, t.j, t.k)) t.i++;
  while (t.j < nb && gemmini_tiling_fits(t.i, t.j + 1, t.k)) t.j++;
  while (t.k < kb && gemmini_tiling_fits(t.i, t.j, t.k + 1)) t.k++;
  return t;
}

/* C[M][N] = act(scale(A[M][K] · B[K][N] + D)), int8 x int8 -> int32 accumulation.
 *   strides: row strides in elements; stride_D = 0 broadcasts one bias row (a per-column bias).
 *   D: int32 bias, or NULL. a_scale/b_scale: applied by mvin (keep 1.0 for already-int8 data).
 *   c_int32 = 0: C is int8, act(sat8(round_half_even(acc * acc_scale)));
 *   c_int32 = 1: C is the raw int32 accumulator (acc_scale and act ignored).
 * Weight-stationary; blocks of B stay in the array while every row block of A streams past. */
static inline void tiled_matmul(size_t M, size_t N, size_t K, const elem_t *A, const elem_t *B, const acc_t *D,
                                void *C, size_t stride_A, size_t stride_B, size_t stride_D, size_t stride_C,
                                float a_scale, float b_scale, float acc_scale, int act, int c_int32,
                                gemmini_tiling t) {
  const size_t dim = GEMMINI_DIM;
  const size_t c_size = c_int32 ? sizeof(acc_t) : sizeof(elem_t);
  const size_t a_rows = t.i * t.k * dim, b_rows = t.k * t.j * dim, c_rows = t.i * t.j * dim;
  const size_t max_blocks = GEMMINI_MAX_BLOCK_LEN;
  unsigned a_buf = 1, b_buf = 0, c_buf = 0;
  size_t a_rows_loaded = (size_t)-1; /* i0 whose whole A panel is in the scratchpad, if any */

  gemmini_config_ex(GEMMINI_WS, GEMMINI_NO_ACT, 0, 0, 1, 1, 0);
  gemmini_config_ld(0, stride_A * sizeof(elem_t), a_scale, 0, dim);
  gemmini_config_ld(1, stride_B * sizeof(elem_t), b_scale, 0, dim);
  gemmini_config_ld(2, stride_D * sizeof(acc_t), 1.0f, 0, dim);
  gemmini_config_st(stride_C * c_size, act, acc_scale);

  for (size_t i0 = 0; i0 < M; i0 += t.i * dim) {
    const size_t ib = GEMMINI_MIN(t.i, GEMMINI_CEIL_DIV(M - i0, dim));
    for (size_t j0 = 0; j0 < N; j0 += t.j * dim) {
      const size_t jb = GEMMINI_MIN(t.j, GEMMINI_CEIL_DIV(N - j0, dim));
      const uint32_t c_base = (uint32_t)(c_buf * c_rows);
      c_buf ^= 1;
      if (D != NULL) {
        for (size_t i = 0; i < ib; i++)
          for (size_t j = 0; j < jb; j++) {
            size_t r = GEMMINI_MIN(dim, M - i0 - i * dim), c = GEMMINI_MIN(dim, N - j0 - j * dim);
            gemmini_mvin3(D + (i0 + i * dim) * stride_D + j0 + j * dim,
                          GEMMINI_ACC_ADDR(c_base + (i * t.j + j) * dim), c, r);
          }
      }
      for (size_t k0 = 0; k0 < K; k0 += t.k * dim) {
        const size_t kb = GEMMINI_MIN(t.k, GEMMINI_CEIL_DIV(K - k0, dim));
        /* When one k step spans all of K, the A panel of this row of C tiles stays in the
           scratchpad and is reused by every tile of the row; otherwise A and B are double-buffered. */
        const int reuse_a = k0 == 0 && t.k * dim >= K && a_rows_loaded == i0;
        if (!reuse_a) a_buf ^= 1;
        a_rows_loaded = t.k * dim >= K ? i0 : (size_t)-1;
        b_buf ^= 1;
        const uint32_t a_base = (uint32_t)(a_buf * a_rows), b_base = (uint32_t)(2 * a_rows + b_buf * b_rows);
        /* Blocks of C's column j are computed k by k; the loads for the (j, k) pair
           GEMMINI_LOOKAHEAD pairs ahead are issued first, so the load queue runs ahead of the
           array (hiding DMA latency) without stalling the CPU on a full load queue. */
        const size_t pairs = jb * kb;
        size_t loaded = 0;
        for (size_t q = 0; q < pairs; q++) {
          for (; loaded < pairs && loaded <= q + GEMMINI_LOOKAHEAD; loaded++) {
            const size_t j = loaded / kb, k = loaded % kb, kc = GEMMINI_MIN(dim, K - k0 - k * dim);
            if (!reuse_a && j == 0 && k % max_blocks == 0)
              for (size_t i = 0; i < ib; i++) {
                size_t r = GEMMINI_MIN(dim, M - i0 - i * dim);
                size_t c = GEMMINI_MIN(GEMMINI_MIN(max_blocks, kb - k) * dim, K - k0 - k * dim);
                gemmini_mvin(A + (i0 + i * dim) * stride_A + k0 + k * dim, a_base + (i * t.k + k) * dim, c, r);
              }
            if (j % max_blocks == 0) {
              size_t c = GEMMINI_MIN(GEMMINI_MIN(max_blocks, jb - j) * dim, N - j0 - j * dim);
              gemmini_mvin2(B + (k0 + k * dim) * stride_B + j0 + j * dim, b_base + (k * t.j + j) * dim, c, kc);
            }
          }
          const size_t j = q / kb, k = q % kb;
          const size_t jc = GEMMINI_MIN(dim, N - j0 - j * dim), kc = GEMMINI_MIN(dim, K - k0 - k * dim);
          const uint32_t acc_flag = (D != NULL || k0 > 0 || k > 0) ? GEMMINI_ACCUMULATE : 0;
          /* Operands advance by constant steps down the column of blocks: a few instructions
             per preload+compute pair keep the CPU from becoming the bottleneck. */
          const uint64_t garbage = GEMMINI_OPERAND(GEMMINI_GARBAGE, dim, dim);
          const uint64_t a_step = t.k * dim, c_step = t.j * dim;
          const uint64_t rows_mask = ~((uint64_t)0xFFFF << 48);
          const uint64_t last_rows = (uint64_t)GEMMINI_MIN(dim, M - i0 - (ib - 1) * dim) << 48;
          uint64_t a_op = GEMMINI_OPERAND(a_base + k * dim, kc, dim);
          uint64_t c_op = GEMMINI_OPERAND(GEMMINI_ACC_ADDR(c_base + j * dim) | acc_flag, jc, dim);
          if (ib == 1) a_op = (a_op & rows_mask) | last_rows, c_op = (c_op & rows_mask) | last_rows;
          GEMMINI_CMD(GEMMINI_FUNCT_PRELOAD, GEMMINI_OPERAND(b_base + (k * t.j + j) * dim, jc, kc), c_op);
          GEMMINI_CMD(GEMMINI_FUNCT_COMPUTE_PRELOADED, a_op, garbage);
          for (size_t i = 1; i < ib; i++) {
            a_op += a_step;
            c_op += c_step;
            if (i == ib - 1) a_op = (a_op & rows_mask) | last_rows, c_op = (c_op & rows_mask) | last_rows;
            GEMMINI_CMD(GEMMINI_FUNCT_PRELOAD, garbage, c_op);
            GEMMINI_CMD(GEMMINI_FUNCT_COMPUTE_ACCUMULATED, a_op, garbage);
          }
        }
      }
      for (size_t i = 0; i < ib; i++)
        for (size_t j = 0; j < jb; j++) {
          size_t r = GEMMINI_MIN(dim, M - i0 - i * dim), c = GEMMINI_MIN(dim, N - j0 - j * dim);
          uint32_t src = GEMMINI_ACC_ADDR(c_base + (i * t.j + j) * dim) | (c_int32 ? GEMMINI_FULL_ROW : 0);
          gemmini_mvout((char *)C + ((i0 + i * dim) * stride_C + j0 + j * dim) * c_size, src, c, r);
        }
    }
  }
  gemmini_fence();
}

static inline void tiled_matmul_auto(size_t M, size_t N, size_t K, const elem_t *A, const elem_t *B,
                                     const acc_t *D, void *C, size_t stride_A, size_t stride_B, size_t stride_D,
                                     size_t stride_C, float a_scale, float b_scale, float acc_scale, int act,
                                     int c_int32) {
  tiled_matmul(M, N, K, A, B, D, C, stride_A, stride_B, stride_D, stride_C, a_scale, b_scale, acc_scale, act,
               c_int32, gemmini_auto_tiling(M, N, K));
}

/* ---------------------------------------------------------------- convolution */
/* NHWC int8 conv2d as im2col (on the CPU) + tiled_matmul_auto.
 *   weights: [kh][kw][in_c][out_c] (HWIO), bias: [out_c] int32 or NULL, output: NHWC int8.
 *   col: scratch of batch*out_h*out_w * kh*kw*in_c bytes. Padding reads zeros (zero point 0). */
static inline void tiled_conv_auto(size_t batch, size_t in_h, size_t in_w, size_t in_c, size_t out_c,
                                   size_t out_h, size_t out_w, size_t stride, size_t pad, size_t kh, size_t kw,
                                   const elem_t *input, const elem_t *weights, const acc_t *bias, elem_t *output,
                                   elem_t *col, float acc_scale, int act) {
  const size_t K = kh * kw * in_c;
  elem_t *row = col;
  for (size_t n = 0; n < batch; n++)
    for (size_t oy = 0; oy < out_h; oy++)
      for (size_t ox = 0; ox < out_w; ox++)
        for (size_t ky = 0; ky < kh; ky++)
          for (size_t kx = 0; kx < kw; kx++, row += in_c) {
            long iy = (long)(oy * stride + ky) - (long)pad, ix = (long)(ox * stride + kx) - (long)pad;
            if (iy < 0 || ix < 0 || iy >= (long)in_h || ix >= (long)in_w)
              memset(row, 0, in_c);
            else
              memcpy(row, input + ((n * in_h + (size_t)iy) * in_w + (size_t)ix) * in_c, in_c);
          }
  tiled_matmul_auto(batch * out_h * out_w, out_c, K, col, weights, bias, output, K, out_c, 0, out_c, 1.0f, 1.0f,
                    acc_scale, act, 0);
}

#endif /* TVMX_GEMMINI_H */
