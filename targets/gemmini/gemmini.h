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
#define GEMMINI_FUNCT_LOOP_WS 8
#define GEMMINI_FUNCT_LOOP_WS_CONFIG_BOUNDS 9
#define GEMMINI_FUNCT_LOOP_WS_CONFIG_ADDRS_AB 10
#define GEMMINI_FUNCT_LOOP_WS_CONFIG_ADDRS_DC 11
#define GEMMINI_FUNCT_LOOP_WS_CONFIG_STRIDES_AB 12
#define GEMMINI_FUNCT_LOOP_WS_CONFIG_STRIDES_DC 13
#define GEMMINI_FUNCT_MVIN3 14
#define GEMMINI_FUNCT_LOOP_CONV_WS 15
#define GEMMINI_FUNCT_LOOP_CONV_WS_CONFIG_1 16
#define GEMMINI_FUNCT_LOOP_CONV_WS_CONFIG_2 17
#define GEMMINI_FUNCT_LOOP_CONV_WS_CONFIG_3 18
#define GEMMINI_FUNCT_LOOP_CONV_WS_CONFIG_4 19
#define GEMMINI_FUNCT_LOOP_CONV_WS_CONFIG_5 20
#define GEMMINI_FUNCT_LOOP_CONV_WS_CONFIG_6 21
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

/* config_mvout with max pooling: every following mvout pools one tile of conv outputs held in the
   accumulator. The fields and their bits are Gemmini's config_st (pitch is tvmx's: Gemmini's
   accumulator tile is always ocols wide).
     rs1: [1:0] 2, [3:2] act, [5:4] pool_stride, [7:6] pool_size, [9:8] upad, [11:10] lpad,
          [23:12] pitch: accumulator rows from one conv row of the tile to the next (0 = ocols),
          [31:24] pool_out_dim: pooled pixels per output image row (the DRAM row pitch),
          [39:32] porows, [47:40] pocols: pooled rows and columns written,
          [55:48] orows, [63:56] ocols: conv rows and columns of the tile;
     rs2: [63:32] acc_scale, [31:0] dram_stride: bytes from one output pixel to the next.
   The mvout then takes local = the accumulator row of conv output (0, 0), cols = channels (<= DIM)
   and rows = 0. Pooled pixel (pr, pc) is the max of act(sat8(round_half_even(acc * acc_scale)))
   over conv rows pr * pool_stride - upad + [0, pool_size) and columns pc * pool_stride - lpad +
   [0, pool_size) that lie inside the tile (the others are padding, ignored), written to
   dram + (pr * pool_out_dim + pc) * dram_stride. Each window must hold at least one conv output;
   a config that breaks this, or a pool stride of 0 with any other pooling field set, traps. */
#define gemmini_config_st_pool(dram_stride, act, acc_scale, pool_stride, pool_size, upad, lpad, pitch, pool_out_dim, \
                               porows, pocols, orows, ocols)                                                       \
  GEMMINI_CMD(GEMMINI_FUNCT_CONFIG,                                                                               \
              2u | ((uint64_t)((act) & 3) << 2) | ((uint64_t)((pool_stride) & 3) << 4) |                           \
                  ((uint64_t)((pool_size) & 3) << 6) | ((uint64_t)((upad) & 3) << 8) |                              \
                  ((uint64_t)((lpad) & 3) << 10) | ((uint64_t)((pitch) & 0xFFF) << 12) |                            \
                  ((uint64_t)((pool_out_dim) & 0xFF) << 24) | ((uint64_t)((porows) & 0xFF) << 32) |                 \
                  ((uint64_t)((pocols) & 0xFF) << 40) | ((uint64_t)((orows) & 0xFF) << 48) |                        \
                  ((uint64_t)((ocols) & 0xFF) << 56),                                                               \
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

/* LOOP_WS, Gemmini's hardware loop unroller (where the configuration has it: GEMMINI_HAS_LOOP_WS):
   five config commands and the loop, with gemmini.h's gemmini_loop_ws field layout. One loop runs
   the tiled WS matmul of one tile, I x J x K blocks (the last ones short by pad_I/J/K rows or
   columns): mvin3 of D (int32 bias, NULL for none) into C's accumulator tile, mvin/mvin2 of A and B,
   the preloads and computes, mvout of C (NULL: none, the tile stays for the next loop to accumulate
   onto, ex_accumulate). Strides are row strides in elements; the mvins and the mvout run under the
   CPU's config_mvin (block stride DIM, DRAM strides matching) and config_mvout (its scale; the
   loop's act). A and B of loop n go into scratchpad half n % 2, C into an accumulator half that
   changes with every loop that does not accumulate. a_spad_id non-zero: A is still in the
   scratchpad from the last loop that loaded it (same A, I, K), not loaded again. Unsupported
   (trap): low_D, transposes, resadd, activations other than none/ReLU. */
#define gemmini_loop_ws(I, J, K, pad_I, pad_J, pad_K, A, B, D, C, A_stride, B_stride, D_stride, C_stride, full_C, \
                        ex_accumulate, act, a_spad_id)                                                           \
  do {                                                                                                           \
    GEMMINI_CMD(GEMMINI_FUNCT_LOOP_WS_CONFIG_BOUNDS,                                                             \
                ((uint64_t)(pad_K) << 32) | ((uint64_t)(pad_J) << 16) | (uint64_t)(pad_I),                      \
                ((uint64_t)(K) << 32) | ((uint64_t)(J) << 16) | (uint64_t)(I));                                  \
    GEMMINI_CMD(GEMMINI_FUNCT_LOOP_WS_CONFIG_ADDRS_AB, (uintptr_t)(A), (uintptr_t)(B));                          \
    GEMMINI_CMD(GEMMINI_FUNCT_LOOP_WS_CONFIG_ADDRS_DC, (uintptr_t)(D), (uintptr_t)(C));                          \
    GEMMINI_CMD(GEMMINI_FUNCT_LOOP_WS_CONFIG_STRIDES_AB, (A_stride), (B_stride));                                \
    GEMMINI_CMD(GEMMINI_FUNCT_LOOP_WS_CONFIG_STRIDES_DC, (D_stride), (C_stride));                                \
    GEMMINI_CMD(GEMMINI_FUNCT_LOOP_WS, ((uint64_t)((a_spad_id) & 3) << 18) | ((uint64_t)((act) & 7) << 8) |     \
                                           ((uint64_t)((full_C) & 1) << 1) | (uint64_t)((ex_accumulate) & 1),    \
                0u);                                                                                             \
  } while (0)

/* LOOP_CONV_WS, Gemmini's conv loop unroller (where the configuration has it: GEMMINI_HAS_LOOP_CONV):
   six config commands and the loop, with the field layout of gemmini-rocc-tests' gemmini_loop_conv_ws
   (non-square image version; TIMING.md lists the bits). One loop computes one tile: `batches` images
   of orows x ocols conv outputs (pochs output channels) from a padded input of
   ((orows - 1) * stride + krows) x ((ocols - 1) * stride + kcols) pixels (kchs channels) whose first
   upad / last dpad rows and first lpad / last rpad columns are zeros, `input` pointing at its first
   real pixel, rows in_col_dim pixels and pixels in_stride elements apart. weights: HWIO rows
   ((krow * kernel_dim + kcol) * in_channels + kch) * weight_stride. bias: int32 per output channel,
   or NULL with no_bias 1 (the tile starts from 0) or with no_bias 0 (the tile adds onto the last
   loop's, for a further input-channel step). output: conv outputs at ((b * out_row_dim + orow) *
   out_col_dim + ocol) * out_stride, or with pooling (no_pool 0) pooled pixels at ((b *
   pool_out_row_dim + pr) * pool_out_col_dim + pc) * out_stride, pool padding pupad / plpad at the
   tile's top / left; NULL: not stored (the tile stays for the next loop). Requantized with
   config_mvout's scale and the loop's act. Unsupported (trap): dilation other than 1, transposes,
   wrot180, downsample, input dilation, depthwise, spad ids. */
#define gemmini_loop_conv_ws_config(batch_size, in_row_dim, in_col_dim, in_channels, out_channels, out_row_dim,     \
                                    out_col_dim, pool_out_row_dim, pool_out_col_dim, stride, padding, kernel_dim,     \
                                    pool_size, pool_stride, pool_padding, batches, porows, pocols, pochs, krows,      \
                                    kcols, kchs, lpad, rpad, upad, dpad, plpad, prpad, pupad, pdpad, orows, ocols,    \
                                    weights, output, bias, input, in_stride, weight_stride, out_stride)               \
  do {                                                                                                                  \
    GEMMINI_CMD(GEMMINI_FUNCT_LOOP_CONV_WS_CONFIG_1,                                                                    \
                ((uint64_t)(out_channels) << 48) | ((uint64_t)(in_channels) << 32) | ((uint64_t)(in_row_dim) << 16) |  \
                    (uint64_t)(batch_size),                                                                             \
                ((uint64_t)(padding) << 56) | ((uint64_t)(stride) << 48) | ((uint64_t)(out_col_dim) << 32) |           \
                    ((uint64_t)(pool_out_row_dim) << 16) | (uint64_t)(out_row_dim));                                    \
    GEMMINI_CMD(GEMMINI_FUNCT_LOOP_CONV_WS_CONFIG_2,                                                                    \
                ((uint64_t)(kernel_dim) << 48) | ((uint64_t)(pool_out_col_dim) << 32) | ((uint64_t)(pool_size) << 16) | \
                    ((uint64_t)(pool_stride) << 8) | (uint64_t)(pool_padding),                                          \
                ((uint64_t)(batches) << 48) | ((uint64_t)(porows) << 32) | ((uint64_t)(pocols) << 16) |                \
                    (uint64_t)(pochs));                                                                                 \
    GEMMINI_CMD(GEMMINI_FUNCT_LOOP_CONV_WS_CONFIG_3,                                                                    \
                ((uint64_t)(krows) << 48) | ((uint64_t)(kcols) << 32) | ((uint64_t)(kchs) << 16) | (uint64_t)(lpad),    \
                ((uint64_t)(rpad) << 48) | ((uint64_t)(upad) << 32) | ((uint64_t)(dpad) << 24) |                       \
                    ((uint64_t)(plpad) << 16) | (uint64_t)(in_col_dim));                                                \
    GEMMINI_CMD(GEMMINI_FUNCT_LOOP_CONV_WS_CONFIG_4,                                                                    \
                ((uint64_t)(orows) << 48) | ((uint64_t)(prpad) << 32) | ((uint64_t)(pupad) << 21) |                    \
                    ((uint64_t)(pdpad) << 10) | 1u /* kernel_dilation */,                                               \
                ((uint64_t)(in_stride) << 48) | ((uint64_t)(weight_stride) << 32) | ((uint64_t)(out_stride) << 16) |   \
                    (uint64_t)(ocols));                                                                                 \
    GEMMINI_CMD(GEMMINI_FUNCT_LOOP_CONV_WS_CONFIG_5, (uintptr_t)(weights), (uintptr_t)(output));                       \
    GEMMINI_CMD(GEMMINI_FUNCT_LOOP_CONV_WS_CONFIG_6, (uintptr_t)(bias), (uintptr_t)(input));                           \
  } while (0)
#define gemmini_loop_conv_ws_launch(no_bias, no_pool, act)                                                             \
  GEMMINI_CMD(GEMMINI_FUNCT_LOOP_CONV_WS, (uint64_t)((no_bias) & 1), ((uint64_t)((act) & 3) << 3) | (uint64_t)((no_pool) & 1))
/* the six configs and the loop */
#define gemmini_loop_conv_ws(batch_size, in_row_dim, in_col_dim, in_channels, out_channels, out_row_dim, out_col_dim, \
                             pool_out_row_dim, pool_out_col_dim, stride, padding, kernel_dim, pool_size, pool_stride,   \
                             pool_padding, batches, porows, pocols, pochs, krows, kcols, kchs, lpad, rpad, upad, dpad,  \
                             plpad, prpad, pupad, pdpad, orows, ocols, weights, output, bias, input, no_bias, no_pool,  \
                             act, in_stride, weight_stride, out_stride)                                                  \
  do {                                                                                                                  \
    gemmini_loop_conv_ws_config(batch_size, in_row_dim, in_col_dim, in_channels, out_channels, out_row_dim,            \
                                out_col_dim, pool_out_row_dim, pool_out_col_dim, stride, padding, kernel_dim,           \
                                pool_size, pool_stride, pool_padding, batches, porows, pocols, pochs, krows, kcols,     \
                                kchs, lpad, rpad, upad, dpad, plpad, prpad, pupad, pdpad, orows, ocols, weights,        \
                                output, bias, input, in_stride, weight_stride, out_stride);                             \
    gemmini_loop_conv_ws_launch(no_bias, no_pool, act);                                                                 \
  } while (0)

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
/* The dataflow a tiling asks for: the configuration's default (WS where it has WS, else OS), or one
   of the two explicitly (a dataflow the configuration lacks makes the tiling illegal). */
enum { GEMMINI_FLOW_DEFAULT = 0, GEMMINI_FLOW_WS = 1, GEMMINI_FLOW_OS = 2 };

/* config_ex's dataflow bit for a tiling's dataflow field, or -1 if this configuration lacks it. */
static inline int gemmini_dataflow(size_t flow) {
  if (flow == GEMMINI_FLOW_DEFAULT) return GEMMINI_HAS_WS ? GEMMINI_WS : GEMMINI_OS;
  if (flow == GEMMINI_FLOW_WS) return GEMMINI_HAS_WS ? GEMMINI_WS : -1;
  if (flow == GEMMINI_FLOW_OS) return GEMMINI_HAS_OS ? GEMMINI_OS : -1;
  return -1;
}

/* The explicit dataflow field the default stands for (what the heuristics report). */
#define GEMMINI_FLOW_OF_DEFAULT (GEMMINI_HAS_WS ? GEMMINI_FLOW_WS : GEMMINI_FLOW_OS)

/* Tile sizes in DIM x DIM blocks. The scratchpad holds two (A, B) tile pairs and the accumulator
   two C tiles, so the loads of the next step and the stores of the previous C tile overlap the
   computation of the current one.
   dataflow: GEMMINI_FLOW_*. lookahead: load units (WS: (j, k) block pairs, OS: C blocks) whose
   loads are issued before the computes of the current one, 1..GEMMINI_MAX_LOOKAHEAD, 0 for
   GEMMINI_LOOKAHEAD. hw_loop: 1 = each tile is one LOOP_WS (WS only, GEMMINI_HAS_LOOP_WS; the
   unroller ignores lookahead), 0 = the CPU issues every command. (An initializer {i, j, k} gets
   lookahead's default and the CPU path.) */
typedef struct {
  size_t i, j, k, dataflow, lookahead, hw_loop;
} gemmini_tiling;

