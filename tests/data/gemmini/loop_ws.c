/* LOOP_WS on the model. -DCASE_CYCLES: one 1x1x1-block loop timed by the model's cycle counter
   (the expected count is worked out by hand in test_loop_ws.py) and its result. Every other
   CASE_...: a malformed loop that must trap as an illegal instruction. */
#include <stdint.h>

#include "gemmini.h"

#define D_ GEMMINI_DIM
static int8_t A[D_ * D_] __attribute__((aligned(64)));
static int8_t B[D_ * D_] __attribute__((aligned(64)));
__attribute__((section(".tvmx_outputs"), aligned(64))) int8_t out_c[D_ * D_];
__attribute__((section(".tvmx_outputs"), aligned(64))) uint64_t out_cycles[1];

/* what tiled_matmul configures before its loops: WS (OS on a target without it: the loop then
   traps for want of an unroller), strides of D_ elements, identity scales */
static void configure(void) {
  gemmini_config_ex(GEMMINI_HAS_WS ? GEMMINI_WS : GEMMINI_OS, GEMMINI_NO_ACT, 0, 0, 1, 1, 0);
  gemmini_config_ld(0, D_, 1.0f, 0, D_);
  gemmini_config_ld(1, D_, 1.0f, 0, D_);
  gemmini_config_ld(2, 0, 1.0f, 0, D_);
  gemmini_config_st(D_, GEMMINI_NO_ACT, 1.0f);
}

/* a loop of I x J x K blocks over A, B and out_c with strides D_ */
#define LOOP(I, J, K, pad_i, a_spad_id) \
  gemmini_loop_ws(I, J, K, pad_i, 0, 0, A, B, NULL, out_c, D_, D_, 0, D_, 0, 0, GEMMINI_NO_ACT, a_spad_id)

int main(void) {
  for (int i = 0; i < D_ * D_; i++) A[i] = (int8_t)(i * 7 % 23 - 11), B[i] = (int8_t)(i * 5 % 19 - 9);
  configure();
#if defined(CASE_CYCLES)
  GEMMINI_CMD(GEMMINI_FUNCT_LOOP_WS_CONFIG_BOUNDS, 0, (1ull << 32) | (1ull << 16) | 1);
  GEMMINI_CMD(GEMMINI_FUNCT_LOOP_WS_CONFIG_ADDRS_AB, (uintptr_t)A, (uintptr_t)B);
  GEMMINI_CMD(GEMMINI_FUNCT_LOOP_WS_CONFIG_ADDRS_DC, 0, (uintptr_t)out_c);
  GEMMINI_CMD(GEMMINI_FUNCT_LOOP_WS_CONFIG_STRIDES_AB, D_, D_);
  GEMMINI_CMD(GEMMINI_FUNCT_LOOP_WS_CONFIG_STRIDES_DC, 0, D_);
  gemmini_fence(); /* every unit idle: the loop's timeline starts from nothing */
  uint64_t c0, c1;
  /* counter, LOOP_WS, flush, counter: no other instruction between the two reads */
  __asm__ volatile(".insn r 0x7b, 0x7, 126, %0, %2, x0\n\t"
                   ".insn r 0x7b, 0x3, 8, x0, %3, %2\n\t"
                   ".insn r 0x7b, 0x3, 7, x0, x0, x0\n\t"
                   ".insn r 0x7b, 0x7, 126, %1, %2, x0"
                   : "=&r"(c0), "=&r"(c1)
                   : "r"((uint64_t)GEMMINI_CTR_CYCLES), "r"((uint64_t)0)
                   : "memory");
  out_cycles[0] = c1 - c0;
#elif defined(CASE_MISSING_CONFIG)
  GEMMINI_CMD(GEMMINI_FUNCT_LOOP_WS_CONFIG_BOUNDS, 0, (1ull << 32) | (1ull << 16) | 1);
  GEMMINI_CMD(GEMMINI_FUNCT_LOOP_WS_CONFIG_ADDRS_AB, (uintptr_t)A, (uintptr_t)B);
  GEMMINI_CMD(GEMMINI_FUNCT_LOOP_WS, 0, 0); /* no ADDRS_DC, STRIDES_AB, STRIDES_DC */
#elif defined(CASE_CONFIG_CONSUMED)
  LOOP(1, 1, 1, 0, 0);
  GEMMINI_CMD(GEMMINI_FUNCT_LOOP_WS, 0, 0); /* the first loop consumed its configuration */
#elif defined(CASE_ZERO_BOUNDS)
  LOOP(1, 0, 1, 0, 0);
#elif defined(CASE_BAD_PADDING)
  LOOP(1, 1, 1, D_, 0);
#elif defined(CASE_SP_OVERFLOW)
  LOOP(1, 1, GEMMINI_SP_ROWS / (2 * D_), 0, 0); /* (I*K + K*J) blocks = the whole scratchpad */
#elif defined(CASE_ACC_OVERFLOW)
  LOOP(GEMMINI_ACC_ROWS / (2 * D_) + 1, 1, 1, 0, 0);
#elif defined(CASE_TRANSPOSE)
  GEMMINI_CMD(GEMMINI_FUNCT_LOOP_WS_CONFIG_BOUNDS, 0, (1ull << 32) | (1ull << 16) | 1);
  GEMMINI_CMD(GEMMINI_FUNCT_LOOP_WS_CONFIG_ADDRS_AB, (uintptr_t)A, (uintptr_t)B);
  GEMMINI_CMD(GEMMINI_FUNCT_LOOP_WS_CONFIG_ADDRS_DC, 0, (uintptr_t)out_c);
  GEMMINI_CMD(GEMMINI_FUNCT_LOOP_WS_CONFIG_STRIDES_AB, D_, D_);
  GEMMINI_CMD(GEMMINI_FUNCT_LOOP_WS_CONFIG_STRIDES_DC, 0, D_);
  GEMMINI_CMD(GEMMINI_FUNCT_LOOP_WS, 0, 1); /* A transpose */
#elif defined(CASE_BAD_REUSE)
  LOOP(1, 1, 1, 0, 1); /* a_spad_id on the first loop: no A tile to reuse */
#elif defined(CASE_STRIDE_MISMATCH)
  gemmini_config_ld(0, 2 * D_, 1.0f, 0, D_); /* mvin's DRAM stride is not the loop's A stride */
  LOOP(1, 1, 1, 0, 0);
#elif defined(CASE_NO_UNROLLER)
  LOOP(1, 1, 1, 0, 0); /* run on a target without loops: [ws] */
#else
#error "define one CASE_..."
#endif
  gemmini_fence();
  return 0;
}
