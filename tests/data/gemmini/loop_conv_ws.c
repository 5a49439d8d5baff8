/* LOOP_CONV_WS on the model: each CASE_... is a malformed loop that must trap as an illegal
   instruction (test_loop_conv_ws.py gives the reason it must print). */
#include <stdint.h>

#include "gemmini.h"

#define D_ GEMMINI_DIM
static int8_t X[4 * D_ * D_] __attribute__((aligned(64)));
static int8_t W[9 * D_ * D_] __attribute__((aligned(64)));
static int8_t Y[4 * D_ * D_] __attribute__((aligned(64)));

/* the six config commands of a tile of orows x ocols conv outputs (1 image, D_ in and out
   channels, a kh x kh kernel, no padding) over an image as big as the tile's input */
static void configure(unsigned orows, unsigned ocols, unsigned kh, unsigned upad, unsigned dpad, unsigned dilation) {
  const uint64_t ih = orows - 1 + kh, iw = ocols - 1 + kh;
  GEMMINI_CMD(GEMMINI_FUNCT_LOOP_CONV_WS_CONFIG_1,
              ((uint64_t)D_ << 48) | ((uint64_t)D_ << 32) | (ih << 16) | 1u,
              (1ull << 48) | ((uint64_t)ocols << 32) | ((uint64_t)orows << 16) | orows);
  GEMMINI_CMD(GEMMINI_FUNCT_LOOP_CONV_WS_CONFIG_2, ((uint64_t)kh << 48) | ((uint64_t)ocols << 32),
              (1ull << 48) | ((uint64_t)orows << 32) | ((uint64_t)ocols << 16) | D_);
  GEMMINI_CMD(GEMMINI_FUNCT_LOOP_CONV_WS_CONFIG_3, ((uint64_t)kh << 48) | ((uint64_t)kh << 32) | ((uint64_t)D_ << 16),
              ((uint64_t)upad << 32) | ((uint64_t)dpad << 24) | iw);
  GEMMINI_CMD(GEMMINI_FUNCT_LOOP_CONV_WS_CONFIG_4, ((uint64_t)orows << 48) | dilation,
              ((uint64_t)D_ << 48) | ((uint64_t)D_ << 32) | ((uint64_t)D_ << 16) | ocols);
  GEMMINI_CMD(GEMMINI_FUNCT_LOOP_CONV_WS_CONFIG_5, (uintptr_t)W, (uintptr_t)Y);
  GEMMINI_CMD(GEMMINI_FUNCT_LOOP_CONV_WS_CONFIG_6, 0, (uintptr_t)X);
}

/* launch: rs1 bit 0 no_bias, rs2 bit 0 no_pool */
#define LAUNCH(rs1, rs2) GEMMINI_CMD(GEMMINI_FUNCT_LOOP_CONV_WS, (rs1), (rs2))

int main(void) {
  gemmini_config_ex(GEMMINI_HAS_WS ? GEMMINI_WS : GEMMINI_OS, GEMMINI_NO_ACT, 0, 0, 1, 1, 0);
  gemmini_config_st(D_, GEMMINI_NO_ACT, 1.0f);
#if defined(CASE_MISSING_CONFIG)
  GEMMINI_CMD(GEMMINI_FUNCT_LOOP_CONV_WS_CONFIG_1, 0, 0);
  LAUNCH(1, 1); /* configs 2..6 missing */
#elif defined(CASE_CONFIG_CONSUMED)
  configure(1, 2, 1, 0, 0, 1);
  LAUNCH(1, 1);
  LAUNCH(1, 1); /* the first loop consumed its configuration */
#elif defined(CASE_ZERO_BOUNDS)
  configure(0, 2, 1, 0, 0, 1);
  LAUNCH(1, 1);
#elif defined(CASE_DILATION)
  configure(1, 2, 3, 0, 0, 2);
  LAUNCH(1, 1);
#elif defined(CASE_UNSUPPORTED_FLAGS)
  configure(1, 2, 1, 0, 0, 1);
  LAUNCH(1 | 2, 1); /* wrot180 */
#elif defined(CASE_BAD_PADDING)
  configure(1, 2, 1, 1, 1, 1); /* 2 padding rows of a 1-row input tile */
  LAUNCH(1, 1);
#elif defined(CASE_SP_OVERFLOW)
  configure(200, 200, 1, 0, 0, 1); /* 40000 input pixels */
  LAUNCH(1, 1);
#elif defined(CASE_ACC_OVERFLOW)
  configure(40, 40, 1, 0, 0, 1); /* 1600 output pixels of one channel block */
  LAUNCH(1, 1);
#elif defined(CASE_NOTHING_TO_ACCUMULATE)
  configure(1, 2, 1, 0, 0, 1);
  LAUNCH(0, 1); /* no bias address and no_bias 0: add onto a tile no loop left */
#elif defined(CASE_BAD_POOL)
  configure(2, 2, 1, 0, 0, 1); /* pooled 2x2 (CONFIG_2) of 2x2 conv outputs with pool size 2, stride 2 */
  GEMMINI_CMD(GEMMINI_FUNCT_LOOP_CONV_WS_CONFIG_2, (1ull << 48) | (2ull << 32) | (2u << 16) | (2u << 8),
              (1ull << 48) | (2ull << 32) | (2u << 16) | D_);
  LAUNCH(1, 0);
#elif defined(CASE_NO_UNROLLER)
  configure(1, 2, 1, 0, 0, 1); /* on a target without loops: [conv] */
  LAUNCH(1, 1);
#else
#error "define one CASE_..."
#endif
  gemmini_fence();
  return 0;
}