#ifndef GEMMINI_HAS_LOOP_WS
#define GEMMINI_HAS_LOOP_WS 0
#endif
#ifndef GEMMINI_HAS_LOOP_CONV
#define GEMMINI_HAS_LOOP_CONV 0
#endif

#ifndef GEMMINI_LOOKAHEAD
#define GEMMINI_LOOKAHEAD 3
#endif
#define GEMMINI_MAX_LOOKAHEAD 64
#if GEMMINI_LOOKAHEAD < 1 || GEMMINI_LOOKAHEAD > GEMMINI_MAX_LOOKAHEAD
#error "GEMMINI_LOOKAHEAD must be 1..GEMMINI_MAX_LOOKAHEAD"
#endif
#define GEMMINI_CEIL_DIV(a, b) (((a) + (b) - 1) / (b))
#define GEMMINI_MIN(a, b) ((a) < (b) ? (a) : (b))

/* Scratchpad and accumulator rows a tiling uses: two (A, B) tile pairs, two C tiles. */
static inline size_t gemmini_tiling_sp_rows(size_t ti, size_t tj, size_t tk) {
  return 2 * GEMMINI_DIM * (ti * tk + tk * tj);
}
static inline size_t gemmini_tiling_acc_rows(size_t ti, size_t tj) { return 2 * GEMMINI_DIM * ti * tj; }

static inline int gemmini_tiling_fits(size_t ti, size_t tj, size_t tk) {
  return gemmini_tiling_sp_rows(ti, tj, tk) <= GEMMINI_SP_ROWS && gemmini_tiling_acc_rows(ti, tj) <= GEMMINI_ACC_ROWS;
}

/* Whether tiled_matmul runs this tiling (any shape); it traps on any other. */
static inline int gemmini_tiling_ok(gemmini_tiling t) {
  return t.i > 0 && t.j > 0 && t.k > 0 && gemmini_tiling_fits(t.i, t.j, t.k) && gemmini_dataflow(t.dataflow) >= 0 &&
         t.lookahead <= GEMMINI_MAX_LOOKAHEAD &&
         (t.hw_loop == 0 || (t.hw_loop == 1 && GEMMINI_HAS_LOOP_WS && gemmini_dataflow(t.dataflow) == GEMMINI_WS));
}

#ifndef GEMMINI_STORE_QUEUE
#define GEMMINI_STORE_QUEUE 4 /* Gemmini's default store reservation-station entries */
#endif

/* Greedy, for C tiles of at most c_blocks blocks. Grow the C tile's height i first: each weight
   block preloaded into the array is reused by i computes, which amortises the CPU's per-block issue
   work (the CPU issuing commands one by one is the bottleneck at DIM 16). Then its width j while
   two C tiles fit in the accumulator, then k while two (A, B) tile pairs fit in the scratchpad
   (unless k already spans K). The default dataflow and lookahead; LOOP_WS where the configuration
   has it (and WS). */
static inline gemmini_tiling gemmini_greedy_tiling(size_t M, size_t N, size_t K, size_t c_blocks) {
  size_t mb = GEMMINI_CEIL_DIV(M, GEMMINI_DIM), nb = GEMMINI_CEIL_DIV(N, GEMMINI_DIM);
  size_t kb = GEMMINI_CEIL_DIV(K, GEMMINI_DIM);
  gemmini_tiling t = {1, 1, 1, GEMMINI_FLOW_OF_DEFAULT, GEMMINI_LOOKAHEAD,
                      GEMMINI_HAS_LOOP_WS && GEMMINI_FLOW_OF_DEFAULT == GEMMINI_FLOW_WS};
  /* All of K in one step if a 1-block-wide tile allows it: the A panel then stays in the
     scratchpad for a whole row of C tiles instead of being re-read for each one. */
  if (gemmini_tiling_fits(1, 1, kb)) t.k = kb;
  while (t.i < mb && (t.i + 1) * t.j <= c_blocks && gemmini_tiling_fits(t.i + 1, t.j, t.k)) t.i++;
  while (t.j < nb && t.i * (t.j + 1) <= c_blocks && gemmini_tiling_fits(t.i, t.j + 1, t.k)) t.j++;
  while (t.k < kb && gemmini_tiling_fits(t.i, t.j, t.k + 1)) t.k++;
  return t;
}

static inline size_t gemmini_matmul_cost(size_t M, size_t N, size_t K, gemmini_tiling t);

/* The default tiling for one issue path (hw_loop as in gemmini_tiling; 1 only where the
   configuration has LOOP_WS and WS): the CPU path's is the greedy tiling, unbounded. With LOOP_WS
   the unroller issues a loop's mvouts at its end, in order with everything else: a C tile of more
   blocks than the store queue holds stalls it there while the array runs dry, and fewer blocks mean
   more loops, each with its start-up: the cheapest (gemmini_matmul_cost) of the greedy tilings
   bounded by GEMMINI_STORE_QUEUE (from 1 for a C under that many blocks tall), twice that, ... and
   unbounded (measured at DIM 16: 4x1 blocks beat 15x1 by 2.5% at 512^3 and 8x4 by 10% at 128^3; at
   DIM 8 the unbounded one wins). */
static inline gemmini_tiling gemmini_auto_tiling_issue(size_t M, size_t N, size_t K, size_t hw_loop) {
  gemmini_tiling best = gemmini_greedy_tiling(M, N, K, (size_t)-1);
  best.hw_loop = hw_loop;
  if (!hw_loop) return best;
  size_t best_cost = gemmini_matmul_cost(M, N, K, best);
  /* (bounds below the store queue only where C is under that many blocks tall: they change nothing
     else, and each candidate costs run-time instructions in tiled_matmul_auto) */
  const size_t mb = GEMMINI_CEIL_DIV(M, GEMMINI_DIM);
  for (size_t c = mb < GEMMINI_STORE_QUEUE ? 1 : GEMMINI_STORE_QUEUE; c < GEMMINI_ACC_ROWS / GEMMINI_DIM; c *= 2) {
    gemmini_tiling t = gemmini_greedy_tiling(M, N, K, c);
    t.hw_loop = hw_loop;
    const size_t cost = gemmini_matmul_cost(M, N, K, t);
    if (cost < best_cost) best = t, best_cost = cost;
  }
  return best;
}

/* LOOP_WS where the configuration has it (and WS), else the CPU path. */
static inline gemmini_tiling gemmini_auto_tiling(size_t M, size_t N, size_t K) {
  return gemmini_auto_tiling_issue(M, N, K, GEMMINI_HAS_LOOP_WS && GEMMINI_FLOW_OF_DEFAULT == GEMMINI_FLOW_WS);
}

/* Estimated cycles of tiled_matmul under tiling t, to rank tilings before measuring them: the
   array's computes (DIM cycles per block product) or the CPU's issue work, whichever is larger
   (about 10 instructions per preload+compute pair and 60 per load unit of gemmini_mm_run_step: a
   (j, k) pair in WS, a C block in OS), plus the DMA time of the blocks loaded (DIM x DIM bytes over
   the bus; A once per row of C tiles when a step spans K, else once per tile; B once per tile),
   which double buffering hides only in part. Weights fitted to the Spike model's cycles over the
   tilings of a few shapes; the lookahead is not modelled. With hw_loop the unroller issues the
   commands and the array is the limit: DIM + 1 cycles per block product (the compute and the
   preload that names its C rows) or the DMA of the loads (overlapped, so the larger of the two),
   plus per loop its start-up (the CPU's set-up of the next loop less what the execute queue
   hides: about 20 cycles at DIM 16, 70 at DIM 8) and about 1.5 DIM cycles per mvout beyond the
   store queue (see gemmini_auto_tiling). Not a prediction: a ranking. */
static inline size_t gemmini_matmul_cost(size_t M, size_t N, size_t K, gemmini_tiling t) {
  const size_t dim = GEMMINI_DIM;
  const size_t mb = GEMMINI_CEIL_DIV(M, dim), nb = GEMMINI_CEIL_DIV(N, dim), kb = GEMMINI_CEIL_DIV(K, dim);
  if (t.i == 0 || t.j == 0 || t.k == 0) return (size_t)-1;
  const size_t ti = GEMMINI_CEIL_DIV(mb, t.i), tj = GEMMINI_CEIL_DIV(nb, t.j), tk = GEMMINI_CEIL_DIV(kb, t.k);
  const size_t blocks = mb * nb * kb;
  const size_t units = gemmini_dataflow(t.dataflow) == GEMMINI_OS ? mb * nb * tk : nb * kb * ti;
  const size_t loaded = mb * kb * (t.k >= kb ? 1 : tj) + nb * kb * ti;
  const size_t steps = ti * tj * tk;
  const size_t dma = loaded * dim * dim / GEMMINI_DMA_BUS_BYTES;
  if (t.hw_loop) {
    const size_t exec = blocks * (dim + 1);
    const size_t jb = GEMMINI_MIN(t.j, nb), c_blocks = GEMMINI_MIN(t.i, mb) * jb;
    const size_t slack = 8 * (dim + 1); /* the execute queue's computes hide the CPU's loop set-up */
    const size_t start = 150 > slack + 20 ? 150 - slack : 20;
    const size_t over = c_blocks > GEMMINI_STORE_QUEUE ? (c_blocks - GEMMINI_STORE_QUEUE) * (3 * dim / 2) : 0;
    /* A loop issues all its loads with its first column of C blocks (j = 0, B's block rows whole):
       only that column's computes run under them, the other jb - 1 columns after (measured: an
       M = 1 matmul of 2048 x 1000 takes 222k cycles at j = 3, 138k at j = 1) */
    const size_t first = exec / jb;
    return (first > dma ? first : dma) + (exec - first) + steps * (start + over);
  }
  const size_t array = blocks * dim, cpu = blocks * 10 + units * 60;
  return (array > cpu ? array : cpu) + dma;
}

/* An illegal tiling must not compute garbage: a mvin of 0 rows is an illegal command (a trap). */
static inline void gemmini_trap_bad_tiling(const void *dram) {
  gemmini_config_ld(0, 0, 1.0f, 0, 0);
  gemmini_mvin(dram, 0, GEMMINI_DIM, 0);
}

/* One step of tiled_matmul: the C tile at (i0, j0), k blocks from k0; ib x jb x kb blocks of it
   inside the matrices. A tile of A is t.i x t.k blocks (block (i, k) at a_base + (i*t.k + k)*DIM),
   B t.k x t.j (block (k, j) at b_base + (k*t.j + j)*DIM), C t.i x t.j in the accumulator. */
typedef struct {
  size_t M, N, K, stride_A, stride_B;
  const elem_t *A, *B;
  gemmini_tiling t;
  size_t i0, j0, k0, ib, jb, kb;
  uint32_t a_base, b_base, c_base;
  int reuse_a;       /* this row of C tiles' A panel is in the scratchpad already: no A loads */
  uint32_t acc_flag; /* the step adds onto the accumulator (a bias, or an earlier k step) */
} gemmini_mm_step;

/* mvin of block row i of the A tile, up to GEMMINI_MAX_BLOCK_LEN k blocks from k. */
static inline void gemmini_mm_load_a(const gemmini_mm_step *s, size_t i, size_t k) {
  const size_t dim = GEMMINI_DIM, r = GEMMINI_MIN(dim, s->M - s->i0 - i * dim);
  const size_t c = GEMMINI_MIN(GEMMINI_MIN(GEMMINI_MAX_BLOCK_LEN, s->kb - k) * dim, s->K - s->k0 - k * dim);
  gemmini_mvin(s->A + (s->i0 + i * dim) * s->stride_A + s->k0 + k * dim, s->a_base + (i * s->t.k + k) * dim, c, r);
}

/* mvin2 of block row k of the B tile, up to GEMMINI_MAX_BLOCK_LEN j blocks from j. */
static inline void gemmini_mm_load_b(const gemmini_mm_step *s, size_t j, size_t k) {
  const size_t dim = GEMMINI_DIM, kc = GEMMINI_MIN(dim, s->K - s->k0 - k * dim);
  const size_t c = GEMMINI_MIN(GEMMINI_MIN(GEMMINI_MAX_BLOCK_LEN, s->jb - j) * dim, s->N - s->j0 - j * dim);
  gemmini_mvin2(s->B + (s->k0 + k * dim) * s->stride_B + s->j0 + j * dim, s->b_base + (k * s->t.j + j) * dim, c, kc);
}

/* WS load unit (j, k): what the computes of block pair (j, k) need first, A's column of blocks k
   (with the next ones of the same mvins) and B's block (k, j) (likewise). */
static inline void gemmini_mm_load_ws(const gemmini_mm_step *s, size_t j, size_t k) {
  if (!s->reuse_a && j == 0 && k % GEMMINI_MAX_BLOCK_LEN == 0)
    for (size_t i = 0; i < s->ib; i++) gemmini_mm_load_a(s, i, k);
  if (j % GEMMINI_MAX_BLOCK_LEN == 0) gemmini_mm_load_b(s, j, k);
}

/* OS load unit (j, i): what C block (i, j) needs first, A's row of blocks i and B's column of
   blocks j (with the next ones of the same mvins). */
static inline void gemmini_mm_load_os(const gemmini_mm_step *s, size_t j, size_t i) {
  if (!s->reuse_a && j == 0)
    for (size_t k = 0; k < s->kb; k += GEMMINI_MAX_BLOCK_LEN) gemmini_mm_load_a(s, i, k);
  if (i == 0 && j % GEMMINI_MAX_BLOCK_LEN == 0)
    for (size_t k = 0; k < s->kb; k++) gemmini_mm_load_b(s, j, k);
}

/* WS: B block (k, j) is preloaded into the array once, and the ib row blocks of A's column k
   stream past it, each adding into its C block. Operands advance by constant steps: a few
   instructions per preload+compute pair keep the CPU from becoming the bottleneck. */
static inline void gemmini_mm_compute_ws(const gemmini_mm_step *s, size_t j, size_t k) {
  const size_t dim = GEMMINI_DIM, ib = s->ib;
  const size_t jc = GEMMINI_MIN(dim, s->N - s->j0 - j * dim), kc = GEMMINI_MIN(dim, s->K - s->k0 - k * dim);
  const uint32_t acc_flag = (s->acc_flag || k > 0) ? GEMMINI_ACCUMULATE : 0;
  const uint64_t garbage = GEMMINI_OPERAND(GEMMINI_GARBAGE, dim, dim);
  const uint64_t a_step = s->t.k * dim, c_step = s->t.j * dim;
  const uint64_t rows_mask = ~((uint64_t)0xFFFF << 48);
  const uint64_t last_rows = (uint64_t)GEMMINI_MIN(dim, s->M - s->i0 - (ib - 1) * dim) << 48;
  uint64_t a_op = GEMMINI_OPERAND(s->a_base + k * dim, kc, dim);
  uint64_t c_op = GEMMINI_OPERAND(GEMMINI_ACC_ADDR(s->c_base + j * dim) | acc_flag, jc, dim);
  if (ib == 1) a_op = (a_op & rows_mask) | last_rows, c_op = (c_op & rows_mask) | last_rows;
  GEMMINI_CMD(GEMMINI_FUNCT_PRELOAD, GEMMINI_OPERAND(s->b_base + (k * s->t.j + j) * dim, jc, kc), c_op);
  GEMMINI_CMD(GEMMINI_FUNCT_COMPUTE_PRELOADED, a_op, garbage);
  for (size_t i = 1; i < ib; i++) {
    a_op += a_step;
    c_op += c_step;
    if (i == ib - 1) a_op = (a_op & rows_mask) | last_rows, c_op = (c_op & rows_mask) | last_rows;
    GEMMINI_CMD(GEMMINI_FUNCT_PRELOAD, garbage, c_op);
    GEMMINI_CMD(GEMMINI_FUNCT_COMPUTE_ACCUMULATED, a_op, garbage);
  }
}

/* OS: C block (i, j) stays in the array while the kb block pairs (A (i, k), B (k, j)) stream
   through it; D is the garbage address (zeros), so the array starts from 0 and only the last
   compute writes the block, raw int32, to the accumulator, added onto the bias or the earlier k
   steps (acc_flag). The numerics are WS's: the same int32 products summed (wrapping) into the same
   accumulator rows, requantized by the same mvout. (The array's own output path, a rounding shift
   by in_shift into the scratchpad, is not used: it cannot apply a float acc_scale.) */
static inline void gemmini_mm_compute_os(const gemmini_mm_step *s, size_t j, size_t i) {
  const size_t dim = GEMMINI_DIM, kb = s->kb;
  const size_t r = GEMMINI_MIN(dim, s->M - s->i0 - i * dim), jc = GEMMINI_MIN(dim, s->N - s->j0 - j * dim);
  const size_t kc = GEMMINI_MIN(dim, s->K - s->k0 - (kb - 1) * dim); /* the last k block may be short */
  const uint64_t garbage = GEMMINI_OPERAND(GEMMINI_GARBAGE, dim, dim), b_step = s->t.j * dim;
  const uint32_t a_row = (uint32_t)(s->a_base + i * s->t.k * dim), b_row = (uint32_t)(s->b_base + j * dim);
  const uint64_t a_last = GEMMINI_OPERAND(a_row + (kb - 1) * dim, kc, r);
  const uint64_t b_last = GEMMINI_OPERAND(b_row + (kb - 1) * b_step, jc, kc);
  const uint64_t c_op = GEMMINI_OPERAND(GEMMINI_ACC_ADDR(s->c_base + (i * s->t.j + j) * dim) | s->acc_flag, jc, r);
  if (kb == 1) {
    GEMMINI_CMD(GEMMINI_FUNCT_PRELOAD, garbage, c_op);
    GEMMINI_CMD(GEMMINI_FUNCT_COMPUTE_PRELOADED, a_last, b_last);
    return;
  }
  uint64_t a_op = GEMMINI_OPERAND(a_row, dim, r), b_op = GEMMINI_OPERAND(b_row, jc, dim);
  GEMMINI_CMD(GEMMINI_FUNCT_PRELOAD, garbage, garbage);
  GEMMINI_CMD(GEMMINI_FUNCT_COMPUTE_PRELOADED, a_op, b_op);
  for (size_t k = 2; k < kb; k++) {
    a_op += dim;
    b_op += b_step;
    GEMMINI_CMD(GEMMINI_FUNCT_PRELOAD, garbage, garbage);
    GEMMINI_CMD(GEMMINI_FUNCT_COMPUTE_ACCUMULATED, a_op, b_op);
  }
  GEMMINI_CMD(GEMMINI_FUNCT_PRELOAD, garbage, c_op);
  GEMMINI_CMD(GEMMINI_FUNCT_COMPUTE_ACCUMULATED, a_last, b_last);
}

/* The loads and computes of one step, in units (WS: (j, k) block pairs, j-major; OS: C blocks
   (i, j), j-major): the loads of unit q + lookahead are issued before the computes of unit q, so
   the load queue runs ahead of the array (hiding DMA latency) without stalling the CPU on a full
   load queue. (Nested loops, not a division per unit: the CPU's issue work per unit is what
   small tiles pay for. Measured: out of line, the per-step call and set-up cost more than the
   registers they save.) */
static inline void gemmini_mm_step_ws(const gemmini_mm_step *step) {
  const gemmini_mm_step s = *step;
  const size_t units = s.jb * s.kb, ahead = s.t.lookahead ? s.t.lookahead : GEMMINI_LOOKAHEAD;
  size_t loaded = 0, lj = 0, lk = 0; /* the next load unit */
  for (size_t j = 0, q = 0; j < s.jb; j++)
    for (size_t k = 0; k < s.kb; k++, q++) {
      for (; loaded < units && loaded <= q + ahead; loaded++) {
        gemmini_mm_load_ws(&s, lj, lk);
        if (++lk == s.kb) lk = 0, lj++;
      }
      gemmini_mm_compute_ws(&s, j, k);
    }
}

static inline void gemmini_mm_step_os(const gemmini_mm_step *step) {
  const gemmini_mm_step s = *step;
  const size_t units = s.jb * s.ib, ahead = s.t.lookahead ? s.t.lookahead : GEMMINI_LOOKAHEAD;
  size_t loaded = 0, lj = 0, li = 0; /* the next load unit */
  for (size_t j = 0, q = 0; j < s.jb; j++)
    for (size_t i = 0; i < s.ib; i++, q++) {
      for (; loaded < units && loaded <= q + ahead; loaded++) {
        gemmini_mm_load_os(&s, lj, li);
        if (++li == s.ib) li = 0, lj++;
      }
      gemmini_mm_compute_os(&s, j, i);
    }
}

/* One step of tiled_matmul as one LOOP_WS: the same tile, its bias (first k step) and its stores
   (last k step) included; the unroller keeps its own buffers (reuse_a: the A panel of the last
   loop). */
static inline void gemmini_mm_step_loop(const gemmini_mm_step *s, const acc_t *D, size_t stride_D, void *C,
                                        size_t stride_C, int act, int c_int32) {
  const size_t dim = GEMMINI_DIM, last_k = s->k0 + s->t.k * dim >= s->K;
  const size_t pad_i = s->ib * dim - (s->M - s->i0 < s->ib * dim ? s->M - s->i0 : s->ib * dim);
  const size_t pad_j = s->jb * dim - (s->N - s->j0 < s->jb * dim ? s->N - s->j0 : s->jb * dim);
  const size_t pad_k = s->kb * dim - (s->K - s->k0 < s->kb * dim ? s->K - s->k0 : s->kb * dim);
  const acc_t *d = D != NULL && s->k0 == 0 ? D + s->i0 * stride_D + s->j0 : NULL;
  const size_t c_size = c_int32 ? sizeof(acc_t) : sizeof(elem_t);
  void *c = last_k ? (char *)C + (s->i0 * stride_C + s->j0) * c_size : NULL;
  gemmini_loop_ws(s->ib, s->jb, s->kb, pad_i, pad_j, pad_k, s->A + s->i0 * s->stride_A + s->k0,
                  s->B + s->k0 * s->stride_B + s->j0, d, c, s->stride_A, s->stride_B, stride_D, stride_C, c_int32,
                  s->k0 > 0, act, s->reuse_a);
}

/* C[M][N] = act(scale(A[M][K] · B[K][N] + D)), int8 x int8 -> int32 accumulation.
 *   strides: row strides in elements; stride_D = 0 broadcasts one bias row (a per-column bias).
 *   D: int32 bias, or NULL. a_scale/b_scale: applied by mvin (keep 1.0 for already-int8 data).
 *   c_int32 = 0: C is int8, act(sat8(round_half_even(acc * acc_scale)));
 *   c_int32 = 1: C is the raw int32 accumulator (acc_scale and act ignored).
 * Either dataflow (t.dataflow), bit-identical: the bias seeds the accumulator (mvin3), the array's
 * int32 sums are added onto it, mvout requantizes. WS: blocks of B stay in the array while every
 * row block of A streams past; OS: blocks of C stay in the array while their row of A and column
 * of B stream through. A tiling gemmini_tiling_ok rejects traps (illegal instruction). */
static inline void tiled_matmul(size_t M, size_t N, size_t K, const elem_t *A, const elem_t *B, const acc_t *D,
                                void *C, size_t stride_A, size_t stride_B, size_t stride_D, size_t stride_C,
                                float a_scale, float b_scale, float acc_scale, int act, int c_int32,
                                gemmini_tiling t) {
  if (!gemmini_tiling_ok(t)) {
    gemmini_trap_bad_tiling(A);
    return;
  }
  /* A broadcast bias of zeros (a quantized MatMul without bias) adds nothing: not loading it saves
     a mvin3 of DIM int32 rows per C block, which a LOOP_WS tile waits for before its first computes
     (about 11% of a 512^3 matmul's cycles at DIM 16). One pass over a row, stopped at a non-zero. */
  if (D != NULL && stride_D == 0) {
    size_t n = 0;
    while (n < N && D[n] == 0) n++;
    if (n == N) D = NULL;
  }
  const size_t dim = GEMMINI_DIM;
  const int flow = gemmini_dataflow(t.dataflow), os = flow == GEMMINI_OS;
  const size_t c_size = c_int32 ? sizeof(acc_t) : sizeof(elem_t);
  const size_t a_rows = t.i * t.k * dim, b_rows = t.k * t.j * dim, c_rows = t.i * t.j * dim;
  unsigned a_buf = 1, b_buf = 0, c_buf = 0;
  size_t a_rows_loaded = (size_t)-1; /* i0 whose whole A panel is in the scratchpad, if any */
  gemmini_mm_step s;
  s.M = M, s.N = N, s.K = K, s.stride_A = stride_A, s.stride_B = stride_B, s.A = A, s.B = B, s.t = t;
  const int hw = t.hw_loop != 0; /* LOOP_WS does the bias loads and the stores of its tile too */

  gemmini_config_ex(flow, GEMMINI_NO_ACT, 0, 0, 1, 1, 0);
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
      if (D != NULL && !hw) {
        for (size_t i = 0; i < ib; i++)
          for (size_t j = 0; j < jb; j++) {
            size_t r = GEMMINI_MIN(dim, M - i0 - i * dim), c = GEMMINI_MIN(dim, N - j0 - j * dim);
            gemmini_mvin3(D + (i0 + i * dim) * stride_D + j0 + j * dim,
                          GEMMINI_ACC_ADDR(c_base + (i * t.j + j) * dim), c, r);
          }
      }
      for (size_t k0 = 0; k0 < K; k0 += t.k * dim) {
        /* When one k step spans all of K, the A panel of this row of C tiles stays in the
           scratchpad and is reused by every tile of the row; otherwise A and B are double-buffered. */
        const int reuse_a = k0 == 0 && t.k * dim >= K && a_rows_loaded == i0;
        if (!reuse_a) a_buf ^= 1;
        a_rows_loaded = t.k * dim >= K ? i0 : (size_t)-1;
        b_buf ^= 1;
        s.i0 = i0, s.j0 = j0, s.k0 = k0, s.ib = ib, s.jb = jb, s.kb = GEMMINI_MIN(t.k, GEMMINI_CEIL_DIV(K - k0, dim));
        s.a_base = (uint32_t)(a_buf * a_rows), s.b_base = (uint32_t)(2 * a_rows + b_buf * b_rows);
        s.c_base = c_base, s.reuse_a = reuse_a;
        s.acc_flag = (D != NULL || k0 > 0) ? GEMMINI_ACCUMULATE : 0;
        if (hw) gemmini_mm_step_loop(&s, D, stride_D, C, stride_C, act, c_int32);
        else if (os) gemmini_mm_step_os(&s);
        else gemmini_mm_step_ws(&s);
      }
      for (size_t i = 0; i < ib && !hw; i++)
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

/* ---------------------------------------------------------------- residual add */
/* C[i] = act(sat8(round_half_even((A'[i] + B'[i]) * c_scale))) over n int8 elements, where
 * A'[i] = sat32(round_half_even(A[i] * a_scale)) and likewise B' (the mvin scale into the
 * accumulator). A is moved into the accumulator scaled, B is added onto it (mvin with the accumulate
 * flag), mvout requantizes: no array computes. The caller chooses the scales; a common factor 2^f
 * in a_scale and b_scale with c_scale = 2^-f keeps f fractional bits between the two roundings,
 * so the result is the correctly rounded (A*sa + B*sb) / sc up to 2^-f LSB (tvmx's offload does so).
 * The elements are viewed as rows of W = DIM * (DMA burst / DIM) bytes: one mvin carries DIM such
 * rows as W/DIM accumulator blocks, each stored by one mvout; accumulator slots rotate so the loads
 * of the next rows overlap the stores of the previous ones. gemmini_resadd_n does so for `count` (2 or
 * 3) operands, each moved in by its own mvin under its own scale (the first overwrites, the others
 * accumulate). */
static inline void gemmini_resadd_n(size_t n, size_t count, const elem_t *const *in, const float *scales, elem_t *C,
                                    float c_scale, int act) {
  const size_t dim = GEMMINI_DIM, blocks = GEMMINI_MAX_BLOCK_LEN, width = dim * blocks;
  const size_t slot_rows = blocks * dim, slots = GEMMINI_ACC_ROWS / slot_rows;
  for (size_t k = 0; k < count; k++) gemmini_config_ld(k, width, scales[k], 1, dim);
  gemmini_config_st(width, act, c_scale);
  size_t slot = 0;
  for (size_t at = 0; at < n; slot = (slot + 1) % slots) {
    /* up to DIM rows of `width` elements; a last, shorter row goes alone */
    const size_t left = n - at, full = GEMMINI_MIN(dim, left / width);
    const size_t rows = full ? full : 1, cols = full ? width : left;
    const uint32_t base = (uint32_t)(slot * slot_rows);
    gemmini_mvin(in[0] + at, GEMMINI_ACC_ADDR(base), cols, rows);
    gemmini_mvin2(in[1] + at, GEMMINI_ACC_ADDR(base) | GEMMINI_ACCUMULATE, cols, rows);
    if (count > 2) gemmini_mvin3(in[2] + at, GEMMINI_ACC_ADDR(base) | GEMMINI_ACCUMULATE, cols, rows);
    for (size_t b = 0; b * dim < cols; b++)
      gemmini_mvout(C + at + b * dim, GEMMINI_ACC_ADDR(base + b * dim), GEMMINI_MIN(dim, cols - b * dim), rows);
    at += rows * cols;
  }
  gemmini_fence();
}

static inline void tiled_resadd_auto(size_t n, const elem_t *A, const elem_t *B, elem_t *C, float a_scale,
                                     float b_scale, float c_scale, int act) {
  const elem_t *in[2] = {A, B};
  const float scales[2] = {a_scale, b_scale};
  gemmini_resadd_n(n, 2, in, scales, C, c_scale, act);
}

/* C[i] = act(sat8(round_half_even((A'[i] + B'[i] + D'[i]) * c_scale))): a three-operand residual
 * add (an ONNX Sum), the same way, with D moved in by mvin3 under its own scale. */
static inline void tiled_resadd3_auto(size_t n, const elem_t *A, const elem_t *B, const elem_t *D, elem_t *C,
                                      float a_scale, float b_scale, float d_scale, float c_scale, int act) {
  const elem_t *in[3] = {A, B, D};
  const float scales[3] = {a_scale, b_scale, d_scale};
  gemmini_resadd_n(n, 3, in, scales, C, c_scale, act);
}

/* ---------------------------------------------------------------- convolution */
/* NHWC int8 conv2d as an implicit GEMM: the accelerator reads the NHWC input itself (strided mvin),
 * nothing is copied or rearranged on the CPU.
 *
 * Scratchpad layout of an input band. The padded input (coordinates iy' = iy + pad, ix' = ix + pad)
 * is split into stride x stride phase planes, plane (py, px) holding the pixels with iy' % stride == py
 * and ix' % stride == px, one pixel (DIM channels of one channel block) per scratchpad row, plane rows
 * `P` rows apart. Output pixel (oy, ox) under kernel tap (ky, kx) reads plane (ky % s, kx % s) at
 * plane row oy + ky / s and column ox + kx / s. Numbering the output pixels of a tile
 * v = oy_rel * P + ox_rel ("virtual" pixels: the P - out_w columns past the row end are computed and
 * never stored), the A row of every tap is `plane base + (ky / s) * P + kx / s + v`: consecutive
 * virtual pixels read consecutive scratchpad rows, so one compute covers DIM of them across output
 * rows, and the accumulator row of a virtual pixel is v as well.
 * Padding: the input positions a real output pixel can touch outside the image are zero rows of
 * the band (written by mvin3 from a zero row); nothing outside the input buffer is ever read.
 *
 * Work is cut into chunks (output rows x output columns of one image, x a range of output-channel
 * blocks, x a range of input-channel blocks); bands, weights and accumulator tiles are double
 * buffered when they change between chunks, and the loads of the next chunk and the stores of the
 * previous accumulator tile are issued one at a time between the computes of the current chunk, so
 * they run under the computes instead of stalling the CPU on a full queue.
 * Numerics are those of im2col + tiled_matmul: int8 x int8 summed in the int32 accumulator, seeded
 * with the bias by mvin3, requantized by mvout (acc_scale, round half to even, saturate, ReLU).
 *
 * Channel slices: pixels are in_stride / out_stride elements apart in the input / output, so a conv
 * can read and write a channel slice of wider tensors (grouped convs, concatenations); the strided
 * mvins and mvouts take them as their DRAM strides, and channels outside the slice are untouched.
 *
 * Max pooling is fused into the stores, as in Gemmini: a tile's conv outputs stay in the
 * accumulator and each pooled mvout (gemmini_config_st_pool) writes the max over every pooling
 * window of the requantized values; max commutes with the monotone requantization and ReLU, so
 * this equals conv -> requant -> ReLU -> maxpool. Tiles are then cut in pooled rows and columns and
 * hold every conv output their windows read: where windows overlap (pool_size > pool_stride), the
 * conv rows and columns shared by two tiles are computed by both. Conv outputs that no window reads
 * (floor mode) are not computed. */
typedef struct {
  /* rows and columns of the written output per tile (pooled ones when pooling), output-channel
     blocks and input-channel blocks per chunk; the dataflow (GEMMINI_FLOW_*); hw_loop: 1 = each
     chunk is one LOOP_CONV_WS (WS only, GEMMINI_HAS_LOOP_CONV), 0 = the CPU issues every command */
  size_t th, tw, tj, tk, dataflow, hw_loop;
  /* th == 0: the conv runs as one tiled_matmul with this tiling: a 1x1 stride-1 conv without
     padding or pooling on its input, any other without pooling by im2col (see tiled_conv_ex) */
  gemmini_tiling matmul;
  /* pack: 1 = taps packed into channels (the CPU copies the padded input, see
     gemmini_conv_pack_input; either path then runs it): the conv runs as a kh x 1 conv over
     kw * in_c channels, tk counting the packed channel blocks. Last, so that positional
     initializers without it get 0. */
  size_t pack;
} gemmini_conv_tiling;

/* Bytes of the static buffer that holds a tap-packed conv's zero-padded input or an im2col conv's
   input matrix (0: neither). The default holds a 224 x 224 RGB image padded by 3 (ResNet's stem)
   and the 49 x 4608 im2col of a 3x3 conv over 7 x 7 x 512 (ResNet's last stage); only kernels that
   pack or im2col use it. */
#ifndef GEMMINI_PACK_BYTES
#define GEMMINI_PACK_BYTES (256 * 1024)
#endif

typedef struct {
  size_t n, py0, px0, j0, k0;  /* position: image, first written row and column, channel blocks */
  size_t ph, pw, jb, kb;       /* written rows and columns, output- and input-channel blocks */
  size_t oy0, oh, ox0, ow;     /* the conv outputs computed: first row, rows, first column, columns */
  size_t upad, lpad;           /* pooling padding above and left of them */
  uint32_t band, wgt, acc; /* bases: band and weights in the scratchpad, tile in the accumulator */
  int load_band, load_wgt, new_tile, last_of_tile;
} gemmini_conv_chunk;

typedef struct {
  size_t batch, in_h, in_w, in_c, in_stride, out_c, out_stride, out_h, out_w, s, pad, kh, kw;
  /* the conv as given; in_h .. kw above are those of the conv the tiling runs (tap-packed or not) */
  size_t src_h, src_w, src_c, src_pad, src_kw;
  /* pooling: size, stride, padding (1, 1, 0 without), and the written output's rows and columns */
  int pool;
  size_t psz, pst, ppad, oph, opw;
  const elem_t *input, *weights;
  const acc_t *bias;
  elem_t *output;
  float acc_scale;
  int act;
  gemmini_conv_tiling t;
  size_t cth, ctw; /* conv outputs of a full tile: rows, columns */
  size_t cbk, ob, sy, sx, bh, p, cs, vt, br, wr, ar;
  unsigned nb, nw, na;
  /* residency: key of what each buffer holds, and which buffer was used last */
  size_t band_key[2][4], wgt_key[2][2];
  /* band buffer whose padding columns are zero already (one column tile, so the same columns are
     padding in every band, and every row of the buffer has been written once) */
  int band_clean[2];
  unsigned band_last, wgt_last, acc_last;
  /* loader: prefetches chunk `ld` (0 band rows, 1 weights, 2 bias, 3 done) */
  const gemmini_conv_chunk *ld;
  unsigned ld_phase;
  size_t ld_a, ld_b, ld_c;
  uint64_t ld_rs1, ld_rs2; /* bias: the next mvin3's operands (ld_b = rows left for output block ld_a) */
  /* stores of a finished accumulator tile */
  const gemmini_conv_chunk *st;
  int st_active;
  size_t st_j, st_y, st_x;
} gemmini_conv_ctx;

/* The shape of a conv (no buffers). Returns 0 if it is empty or its pooling cannot be fused:
   Gemmini's pool size and stride are 1..3 and its padding is below the pool size. */
static inline int gemmini_conv_init(gemmini_conv_ctx *c, size_t batch, size_t in_h, size_t in_w, size_t in_c,
                                    size_t out_c, size_t out_h, size_t out_w, size_t stride, size_t pad, size_t kh,
                                    size_t kw, size_t pool_size, size_t pool_stride, size_t pool_pad) {
  c->batch = batch, c->in_h = in_h, c->in_w = in_w, c->in_c = in_c, c->out_c = out_c, c->out_h = out_h;
  c->out_w = out_w, c->s = stride, c->pad = pad, c->kh = kh, c->kw = kw;
  c->src_h = in_h, c->src_w = in_w, c->src_c = in_c, c->src_pad = pad, c->src_kw = kw;
  c->cbk = GEMMINI_CEIL_DIV(in_c, GEMMINI_DIM), c->ob = GEMMINI_CEIL_DIV(out_c, GEMMINI_DIM);
  c->pool = pool_size != 0;
  c->psz = c->pool ? pool_size : 1, c->pst = c->pool ? pool_stride : 1, c->ppad = c->pool ? pool_pad : 0;
  if (batch == 0 || out_h == 0 || out_w == 0 || out_c == 0) return 0;
  if (c->psz > 3 || c->pst == 0 || c->pst > 3 || c->ppad >= c->psz) return 0;
  if (out_h + 2 * c->ppad < c->psz || out_w + 2 * c->ppad < c->psz) return 0;
  c->oph = (out_h + 2 * c->ppad - c->psz) / c->pst + 1;
  c->opw = (out_w + 2 * c->ppad - c->psz) / c->pst + 1;
  return 1;
}

/* The conv rows (or columns; `out` of them) that written rows [p0, p0 + n) need: returns how many,
   with the first in *first and the pooling padding before it in *pad. Without pooling, the same
   rows. Pooling window r covers padded rows [r * stride, r * stride + size), clipped to the conv. */
static inline size_t gemmini_conv_span(const gemmini_conv_ctx *c, size_t p0, size_t n, size_t out, size_t *first,
                                       size_t *pad) {
  const size_t start = p0 * c->pst, end = GEMMINI_MIN(out + c->ppad, (p0 + n - 1) * c->pst + c->psz);
  *first = start > c->ppad ? start - c->ppad : 0;
  *pad = start < c->ppad ? c->ppad - start : 0;
  return end - c->ppad - *first;
}

/* Whether LOOP_CONV_WS runs every chunk of tiling t (conv outputs th x tw per full tile): the
   configuration has the unroller and WS; a full tile's input (Gemmini's layout: every padded input
   pixel of the tile, one row per channel block) and weights fit half the scratchpad and its
   outputs half the accumulator; the sizes fit the loop's fields. */
static inline int gemmini_conv_loop_fits(const gemmini_conv_ctx *c, gemmini_conv_tiling t, size_t th, size_t tw) {
  const size_t dim = GEMMINI_DIM;
  if (t.hw_loop != 1 || !GEMMINI_HAS_LOOP_CONV || gemmini_dataflow(t.dataflow) != GEMMINI_WS) return 0;
  const size_t irows = (th - 1) * c->s + c->kh, icols = (tw - 1) * c->s + c->kw;
  const size_t kchs = GEMMINI_MIN(t.tk * dim, c->in_c), pochs = GEMMINI_MIN(t.tj * dim, c->out_c);
  const size_t in_rows = t.tk * irows * icols, w_rows = GEMMINI_CEIL_DIV(pochs, dim) * c->kh * c->kw * kchs;
  if (in_rows + w_rows > GEMMINI_SP_ROWS / 2 || GEMMINI_CEIL_DIV(pochs, dim) * th * tw > GEMMINI_ACC_ROWS / 2)
    return 0;
  const size_t big = 0xFFFF;
  return c->in_h <= big && c->in_w <= big && c->in_c <= big && c->out_c <= big && c->out_h <= big &&
         c->out_w <= big && c->oph <= big && c->opw <= big && c->s <= 0xFF && c->pad <= 0xFF && c->kh <= big &&
         c->kw <= big && irows <= big && icols <= big && c->pad <= 0xFF;
}

/* Tap packing. A conv with few input channels (an RGB stem) fills few array rows per tap: 3 of DIM
   for each of a 7x7 kernel's 49 taps. In NHWC, the kw taps of one kernel row read kw * in_c
   consecutive bytes of a (zero-padded) input row, so the conv equals a kh x 1 conv, same stride, no
   padding, whose "pixel" x holds the kw * in_c channels starting at padded pixel x: pixels in_c
   bytes apart that overlap in memory, which the strided mvin reads as they are. The HWIO weights
   [kh][kw][in_c][out_c] are already those of [kh][1][kw * in_c][out_c]. The padding has to be real
   zeros in memory, so the input is first copied into a padded buffer (gemmini_pack_buf), rows
   rounded up to 8 bytes for a word-wise copy. Packed geometry: rows, pixels per row, channels. */
static inline size_t gemmini_conv_packed_w(const gemmini_conv_ctx *c) {
  size_t w = c->src_w + 2 * c->src_pad;
  while ((w * c->src_c) % 8) w++;
  return w;
}
static inline int gemmini_conv_can_pack(const gemmini_conv_ctx *c) {
  const size_t bytes = c->batch * (c->src_h + 2 * c->src_pad) * gemmini_conv_packed_w(c) * c->src_c;
  /* worth it only where packing needs fewer channel blocks per kernel row */
  return c->src_kw > 1 && GEMMINI_CEIL_DIV(c->src_kw * c->src_c, GEMMINI_DIM) <
                              c->src_kw * GEMMINI_CEIL_DIV(c->src_c, GEMMINI_DIM) &&
         bytes + 8 <= GEMMINI_PACK_BYTES;
}
static inline void gemmini_conv_geometry(gemmini_conv_ctx *c, int pack) {
  c->in_h = pack ? c->src_h + 2 * c->src_pad : c->src_h;
  c->in_w = pack ? gemmini_conv_packed_w(c) : c->src_w;
  c->in_c = pack ? c->src_kw * c->src_c : c->src_c;
  c->pad = pack ? 0 : c->src_pad, c->kw = pack ? 1 : c->src_kw;
  c->cbk = GEMMINI_CEIL_DIV(c->in_c, GEMMINI_DIM);
}

static inline int gemmini_conv_plan(gemmini_conv_ctx *c, gemmini_conv_tiling t) {
  gemmini_conv_geometry(c, 0);
  if (t.th == 0 || t.tw == 0 || t.tj == 0 || t.tk == 0 || gemmini_dataflow(t.dataflow) < 0) return 0;
  if (t.pack > 1 || (t.pack && !gemmini_conv_can_pack(c))) return 0;
  gemmini_conv_geometry(c, (int)t.pack);
  const size_t s = c->s;
  const size_t th = GEMMINI_MIN(c->out_h, (t.th - 1) * c->pst + c->psz);
  const size_t tw = GEMMINI_MIN(c->out_w, (t.tw - 1) * c->pst + c->psz);
  const size_t p = tw + (c->kw - 1) / s, bh = th + (c->kh - 1) / s;
  const size_t sy = GEMMINI_MIN(s, c->kh), sx = GEMMINI_MIN(s, c->kw);
  const size_t cs = sy * sx * bh * p, br = t.tk * cs, wr = c->kh * c->kw * t.tk * t.tj * GEMMINI_DIM;
  const size_t vt = (th - 1) * p + tw, ar = t.tj * vt;
  const size_t tiles = c->batch * GEMMINI_CEIL_DIV(c->oph, t.th) * GEMMINI_CEIL_DIV(c->opw, t.tw);
  const size_t jt = GEMMINI_CEIL_DIV(c->ob, t.tj), kt = GEMMINI_CEIL_DIV(c->cbk, t.tk);
  const unsigned nb = tiles * kt > 1 ? 2 : 1, nw = jt * kt > 1 ? 2 : 1, na = tiles * jt > 1 ? 2 : 1;
  if (nw * wr + nb * br > GEMMINI_SP_ROWS || na * ar > GEMMINI_ACC_ROWS || cs > 0xFFFF) return 0;
  /* the pooling config's field widths: 8-bit tile sizes and image width (unused, so unbounded, when
     each tile writes a single pooled row), 12-bit accumulator pitch */
  if (c->pool && (th > 255 || tw > 255 || t.th > 255 || t.tw > 255 || p > 0xFFF || (t.th > 1 && c->opw > 255)))
    return 0;
  if (t.hw_loop && !gemmini_conv_loop_fits(c, t, th, tw)) return 0;
  c->t = t;
  c->cth = th, c->ctw = tw;
  c->sy = sy, c->sx = sx, c->bh = bh, c->p = p, c->cs = cs, c->vt = vt, c->br = br, c->wr = wr, c->ar = ar;
  c->nb = nb, c->nw = nw, c->na = na;
  return 1;
}

/* The tiles along one axis (`total` written rows, `t` per tile, `out` conv rows) as classes of
   equal conv extent: cnt[i] tiles of ext[i] conv rows. The tiles at the ends (the last one cut
   short; with pooling padding, up to three at each end clipped by it) are classed one by one, those
   between (all full) at once. */
static inline unsigned gemmini_conv_classes(const gemmini_conv_ctx *c, size_t total, size_t t, size_t out,
                                            size_t ext[7], size_t cnt[7]) {
  const size_t nt = GEMMINI_CEIL_DIV(total, t), lo = c->ppad ? 3 : 0, hi = c->ppad ? 3 : 1;
  unsigned k = 0;
  for (size_t i = 0; i < nt;) {
    const size_t n = i == lo && nt > lo + hi + 1 ? nt - lo - hi : 1;
    size_t first, pad;
    const size_t e = gemmini_conv_span(c, i * t, GEMMINI_MIN(t, total - i * t), out, &first, &pad);
    unsigned j = 0;
    while (j < k && ext[j] != e) j++;
    if (j == k) ext[k] = e, cnt[k++] = 0;
    cnt[j] += n;
    i += n;
  }
  return k;
}

/* Estimated cost (in cycles, roughly) of the tiling last set by gemmini_conv_plan: computes (each
   occupies the array DIM cycles, whatever its number of rows: short blocks of virtual pixels waste
   it, and so do conv rows that overlapping pooling tiles both compute; and the CPU needs ~8 cycles
   to issue one), CPU work per weight preload and per chunk (command issue, pipeline fill at chunk
   boundaries), and weight rows loaded again when they are not resident. */
#ifndef GEMMINI_CONV_LOOP_FILL
#define GEMMINI_CONV_LOOP_FILL 100 /* cycles per LOOP_CONV_WS chunk: its configuration, DMA and pipeline latency */
#endif
static inline size_t gemmini_conv_cost(const gemmini_conv_ctx *c) {
  const size_t dim = GEMMINI_DIM;
  size_t hs[7], hn[7], ws[7], wn[7];
  const unsigned ny = gemmini_conv_classes(c, c->oph, c->t.th, c->out_h, hs, hn);
  const unsigned nx = gemmini_conv_classes(c, c->opw, c->t.tw, c->out_w, ws, wn);
  size_t blocks = 0, rows = 0, cols = 0; /* blocks of DIM virtual pixels over the tiles of one image */
  for (unsigned y = 0; y < ny; y++) rows += hn[y];
  for (unsigned x = 0; x < nx; x++) cols += wn[x];
  for (unsigned y = 0; y < ny; y++)
    for (unsigned x = 0; x < nx; x++) blocks += hn[y] * wn[x] * GEMMINI_CEIL_DIV((hs[y] - 1) * c->p + ws[x], dim);
  const size_t taps = c->kh * c->kw, tiles = c->batch * rows * cols;
  const size_t chunks = tiles * GEMMINI_CEIL_DIV(c->ob, c->t.tj) * GEMMINI_CEIL_DIV(c->cbk, c->t.tk);
  const size_t weight_rows = taps * c->cbk * c->ob * dim * (c->nw == 2 ? tiles : 1);
  const size_t groups = tiles * c->ob * taps * c->cbk; /* weight preloads, each with its loop set-up */
  const size_t per_compute = dim > 8 ? dim : 8;       /* the CPU issues a preload+compute pair in ~8 */
  /* tap packing: the CPU copies the input into the padded buffer, ~1 cycle per 2 bytes */
  const size_t copy = c->t.pack ? c->batch * c->in_h * c->in_w * c->src_c / 2 : 0;
  if (c->t.hw_loop) {
    /* LOOP_CONV_WS: a compute per DIM conv outputs of one row, DIM cycles each on the array; every
       chunk loads its padded input and its weights again, about one cycle per row of DIM channels.
       A loop's computes start once its loads are issued, so of n chunks the first one's loads and the
       last one's computes are not hidden: l + a + (n - 1) max(l, a), plus a fill per chunk. (The bias
       rows, an int32 row per conv output, are left out as the CPU path's estimate leaves them out.) */
    size_t computes = 0, in_rows = 0;
    for (unsigned y = 0; y < ny; y++)
      for (unsigned x = 0; x < nx; x++) {
        computes += hn[y] * wn[x] * hs[y] * GEMMINI_CEIL_DIV(ws[x], dim);
        in_rows += hn[y] * wn[x] * ((hs[y] - 1) * c->s + c->kh) * ((ws[x] - 1) * c->s + c->kw);
      }
    const size_t array = c->batch * computes * c->ob * taps * c->cbk * dim;
    const size_t loads = c->batch * in_rows * c->cbk * GEMMINI_CEIL_DIV(c->ob, c->t.tj) +
                         tiles * taps * c->in_c * c->ob;
    const size_t hidden = (chunks - 1) * (array > loads ? array : loads) / chunks;
    return hidden + (array + loads) / chunks + chunks * GEMMINI_CONV_LOOP_FILL + copy;
  }
  return c->batch * blocks * c->ob * taps * c->cbk * per_compute + groups * 40 + chunks * 600 + 2 * weight_rows +
         copy;
}

/* Picks the cheapest tiling (gemmini_conv_cost) among: all of K per chunk if it fits (fewer input
   channel blocks otherwise), the full output width if it fits, output-channel blocks per chunk
   ob, ob/2, ob/4, ... and, for each, the output rows per tile ceil(rows / n) for every n (rows and
   widths of the written output: pooled ones when pooling).
   Large tiles reuse each preloaded weight block for more computes and waste less of the last
   block; all output channels in one chunk keep the weights resident. With overlapping pooling
   windows, every tile also computes the conv rows and columns it shares with its neighbours;
   squarer tiles share fewer, so widths of 1/2, 1/3 and 1/4 of the full one are tried too.
   Returns 0 if not even a 1 x 1 pixel tile fits. */
static inline int gemmini_conv_auto_tiling_issue(gemmini_conv_ctx *c, size_t hw_loop, size_t pack) {
  gemmini_conv_geometry(c, (int)pack); /* (the channel blocks of the conv that runs) */
  gemmini_conv_tiling t = {1, c->opw, c->ob, c->cbk, GEMMINI_FLOW_OF_DEFAULT, hw_loop, {0, 0, 0, 0, 0, 0}, pack};
  while (!gemmini_conv_plan(c, t)) {
    if (t.tj > 1) t.tj--;
    else if (t.tk > 1) t.tk--;
    else if (t.tw > 1) t.tw = GEMMINI_CEIL_DIV(t.tw, 2);
    else return 0;
  }
  gemmini_conv_tiling best = t;
  size_t best_cost = gemmini_conv_cost(c);
  const size_t widths = c->psz > c->pst ? 4 : 1;
  for (size_t m = 1; m <= widths; m++) {
    const size_t tw = GEMMINI_CEIL_DIV(t.tw, m);
    if (m > 1 && tw == GEMMINI_CEIL_DIV(t.tw, m - 1)) continue;
    for (size_t tj = t.tj;; tj = GEMMINI_CEIL_DIV(tj, 2)) {
      size_t prev = 0;
      for (size_t n = 1; n <= c->oph; n++) {
        const size_t th = GEMMINI_CEIL_DIV(c->oph, n);
        if (th == prev) continue;
        prev = th;
        gemmini_conv_tiling u = {th, tw, tj, t.tk, t.dataflow, hw_loop, {0, 0, 0, 0, 0, 0}, pack};
        if (!gemmini_conv_plan(c, u)) continue;
        const size_t cost = gemmini_conv_cost(c);
        if (cost < best_cost) best = u, best_cost = cost;
      }
      if (tj == 1) break;
    }
  }
  return gemmini_conv_plan(c, best);
}

/* LOOP_CONV_WS where the configuration has it (and WS) and a tiling fits it, else the CPU path;
   then the tap-packed conv on the CPU path instead where it can pack and is estimated cheaper. */
static inline int gemmini_conv_auto_tiling(gemmini_conv_ctx *c) {
  if (!(GEMMINI_HAS_LOOP_CONV && GEMMINI_FLOW_OF_DEFAULT == GEMMINI_FLOW_WS && gemmini_conv_auto_tiling_issue(c, 1, 0)) &&
      !gemmini_conv_auto_tiling_issue(c, 0, 0))
    return 0;
  gemmini_conv_geometry(c, 0);
  if (!gemmini_conv_can_pack(c)) return 1;
  const gemmini_conv_tiling plain = c->t;
  const size_t plain_cost = gemmini_conv_cost(c);
  gemmini_conv_tiling best = plain;
  size_t best_cost = plain_cost;
  for (size_t hw_loop = 0; hw_loop < 2; hw_loop++) {
    if (hw_loop && !(GEMMINI_HAS_LOOP_CONV && GEMMINI_FLOW_OF_DEFAULT == GEMMINI_FLOW_WS)) continue;
    if (gemmini_conv_auto_tiling_issue(c, hw_loop, 1) && gemmini_conv_cost(c) < best_cost)
      best = c->t, best_cost = gemmini_conv_cost(c);
  }
  return gemmini_conv_plan(c, best);
}

/* The tiling tiled_conv_ex chooses when given none, as a pure function of the shape (plain C, no
   command issued: the compiler can run it on the host too). Returns 0 if no tiling fits the
   scratchpad and accumulator, or the pooling cannot be fused (see tiled_conv_ex): tiled_conv_ex
   traps on such a shape. (Given no tiling, tiled_conv_ex runs a 1x1 stride-1 conv without padding
   or pooling as a plain matmul instead.) */
static inline int gemmini_conv_choose_tiling(size_t batch, size_t in_h, size_t in_w, size_t in_c, size_t out_c,
                                             size_t out_h, size_t out_w, size_t stride, size_t pad, size_t kh,
                                             size_t kw, size_t pool_size, size_t pool_stride, size_t pool_pad,
                                             gemmini_conv_tiling *out) {
  gemmini_conv_ctx c;
  if (!gemmini_conv_init(&c, batch, in_h, in_w, in_c, out_c, out_h, out_w, stride, pad, kh, kw, pool_size,
                         pool_stride, pool_pad) ||
      !gemmini_conv_auto_tiling(&c))
    return 0;
  *out = c.t;
  return 1;
}

/* Chunk order: image, output-row tile, output-column tile, output-channel blocks, input-channel
   blocks (innermost, so an accumulator tile collects all of K before it is stored). */
static inline int gemmini_conv_next(const gemmini_conv_ctx *c, const gemmini_conv_chunk *from,
                                    gemmini_conv_chunk *ch) {
  const gemmini_conv_tiling t = c->t;
  ch->n = from->n, ch->py0 = from->py0, ch->px0 = from->px0, ch->j0 = from->j0, ch->k0 = from->k0;
  ch->k0 += t.tk;
  if (ch->k0 >= c->cbk) {
    ch->k0 = 0;
    ch->j0 += t.tj;
    if (ch->j0 >= c->ob) {
      ch->j0 = 0;
      ch->px0 += t.tw;
      if (ch->px0 >= c->opw) {
        ch->px0 = 0;
        ch->py0 += t.th;
        if (ch->py0 >= c->oph) {
          ch->py0 = 0;
          if (++ch->n >= c->batch) return 0;
        }
      }
    }
  }
  return 1;
}

/* Geometry and buffers of chunk `ch` (its position fields set): reuses a buffer that already holds
   its band / weights, otherwise takes the other one and marks it for loading. */
static inline void gemmini_conv_prepare(gemmini_conv_ctx *c, gemmini_conv_chunk *ch) {
  const gemmini_conv_tiling t = c->t;
  ch->ph = GEMMINI_MIN(t.th, c->oph - ch->py0);
  ch->pw = GEMMINI_MIN(t.tw, c->opw - ch->px0);
  ch->oh = gemmini_conv_span(c, ch->py0, ch->ph, c->out_h, &ch->oy0, &ch->upad);
  ch->ow = gemmini_conv_span(c, ch->px0, ch->pw, c->out_w, &ch->ox0, &ch->lpad);
  ch->jb = GEMMINI_MIN(t.tj, c->ob - ch->j0);
  ch->kb = GEMMINI_MIN(t.tk, c->cbk - ch->k0);
  ch->new_tile = ch->k0 == 0;
  ch->last_of_tile = ch->k0 + t.tk >= c->cbk;
  /* (no memcmp/memcpy: freestanding builds call the byte-wise library versions) */
  unsigned b = c->nb;
  for (unsigned i = 0; i < c->nb; i++) {
    const size_t *k = c->band_key[i];
    if (k[0] == ch->n && k[1] == ch->py0 && k[2] == ch->px0 && k[3] == ch->k0) b = i;
  }
  ch->load_band = b == c->nb;
  if (ch->load_band) {
    b = (c->band_last + 1) % c->nb;
    size_t *k = c->band_key[b];
    k[0] = ch->n, k[1] = ch->py0, k[2] = ch->px0, k[3] = ch->k0;
  }
  c->band_last = b;
  ch->band = (uint32_t)(b * c->br);
  unsigned w = c->nw;
  for (unsigned i = 0; i < c->nw; i++)
    if (c->wgt_key[i][0] == ch->j0 && c->wgt_key[i][1] == ch->k0) w = i;
  ch->load_wgt = w == c->nw;
  if (ch->load_wgt) {
    w = (c->wgt_last + 1) % c->nw;
    c->wgt_key[w][0] = ch->j0, c->wgt_key[w][1] = ch->k0;
  }
  c->wgt_last = w;
  ch->wgt = (uint32_t)(c->nb * c->br + w * c->wr);
  if (ch->new_tile) c->acc_last = (c->acc_last + 1) % c->na;
  ch->acc = (uint32_t)(c->acc_last * c->ar);
}

/* mvin3 from a zero row (load state 2 has DRAM stride 0): `rows` band rows from `sp`, `cols`
   channels of consecutive channel blocks (block stride = the band's channel-block stride). */
static inline void gemmini_conv_zero(uint32_t sp, size_t cols, size_t rows) {
  static const elem_t zeros[GEMMINI_MAX_BLOCK_LEN * GEMMINI_DIM] __attribute__((aligned(64))) = {0};
  for (size_t x = 0; x < rows; x += GEMMINI_DIM)
    gemmini_mvin3(zeros, sp + x, cols, GEMMINI_MIN(GEMMINI_DIM, rows - x));
}

/* One band row (plane q, plane row r, channel-block group g) of chunk `ch`: zeros where the
   padded input is outside the image, the image's pixels elsewhere. Returns 0 if the row is
   never read (nothing issued). */
static inline __attribute__((noinline)) int gemmini_conv_band_row(const gemmini_conv_ctx *c, const gemmini_conv_chunk *ch, size_t g,
                                        size_t q, size_t r, int clean) {
  const size_t dim = GEMMINI_DIM, s = c->s, maxb = GEMMINI_MAX_BLOCK_LEN;
  const size_t py = q / c->sx, px = q % c->sx;
  if (r >= ch->oh + (c->kh - 1 - py) / s) return 0;
  const size_t cols = GEMMINI_MIN(GEMMINI_MIN(maxb, ch->kb - g * maxb) * dim, c->in_c - (ch->k0 + g * maxb) * dim);
  const size_t width = ch->ow + (c->kw - 1 - px) / s; /* plane columns a real pixel can read */
  const uint32_t sp = (uint32_t)(ch->band + g * maxb * c->cs + (q * c->bh + r) * c->p);
  const long iy = (long)((ch->oy0 + r) * s + py) - (long)c->pad;
  if (iy < 0 || iy >= (long)c->in_h) {
    gemmini_conv_zero(sp, cols, width);
    return 1;
  }
  /* columns [a, b) are inside the image: ix = (ox0 + x) * s + px - pad in [0, in_w) */
  const long base = (long)(ch->ox0 * s + px) - (long)c->pad;
  long a = base >= 0 ? 0 : (-base + (long)s - 1) / (long)s;
  long b = (long)c->in_w - base > 0 ? ((long)c->in_w - base + (long)s - 1) / (long)s : 0;
  a = a < (long)width ? a : (long)width;
  b = b < a ? a : (b > (long)width ? (long)width : b);
  if (a > 0 && !clean) gemmini_conv_zero(sp, cols, (size_t)a);
  const elem_t *src = c->input +
                      ((ch->n * c->in_h + (size_t)iy) * c->in_w + (size_t)(base + a * (long)s)) * c->in_stride +
                      (ch->k0 + g * maxb) * dim;
  for (long x = a; x < b; x += (long)dim)
    gemmini_mvin(src + (size_t)(x - a) * s * c->in_stride, sp + (uint32_t)x, cols,
                 GEMMINI_MIN((long)dim, b - x));
  if ((size_t)b < width && !clean) gemmini_conv_zero(sp + (uint32_t)b, cols, width - (size_t)b);
  return 1;
}

static inline void gemmini_conv_load_start(gemmini_conv_ctx *c, const gemmini_conv_chunk *ch) {
  c->ld = ch;
  c->ld_phase = ch->load_band ? 0 : ch->load_wgt ? 1 : (ch->new_tile && c->bias) ? 2 : 3;
  c->ld_a = c->ld_b = c->ld_c = 0;
}

/* Issues the next band row or weight block row of the chunk being prefetched (phases 0 and 1);
   moves on to phase 2 (bias) or 3 (done) when they are all issued. Out of line: it runs once per
   band row / weight row, and keeps the compute loop small. */
static inline __attribute__((noinline)) void gemmini_conv_load_step(gemmini_conv_ctx *c) {
  const size_t dim = GEMMINI_DIM, maxb = GEMMINI_MAX_BLOCK_LEN;
  const gemmini_conv_chunk *ch = c->ld;
  for (;;) {
    if (c->ld_phase == 0) { /* (group a, plane b, plane row c) */
      const size_t groups = GEMMINI_CEIL_DIV(ch->kb, maxb);
      if (c->ld_a >= groups) {
        /* every row of the buffer written: its padding columns stay zero for later bands */
        if (c->t.tw >= c->opw && ch->oh == c->cth && ch->kb == c->t.tk) c->band_clean[ch->band != 0] = 1;
        c->ld_phase = ch->load_wgt ? 1 : (ch->new_tile && c->bias) ? 2 : 3;
        c->ld_a = c->ld_b = c->ld_c = 0;
        continue;
      }
      int issued = gemmini_conv_band_row(c, ch, c->ld_a, c->ld_b, c->ld_c, c->band_clean[ch->band != 0]);
      if (++c->ld_c == c->bh) {
        c->ld_c = 0;
        if (++c->ld_b == c->sy * c->sx) c->ld_b = 0, c->ld_a++;
      }
      if (issued) return;
    } else if (c->ld_phase == 1) { /* (tap a, channel block b, output-block group c) */
      if (c->ld_a >= c->kh * c->kw) {
        c->ld_phase = (ch->new_tile && c->bias) ? 2 : 3;
        c->ld_a = c->ld_b = c->ld_c = 0;
        continue;
      }
      const size_t k = c->ld_b, j = c->ld_c * maxb;
      const size_t kc = GEMMINI_MIN(dim, c->in_c - (ch->k0 + k) * dim);
      const size_t cols = GEMMINI_MIN(GEMMINI_MIN(maxb, ch->jb - j) * dim, c->out_c - (ch->j0 + j) * dim);
      gemmini_mvin2(c->weights + (c->ld_a * c->in_c + (ch->k0 + k) * dim) * c->out_c + (ch->j0 + j) * dim,
                    ch->wgt + ((c->ld_a * c->t.tk + k) * c->t.tj + j) * dim, cols, kc);
      if (++c->ld_c == GEMMINI_CEIL_DIV(ch->jb, maxb)) {
        c->ld_c = 0;
        if (++c->ld_b == ch->kb) c->ld_b = 0, c->ld_a++;
      }
      return;
    } else {
      return;
    }
  }
}

/* Phase 2: the next bias block (DIM virtual pixels of one output block) of the prefetched chunk.
   Only once the previous tile that used the same accumulator buffer has all its stores issued. The
   operands are worked out once per output block (ld_b = 0) and then step by DIM accumulator rows:
   a chunk has a bias block per DIM virtual pixels, the most numerous of its loads. */
static inline void gemmini_conv_bias_step(gemmini_conv_ctx *c) {
  const size_t dim = GEMMINI_DIM;
  const gemmini_conv_chunk *ch = c->ld;
  if (c->ld_b == 0) {
    const size_t j = c->ld_a;
    c->ld_b = (ch->oh - 1) * c->p + ch->ow;
    c->ld_rs1 = (uint64_t)(uintptr_t)(c->bias + (ch->j0 + j) * dim);
    c->ld_rs2 = GEMMINI_OPERAND(GEMMINI_ACC_ADDR(ch->acc + j * c->vt), GEMMINI_MIN(dim, c->out_c - (ch->j0 + j) * dim), 0);
  }
  const size_t rows = GEMMINI_MIN(dim, c->ld_b);
  GEMMINI_CMD(GEMMINI_FUNCT_MVIN3, c->ld_rs1, c->ld_rs2 | ((uint64_t)rows << 48));
  c->ld_rs2 += dim;
  c->ld_b -= rows;
  if (c->ld_b == 0 && ++c->ld_a == ch->jb) c->ld_phase = 3;
}

/* Issues the next mvout of the finished tile `st`: one output row segment of up to DIM pixels. */
static inline void gemmini_conv_store_step(gemmini_conv_ctx *c) {
  const size_t dim = GEMMINI_DIM;
  const gemmini_conv_chunk *ch = c->st;
  const size_t j = c->st_j, y = c->st_y, x = c->st_x;
  const size_t jc = GEMMINI_MIN(dim, c->out_c - (ch->j0 + j) * dim);
  gemmini_mvout(c->output + ((ch->n * c->out_h + ch->oy0 + y) * c->out_w + ch->ox0 + x) * c->out_stride +
                    (ch->j0 + j) * dim,
                GEMMINI_ACC_ADDR(ch->acc + j * c->vt + y * c->p + x), jc, GEMMINI_MIN(dim, ch->ow - x));
  c->st_x += dim;
  if (c->st_x >= ch->ow) {
    c->st_x = 0;
    if (++c->st_y == ch->oh) {
      c->st_y = 0;
      if (++c->st_j == ch->jb) c->st_active = 0;
    }
  }
}

/* With pooling, the same: the tile's config_mvout first, then one pooled mvout per output-channel
   block. Out of line: it runs once per block, and keeps the plain store step inlined. */
static inline __attribute__((noinline)) void gemmini_conv_pool_store_step(gemmini_conv_ctx *c) {
  const size_t dim = GEMMINI_DIM;
  const gemmini_conv_chunk *ch = c->st;
  const size_t j = c->st_j, jc = GEMMINI_MIN(dim, c->out_c - (ch->j0 + j) * dim);
  /* pool_out_dim only counts when a tile writes several pooled rows (then opw <= 255) */
  if (j == 0)
    gemmini_config_st_pool(c->out_stride, c->act, c->acc_scale, c->pst, c->psz, ch->upad, ch->lpad, c->p,
                           GEMMINI_MIN(c->opw, 255), ch->ph, ch->pw, ch->oh, ch->ow);
  gemmini_mvout(c->output + ((ch->n * c->oph + ch->py0) * c->opw + ch->px0) * c->out_stride + (ch->j0 + j) * dim,
                GEMMINI_ACC_ADDR(ch->acc + j * c->vt), jc, 0);
  if (++c->st_j == ch->jb) c->st_active = 0;
}

/* One store and one load, if any are pending; returns whether any still are. */
static inline int gemmini_conv_pump(gemmini_conv_ctx *c) {
  if (c->st_active) {
    if (c->pool) gemmini_conv_pool_store_step(c);
    else gemmini_conv_store_step(c);
  }
  if (c->ld_phase < 2) gemmini_conv_load_step(c);
  else if (c->ld_phase == 2 && !c->st_active) gemmini_conv_bias_step(c);
  return c->st_active || c->ld_phase != 3;
}

static inline void gemmini_conv_drain(gemmini_conv_ctx *c) {
  while (c->st_active) {
    if (c->pool) gemmini_conv_pool_store_step(c);
    else gemmini_conv_store_step(c);
  }
  while (c->ld_phase != 3) {
    if (c->ld_phase == 2) gemmini_conv_bias_step(c);
    else gemmini_conv_load_step(c);
  }
}

/* The computes of one chunk: for each output block, tap and input-channel block, the weight
   block is preloaded once and every block of DIM virtual pixels streams past it. Pending loads
   and stores are issued one per compute. */
static inline int gemmini_conv_compute(gemmini_conv_ctx *c, const gemmini_conv_chunk *ch, int pending) {
  const size_t dim = GEMMINI_DIM, s = c->s, kw = c->kw, tk = c->t.tk, tj = c->t.tj;
  const size_t vt = (ch->oh - 1) * c->p + ch->ow, nvb = GEMMINI_CEIL_DIV(vt, dim);
  const uint64_t garbage = GEMMINI_OPERAND(GEMMINI_GARBAGE, dim, dim);
  const uint64_t rows_mask = ~((uint64_t)0xFFFF << 48);
  const uint64_t last_rows = (uint64_t)(vt - (nvb - 1) * dim) << 48;
  const uint32_t plane = (uint32_t)(c->bh * c->p);
  const int seeded = c->bias != NULL || ch->k0 > 0; /* the accumulator already holds a partial sum */
  for (size_t j = 0; j < ch->jb; j++) {
    const size_t jc = GEMMINI_MIN(dim, c->out_c - (ch->j0 + j) * dim);
    const uint32_t c_base = GEMMINI_ACC_ADDR(ch->acc + j * c->vt);
    uint32_t w_addr = (uint32_t)(ch->wgt + j * dim); /* weights of (tap, k, j): ((tap*tk + k)*tj + j)*dim */
    size_t py = 0, qy = 0;                           /* ky % s, ky / s */
    for (size_t ky = 0; ky < c->kh; ky++) {
      size_t px = 0, qx = 0; /* kx % s, kx / s */
      for (size_t kx = 0; kx < kw; kx++) {
        const uint32_t a_tap = (uint32_t)(ch->band + (py * c->sx + px) * plane + qy * c->p + qx);
        for (size_t k = 0; k < ch->kb; k++, w_addr += (uint32_t)(tj * dim)) {
          const size_t kc = GEMMINI_MIN(dim, c->in_c - (ch->k0 + k) * dim);
          const uint32_t flag = (seeded || ky > 0 || kx > 0 || k > 0) ? GEMMINI_ACCUMULATE : 0;
          uint64_t a_op = GEMMINI_OPERAND(a_tap + k * c->cs, kc, dim);
          uint64_t c_op = GEMMINI_OPERAND(c_base | flag, jc, dim);
          if (nvb == 1) a_op = (a_op & rows_mask) | last_rows, c_op = (c_op & rows_mask) | last_rows;
          GEMMINI_CMD(GEMMINI_FUNCT_PRELOAD, GEMMINI_OPERAND(w_addr, jc, kc), c_op);
          GEMMINI_CMD(GEMMINI_FUNCT_COMPUTE_PRELOADED, a_op, garbage);
          if (pending) pending = gemmini_conv_pump(c);
          if (nvb == 1) continue;
          /* every block of DIM virtual pixels streams past the same weights; the last may be short */
          for (size_t vb = nvb - 2; vb > 0; vb--) {
            a_op += dim;
            c_op += dim;
            GEMMINI_CMD(GEMMINI_FUNCT_PRELOAD, garbage, c_op);
            GEMMINI_CMD(GEMMINI_FUNCT_COMPUTE_ACCUMULATED, a_op, garbage);
            if (pending) pending = gemmini_conv_pump(c);
          }
          a_op = ((a_op + dim) & rows_mask) | last_rows;
          c_op = ((c_op + dim) & rows_mask) | last_rows;
          GEMMINI_CMD(GEMMINI_FUNCT_PRELOAD, garbage, c_op);
          GEMMINI_CMD(GEMMINI_FUNCT_COMPUTE_ACCUMULATED, a_op, garbage);
          if (pending) pending = gemmini_conv_pump(c);
        }
        w_addr += (uint32_t)((tk - ch->kb) * tj * dim);
        if (++px == s) px = 0, qx++;
      }
      if (++py == s) py = 0, qy++;
    }
  }
  return pending;
}

/* The same computes in the OS dataflow: each output block (DIM virtual pixels x one output-channel
   block) stays in the array while the (tap, input-channel block) steps stream through it, A the
   band rows of the tap and B the weight block; only the last compute writes the block to the
   accumulator (raw int32, added onto the bias or the earlier input-channel chunks). The same
   products summed into the same accumulator rows: bit-identical to WS. The operands of the steps
   are tabulated once per chunk (relative to the block), so issuing one costs a few instructions;
   a chunk with more steps than the table holds computes them as it goes (slower). */
#define GEMMINI_CONV_OS_STEPS 1024
static inline int gemmini_conv_compute_os(gemmini_conv_ctx *c, const gemmini_conv_chunk *ch, int pending) {
  const size_t dim = GEMMINI_DIM, s = c->s, kw = c->kw, tk = c->t.tk, tj = c->t.tj;
  const size_t vt = (ch->oh - 1) * c->p + ch->ow, nvb = GEMMINI_CEIL_DIV(vt, dim);
  const size_t steps = c->kh * kw * ch->kb; /* computes per output block */
  const int tabulated = steps <= GEMMINI_CONV_OS_STEPS;
  const uint64_t garbage = GEMMINI_OPERAND(GEMMINI_GARBAGE, dim, dim);
  const uint32_t plane = (uint32_t)(c->bh * c->p);
  const uint32_t flag = (c->bias != NULL || ch->k0 > 0) ? GEMMINI_ACCUMULATE : 0;
  /* step n: A at band + a_off (+ the block's first pixel), B at wgt + w_off (+ the block's channels),
     both with their k columns / rows */
  uint64_t a_off[GEMMINI_CONV_OS_STEPS], w_off[GEMMINI_CONV_OS_STEPS];
  for (size_t n = 0, ky = 0, py = 0, qy = 0; tabulated && ky < c->kh; ky++) {
    for (size_t kx = 0, px = 0, qx = 0; kx < kw; kx++) {
      const size_t a_tap = (py * c->sx + px) * plane + qy * c->p + qx, w_tap = (ky * kw + kx) * tk * tj * dim;
      for (size_t k = 0; k < ch->kb; k++, n++) {
        const size_t kc = GEMMINI_MIN(dim, c->in_c - (ch->k0 + k) * dim);
        a_off[n] = GEMMINI_OPERAND(a_tap + k * c->cs, kc, 0);
        w_off[n] = GEMMINI_OPERAND(w_tap + k * tj * dim, 0, kc);
      }
      if (++px == s) px = 0, qx++;
    }
    if (++py == s) py = 0, qy++;
  }
  for (size_t j = 0; j < ch->jb; j++) {
    const size_t jc = GEMMINI_MIN(dim, c->out_c - (ch->j0 + j) * dim);
    const uint64_t b_base = GEMMINI_OPERAND(ch->wgt + j * dim, jc, 0);
    for (size_t vb = 0; vb < nvb; vb++) {
      const size_t rows = GEMMINI_MIN(dim, vt - vb * dim);
      const uint64_t a_base = GEMMINI_OPERAND(ch->band + vb * dim, 0, rows);
      const uint64_t c_op = GEMMINI_OPERAND(GEMMINI_ACC_ADDR(ch->acc + j * c->vt + vb * dim) | flag, jc, rows);
      if (tabulated) {
        GEMMINI_CMD(GEMMINI_FUNCT_PRELOAD, garbage, steps == 1 ? c_op : garbage);
        GEMMINI_CMD(GEMMINI_FUNCT_COMPUTE_PRELOADED, a_base + a_off[0], b_base + w_off[0]);
        if (pending) pending = gemmini_conv_pump(c);
        for (size_t n = 1; n < steps; n++) {
          GEMMINI_CMD(GEMMINI_FUNCT_PRELOAD, garbage, n + 1 == steps ? c_op : garbage);
          GEMMINI_CMD(GEMMINI_FUNCT_COMPUTE_ACCUMULATED, a_base + a_off[n], b_base + w_off[n]);
          if (pending) pending = gemmini_conv_pump(c);
        }
        continue;
      }
      size_t n = 0; /* computes issued for this block */
      for (size_t ky = 0, py = 0, qy = 0; ky < c->kh; ky++) {
        for (size_t kx = 0, px = 0, qx = 0; kx < kw; kx++) {
          const size_t a_tap = (py * c->sx + px) * plane + qy * c->p + qx, w_tap = (ky * kw + kx) * tk * tj * dim;
          for (size_t k = 0; k < ch->kb; k++) {
            const size_t kc = GEMMINI_MIN(dim, c->in_c - (ch->k0 + k) * dim);
            const uint64_t a_op = a_base + GEMMINI_OPERAND(a_tap + k * c->cs, kc, 0);
            const uint64_t b_op = b_base + GEMMINI_OPERAND(w_tap + k * tj * dim, 0, kc);
            GEMMINI_CMD(GEMMINI_FUNCT_PRELOAD, garbage, ++n == steps ? c_op : garbage);
            if (n == 1) GEMMINI_CMD(GEMMINI_FUNCT_COMPUTE_PRELOADED, a_op, b_op);
            else GEMMINI_CMD(GEMMINI_FUNCT_COMPUTE_ACCUMULATED, a_op, b_op);
            if (pending) pending = gemmini_conv_pump(c);
          }
          if (++px == s) px = 0, qx++;
        }
        if (++py == s) py = 0, qy++;
      }
    }
  }
  return pending;
}

/* tiled_conv_ex's LOOP_CONV_WS path: the same chunks in the same order, each one loop (its input
   tile, weights, bias and stores issued by the unroller; the CPU only configures). Input-channel
   steps after a tile's first add onto its accumulator tile (bias NULL, no_bias 0); only the last
   stores it. */
static inline void gemmini_conv_loop_run(gemmini_conv_ctx *c) {
  const size_t dim = GEMMINI_DIM, s = c->s;
  gemmini_conv_chunk ch;
  ch.n = ch.py0 = ch.px0 = ch.j0 = ch.k0 = 0;
  for (int more = 1; more;) {
    gemmini_conv_prepare(c, &ch);
    const size_t irows = (ch.oh - 1) * s + c->kh, icols = (ch.ow - 1) * s + c->kw;
    /* padded input rows [oy0 * s - pad, + irows): upad above the image, dpad below it */
    const long y0 = (long)(ch.oy0 * s) - (long)c->pad, x0 = (long)(ch.ox0 * s) - (long)c->pad;
    const size_t upad = y0 < 0 ? GEMMINI_MIN((size_t)-y0, irows) : 0, lpad = x0 < 0 ? GEMMINI_MIN((size_t)-x0, icols) : 0;
    const size_t r0 = y0 < 0 ? 0 : (size_t)y0, c0 = x0 < 0 ? 0 : (size_t)x0;
    const long r1 = GEMMINI_MIN((long)c->in_h, y0 + (long)irows), c1 = GEMMINI_MIN((long)c->in_w, x0 + (long)icols);
    const size_t rows = r1 > (long)r0 ? (size_t)r1 - r0 : 0, cols = c1 > (long)c0 ? (size_t)c1 - c0 : 0;
    const size_t kchs = GEMMINI_MIN(ch.kb * dim, c->in_c - ch.k0 * dim);
    const size_t pochs = GEMMINI_MIN(ch.jb * dim, c->out_c - ch.j0 * dim);
    const elem_t *in = c->input + ((ch.n * c->in_h + r0) * c->in_w + c0) * c->in_stride + ch.k0 * dim;
    const elem_t *w = c->weights + ch.k0 * dim * c->out_c + ch.j0 * dim;
    const acc_t *bias = ch.k0 == 0 && c->bias ? c->bias + ch.j0 * dim : NULL;
    elem_t *out = NULL;
    if (ch.last_of_tile)
      out = c->output + (c->pool ? (ch.n * c->oph + ch.py0) * c->opw + ch.px0
                                 : (ch.n * c->out_h + ch.oy0) * c->out_w + ch.ox0) * c->out_stride + ch.j0 * dim;
    gemmini_loop_conv_ws(1, c->in_h, c->in_w, c->in_c, c->out_c, c->out_h, c->out_w, c->oph, c->opw, s, c->pad, c->kw,
                         c->psz, c->pst, c->ppad, 1, ch.ph, ch.pw, pochs, c->kh, c->kw, kchs, lpad,
                         icols - lpad - cols, upad, irows - upad - rows, ch.lpad, 0, ch.upad, 0, ch.oh, ch.ow, w, out,
                         bias, in, ch.k0 == 0 && !c->bias, !c->pool, c->act, c->in_stride, c->out_c, c->out_stride);
    gemmini_conv_chunk next;
    more = gemmini_conv_next(c, &ch, &next);
    ch.n = next.n, ch.py0 = next.py0, ch.px0 = next.px0, ch.j0 = next.j0, ch.k0 = next.k0;
  }
}

/* Tap packing's input copy (see gemmini_conv_packed_w): n bytes from src (zeros if NULL) to dst,
   8 at a time where both are 8-byte aligned alike (no library memcpy: freestanding builds call a
   byte-wise one). */
typedef uint64_t __attribute__((may_alias)) gemmini_u64a;
static inline void gemmini_pack_fill(elem_t *dst, const elem_t *src, size_t n) {
  size_t i = 0;
  if (!src) { /* (separate loops: a test of src inside one costs ~10 instructions per word) */
    for (; i < n && ((uintptr_t)(dst + i) & 7); i++) dst[i] = 0;
    for (; i + 8 <= n; i += 8) *(gemmini_u64a *)(dst + i) = 0;
    for (; i < n; i++) dst[i] = 0;
    return;
  }
  if ((((uintptr_t)dst ^ (uintptr_t)src) & 7) == 0) {
    for (; i < n && ((uintptr_t)(dst + i) & 7); i++) dst[i] = src[i];
    for (; i + 32 <= n; i += 32) {
      const gemmini_u64a *s = (const gemmini_u64a *)(src + i);
      gemmini_u64a *d = (gemmini_u64a *)(dst + i);
      const uint64_t a = s[0], b = s[1], c = s[2], e = s[3];
      d[0] = a, d[1] = b, d[2] = c, d[3] = e;
    }
    for (; i + 8 <= n; i += 8) *(gemmini_u64a *)(dst + i) = *(const gemmini_u64a *)(src + i);
  }
  for (; i < n; i++) dst[i] = src[i];
}

static elem_t gemmini_pack_buf[GEMMINI_PACK_BYTES + 8] __attribute__((aligned(64)));

/* The zero-padded copy of the input a tap-packed conv reads (c planned with pack): images of in_h
   rows of in_w pixels of src_c channels, the source's pixels in_stride apart. Returns the first
   pixel; interior rows start 8-byte aligned. */
static inline const elem_t *gemmini_conv_pack_input(const gemmini_conv_ctx *c, const elem_t *input,
                                                    size_t in_stride) {
  const size_t C = c->src_c, p = c->src_pad, pitch = c->in_w * C, lead = p * C;
  const size_t right = pitch - lead - c->src_w * C;
  elem_t *base = gemmini_pack_buf + (8 - lead % 8) % 8;
  for (size_t n = 0; n < c->batch; n++) {
    elem_t *img = base + n * c->in_h * pitch;
    gemmini_pack_fill(img, NULL, p * pitch);
    gemmini_pack_fill(img + (p + c->src_h) * pitch, NULL, p * pitch);
    for (size_t y = 0; y < c->src_h; y++) {
      elem_t *row = img + (p + y) * pitch;
      const elem_t *src = input + (n * c->src_h + y) * c->src_w * in_stride;
      gemmini_pack_fill(row, NULL, lead);
      if (in_stride == C) gemmini_pack_fill(row + lead, src, c->src_w * C);
      else
        for (size_t x = 0; x < c->src_w; x++) gemmini_pack_fill(row + lead + x * C, src + x * in_stride, C);
      gemmini_pack_fill(row + lead + c->src_w * C, NULL, right);
    }
  }
  return base;
}

/* A 1x1 stride-1 conv without padding or pooling is a plain matmul on the input pixels. */
static inline int gemmini_conv_is_matmul(size_t in_h, size_t in_w, size_t out_h, size_t out_w, size_t stride,
                                         size_t pad, size_t kh, size_t kw, size_t pool_size) {
  return kh == 1 && kw == 1 && stride == 1 && pad == 0 && out_h == in_h && out_w == in_w && pool_size == 0;
}

/* im2col. The conv path computes DIM conv outputs of one output row at a time, so a narrow output
   (7 pixels wide in ResNet's last stage) leaves array rows idle: 7 of 16. Any other conv without
   pooling whose input matrix (batch * out_h * out_w rows of kh * kw * in_c bytes, one per output
   pixel, its taps' channels in HWIO order) fits gemmini_pack_buf can instead be copied into it by
   the CPU and run as one tiled_matmul with the weights as they are, every array row busy but the
   last block's: the same integer sums, bias and requantization. */
static inline int gemmini_conv_im2col_fits(size_t batch, size_t in_h, size_t in_w, size_t out_h, size_t out_w,
                                           size_t stride, size_t pad, size_t in_c, size_t kh, size_t kw,
                                           size_t pool_size) {
  return pool_size == 0 && !gemmini_conv_is_matmul(in_h, in_w, out_h, out_w, stride, pad, kh, kw, pool_size) &&
         batch * out_h * out_w * kh * kw * in_c <= GEMMINI_PACK_BYTES;
}

/* n bytes from src (zeros if NULL) to dst, both 8-byte aligned and n a multiple of 32: four words
   per step (the im2col copy's inner loop, ~1 instruction per 3 bytes). */
static inline void gemmini_copy_words(elem_t *dst, const elem_t *src, size_t n) {
  gemmini_u64a *d = (gemmini_u64a *)dst;
  const gemmini_u64a *s = (const gemmini_u64a *)src;
  if (!s)
    for (size_t i = 0; i < n / 8; i += 4) d[i] = d[i + 1] = d[i + 2] = d[i + 3] = 0;
  else
    for (size_t i = 0; i < n / 8; i += 4) {
      const uint64_t a = s[i], b = s[i + 1], c = s[i + 2], e = s[i + 3];
      d[i] = a, d[i + 1] = b, d[i + 2] = c, d[i + 3] = e;
    }
}

/* The input matrix of an im2col conv in gemmini_pack_buf (pixels in_stride apart in the input,
   padding as zeros); returns it. */
static inline const elem_t *gemmini_conv_im2col_input(size_t batch, size_t in_h, size_t in_w, size_t in_c,
                                                      size_t in_stride, size_t out_h, size_t out_w, size_t stride,
                                                      size_t pad, size_t kh, size_t kw, const elem_t *input) {
  const int words = in_c % 32 == 0 && in_stride % 8 == 0 && ((uintptr_t)input & 7) == 0;
  elem_t *row = gemmini_pack_buf;
  for (size_t n = 0; n < batch; n++)
    for (size_t oy = 0; oy < out_h; oy++)
      for (size_t ox = 0; ox < out_w; ox++)
        for (size_t ky = 0; ky < kh; ky++)
          for (size_t kx = 0; kx < kw; kx++, row += in_c) {
            const long iy = (long)(oy * stride + ky) - (long)pad, ix = (long)(ox * stride + kx) - (long)pad;
            const int inside = iy >= 0 && ix >= 0 && iy < (long)in_h && ix < (long)in_w;
            const elem_t *src = inside ? input + ((n * in_h + (size_t)iy) * in_w + (size_t)ix) * in_stride : NULL;
            if (words) gemmini_copy_words(row, src, in_c);
            else gemmini_pack_fill(row, src, in_c);
          }
  return gemmini_pack_buf;
}

/* Whether tiled_conv_ex, given no tiling, runs this conv by im2col: where it fits and the cost
   estimates (gemmini_matmul_cost plus the copy, ~1 cycle per 2 bytes, against gemmini_conv_cost of
   the automatic conv tiling) say it is cheaper, or no conv tiling fits. */
static inline int gemmini_conv_prefers_im2col(size_t batch, size_t in_h, size_t in_w, size_t in_c, size_t out_c,
                                              size_t out_h, size_t out_w, size_t stride, size_t pad, size_t kh,
                                              size_t kw, size_t pool_size) {
  if (!gemmini_conv_im2col_fits(batch, in_h, in_w, out_h, out_w, stride, pad, in_c, kh, kw, pool_size)) return 0;
  const size_t M = batch * out_h * out_w, K = kh * kw * in_c;
  const size_t im2col = gemmini_matmul_cost(M, out_c, K, gemmini_auto_tiling(M, out_c, K)) + M * K / 2;
  gemmini_conv_ctx c;
  if (!gemmini_conv_init(&c, batch, in_h, in_w, in_c, out_c, out_h, out_w, stride, pad, kh, kw, 0, 0, 0) ||
      !gemmini_conv_auto_tiling(&c))
    return 1;
  return im2col < gemmini_conv_cost(&c);
}

/* NHWC int8 conv2d on the accelerator, with optional fused max pooling, reading and writing channel
 * slices (see above); or, where the tiling says so (th = 0), by im2col + tiled_matmul.
 *   input: [batch][in_h][in_w][in_stride], channels [0, in_c) read; weights: [kh][kw][in_c][out_c]
 *   (HWIO); bias: [out_c] int32 or NULL; conv = act(sat8(round_half_even((conv + bias) * acc_scale))).
 *   Padding reads zeros (zero point 0); out_h/out_w (the conv's output) may cut it short.
 *   pool_size 0: output [batch][out_h][out_w][out_stride] = conv, channels [0, out_c) written.
 *   pool_size 1..3, pool_stride 1..3, pool_pad < pool_size: output [batch][ph][pw][out_stride] =
 *   ONNX MaxPool of conv (floor mode, pool_pad on every side, padding never wins), with
 *   ph = (out_h + 2 * pool_pad - pool_size) / pool_stride + 1 and pw likewise.
 *   tiling: NULL for gemmini_conv_choose_tiling's (and a 1x1 stride-1 conv without padding or
 *   pooling then runs as one tiled_matmul, with gemmini_auto_tiling's tiling, as does by im2col a
 *   conv that gemmini_conv_prefers_im2col); otherwise t.th/t.tw
 *   rows/columns of the written output per tile, t.tj/t.tk output/input channel blocks per chunk,
 *   t.dataflow, t.hw_loop (1: each chunk is one LOOP_CONV_WS, gemmini_conv_loop_run; the
 *   automatic tiling's choice where the configuration has the unroller), t.pack (1: taps packed
 *   into channels, t.tk then counting the packed channel blocks; gemmini_conv_can_pack); or t.th = 0
 *   and the matmul's tiling in t.matmul: such a 1x1 conv on its input, any other without pooling
 *   by im2col (gemmini_conv_im2col_fits; else a trap).
 * A tiling that does not fit the scratchpad and accumulator, or a pooling Gemmini cannot fuse, traps
 * (illegal instruction) instead of computing garbage. Any shape whose 1 x 1 tile fits has a tiling:
 * the weights of one DIM x DIM block for every kernel tap plus the bands of the conv outputs one
 * written pixel needs, about (kh*kw + kh) * DIM * 2 scratchpad rows without pooling. */
static inline void tiled_conv_ex(size_t batch, size_t in_h, size_t in_w, size_t in_c, size_t in_stride, size_t out_c,
                                 size_t out_stride, size_t out_h, size_t out_w, size_t stride, size_t pad, size_t kh,
                                 size_t kw, size_t pool_size, size_t pool_stride, size_t pool_pad,
                                 const elem_t *input, const elem_t *weights, const acc_t *bias, elem_t *output,
                                 float acc_scale, int act, const gemmini_conv_tiling *tiling) {
  if (batch == 0 || out_h == 0 || out_w == 0 || out_c == 0) return;
  const int is_matmul = gemmini_conv_is_matmul(in_h, in_w, out_h, out_w, stride, pad, kh, kw, pool_size);
  const int im2col = tiling ? tiling->th == 0 && !is_matmul
                            : gemmini_conv_prefers_im2col(batch, in_h, in_w, in_c, out_c, out_h, out_w, stride, pad,
                                                          kh, kw, pool_size);
  if ((is_matmul && (!tiling || tiling->th == 0)) || im2col) { /* (tiled_matmul traps on an illegal tiling) */
    if (im2col && !gemmini_conv_im2col_fits(batch, in_h, in_w, out_h, out_w, stride, pad, in_c, kh, kw, pool_size)) {
      gemmini_trap_bad_tiling(input);
      return;
    }
    const size_t M = batch * out_h * out_w, K = kh * kw * in_c;
    const elem_t *a = im2col ? gemmini_conv_im2col_input(batch, in_h, in_w, in_c, in_stride, out_h, out_w, stride,
                                                         pad, kh, kw, input)
                             : input;
    tiled_matmul(M, out_c, K, a, weights, bias, output, im2col ? K : in_stride, out_c, 0, out_stride, 1.0f, 1.0f,
                 acc_scale, act, 0, tiling ? tiling->matmul : gemmini_auto_tiling(M, out_c, K));
    return;
  }
  gemmini_conv_ctx c; /* (no memset: freestanding builds call a byte-wise one) */
  const int ok = gemmini_conv_init(&c, batch, in_h, in_w, in_c, out_c, out_h, out_w, stride, pad, kh, kw, pool_size,
                                   pool_stride, pool_pad) &&
                 (tiling ? gemmini_conv_plan(&c, *tiling) : gemmini_conv_auto_tiling(&c));
  if (!ok) {
    gemmini_trap_bad_tiling(input);
    return;
  }
  c.in_stride = in_stride, c.out_stride = out_stride;
  if (c.t.pack) { /* the padded copy; its pixels src_c apart, kw * src_c channels each */
    input = gemmini_conv_pack_input(&c, input, in_stride);
    c.in_stride = c.src_c;
  }
  c.input = input, c.weights = weights, c.bias = bias, c.output = output, c.acc_scale = acc_scale, c.act = act;
  for (unsigned b = 0; b < 2; b++) {
    for (unsigned k = 0; k < 4; k++) c.band_key[b][k] = (size_t)-1;
    c.wgt_key[b][0] = c.wgt_key[b][1] = (size_t)-1;
    c.band_clean[b] = 0;
  }
  c.ld = c.st = NULL;
  c.st_active = 0;
  c.band_last = c.nb - 1, c.wgt_last = c.nw - 1, c.acc_last = c.na - 1;
  c.ld_phase = 3;

  const int os = gemmini_dataflow(c.t.dataflow) == GEMMINI_OS;
  gemmini_config_ex(gemmini_dataflow(c.t.dataflow), GEMMINI_NO_ACT, 0, 0, 1, 1, 0);
  if (c.t.hw_loop) { /* the unroller sets up its own loads and stores; config_mvout gives the scale */
    gemmini_config_st(out_stride, act, acc_scale);
    gemmini_conv_loop_run(&c);
    gemmini_fence();
    return;
  }
  gemmini_config_ld(0, stride * c.in_stride, 1.0f, 0, c.cs); /* input pixels: `stride` apart in a row */
  gemmini_config_ld(1, out_c, 1.0f, 0, GEMMINI_DIM);       /* weights */
  gemmini_config_ld(2, 0, 1.0f, 0, c.cs);                  /* bias rows, zero rows: DRAM stride 0 */
  if (!c.pool) gemmini_config_st(out_stride, act, acc_scale); /* (pooling: each tile configures its stores) */

  /* three chunk slots, rotating: the one computing, the one prefetching, the one storing */
  gemmini_conv_chunk slot[3];
  slot[0].n = slot[0].py0 = slot[0].px0 = slot[0].j0 = slot[0].k0 = 0; /* prepare sets the rest */
  unsigned i = 0;
  gemmini_conv_prepare(&c, &slot[0]);
  gemmini_conv_load_start(&c, &slot[0]);
  gemmini_conv_drain(&c);
  for (;;) {
    gemmini_conv_chunk *cur = &slot[i], *nxt = &slot[(i + 1) % 3];
    const int more = gemmini_conv_next(&c, cur, nxt);
    if (more) {
      gemmini_conv_prepare(&c, nxt);
      gemmini_conv_load_start(&c, nxt);
    }
    if (os) gemmini_conv_compute_os(&c, cur, c.st_active || c.ld_phase != 3);
    else gemmini_conv_compute(&c, cur, c.st_active || c.ld_phase != 3);
    gemmini_conv_drain(&c); /* the rest of the previous tile's stores and of the next chunk's loads */
    if (cur->last_of_tile) {
      c.st = cur;
      c.st_active = 1;
      c.st_j = c.st_y = c.st_x = 0;
    }
    if (!more) break;
    i = (i + 1) % 3;
  }
  gemmini_conv_drain(&c);
  gemmini_fence();
}

/* tiled_conv_ex on whole tensors (pixels in_c / out_c apart), without pooling. */
static inline void tiled_conv(size_t batch, size_t in_h, size_t in_w, size_t in_c, size_t out_c, size_t out_h,
                              size_t out_w, size_t stride, size_t pad, size_t kh, size_t kw, const elem_t *input,
                              const elem_t *weights, const acc_t *bias, elem_t *output, float acc_scale, int act,
                              const gemmini_conv_tiling *tiling) {
  tiled_conv_ex(batch, in_h, in_w, in_c, in_c, out_c, out_c, out_h, out_w, stride, pad, kh, kw, 0, 0, 0, input,
                weights, bias, output, acc_scale, act, tiling);
}

/* tiled_conv with the automatic tiling. col: unused, may be NULL (kept so the signature stays the
   same). */
static inline void tiled_conv_auto(size_t batch, size_t in_h, size_t in_w, size_t in_c, size_t out_c,
                                   size_t out_h, size_t out_w, size_t stride, size_t pad, size_t kh, size_t kw,
                                   const elem_t *input, const elem_t *weights, const acc_t *bias, elem_t *output,
                                   elem_t *col, float acc_scale, int act) {
  (void)col;
  tiled_conv(batch, in_h, in_w, in_c, out_c, out_h, out_w, stride, pad, kh, kw, input, weights, bias, output,
             acc_scale, act, NULL);
}

/* Grouped conv, depthwise included, as `groups` independent convs on channel slices: the compiler
 * packs the ONNX groups into `groups` super-groups of in_c input and out_c output channels (a
 * super-group's weights are block diagonal when it holds several groups; the header does not care).
 *   input: [batch][in_h][in_w][groups * in_c]; weights: [groups][kh][kw][in_c][out_c];
 *   bias: [groups * out_c] or NULL; output: [batch][.][.][groups * out_c], super-group g writing
 *   channels [g * out_c, (g + 1) * out_c). Pooling and numerics as tiled_conv_ex. One tiling (per
 *   super-group; tvmx's compiler passes the one 03-tune/schedules.json records) serves them all. */
static inline void tiled_conv_grouped(size_t batch, size_t in_h, size_t in_w, size_t groups, size_t in_c,
                                      size_t out_c, size_t out_h, size_t out_w, size_t stride, size_t pad, size_t kh,
                                      size_t kw, size_t pool_size, size_t pool_stride, size_t pool_pad,
                                      const elem_t *input, const elem_t *weights, const acc_t *bias, elem_t *output,
                                      float acc_scale, int act, const gemmini_conv_tiling *tiling) {
  gemmini_conv_tiling t;
  /* none given: the automatic one, for all groups (a shape with none passes NULL, and the first
     group traps; a 1x1 conv passes NULL and runs as a matmul) */
  if (!tiling && !gemmini_conv_is_matmul(in_h, in_w, out_h, out_w, stride, pad, kh, kw, pool_size) &&
      !gemmini_conv_prefers_im2col(batch, in_h, in_w, in_c, out_c, out_h, out_w, stride, pad, kh, kw, pool_size) &&
      gemmini_conv_choose_tiling(batch, in_h, in_w, in_c, out_c, out_h, out_w, stride, pad, kh, kw, pool_size,
                                 pool_stride, pool_pad, &t))
    tiling = &t;
  for (size_t g = 0; g < groups; g++)
    tiled_conv_ex(batch, in_h, in_w, in_c, groups * in_c, out_c, groups * out_c, out_h, out_w, stride, pad, kh, kw,
                  pool_size, pool_stride, pool_pad, input + g * in_c, weights + g * kh * kw * in_c * out_c,
                  bias ? bias + g * out_c : NULL, output + g * out_c, acc_scale, act, tiling);
}

/* tiled_conv_grouped with the automatic tiling. */
static inline void tiled_conv_grouped_auto(size_t batch, size_t in_h, size_t in_w, size_t groups, size_t in_c,
                                           size_t out_c, size_t out_h, size_t out_w, size_t stride, size_t pad,
                                           size_t kh, size_t kw, size_t pool_size, size_t pool_stride,
                                           size_t pool_pad, const elem_t *input, const elem_t *weights,
                                           const acc_t *bias, elem_t *output, float acc_scale, int act) {
  tiled_conv_grouped(batch, in_h, in_w, groups, in_c, out_c, out_h, out_w, stride, pad, kh, kw, pool_size,
                     pool_stride, pool_pad, input, weights, bias, output, acc_scale, act, NULL);
}

#endif /* TVMX_GEMMINI_H */
