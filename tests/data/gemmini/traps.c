/* One malformed Gemmini command per build (-DCASE_...): each must trap as an illegal instruction. */
#include <stdint.h>
#include <stdio.h>

#include "gemmini.h"

static int8_t buf[GEMMINI_DIM * GEMMINI_DIM];

int main(void) {
  gemmini_config_ld(0, GEMMINI_DIM, 1.0f, 0, GEMMINI_DIM);
  gemmini_config_st(GEMMINI_DIM, GEMMINI_NO_ACT, 1.0f);
#if defined(CASE_MVIN_OUT_OF_RANGE)
  gemmini_mvin(buf, GEMMINI_SP_ROWS - GEMMINI_DIM / 2, GEMMINI_DIM, GEMMINI_DIM);
#elif defined(CASE_ACC_OUT_OF_RANGE)
  gemmini_mvout(buf, GEMMINI_ACC_ADDR(GEMMINI_ACC_ROWS), GEMMINI_DIM, 1);
#elif defined(CASE_UNKNOWN_FUNCT)
  GEMMINI_CMD(22, 0, 0); /* no such command */
#elif defined(CASE_COMPUTE_BEFORE_CONFIG)
  gemmini_preload(0, GEMMINI_ACC_ADDR(0), GEMMINI_DIM, GEMMINI_DIM, GEMMINI_DIM, GEMMINI_DIM);
#elif defined(CASE_MVIN_BEFORE_CONFIG)
  gemmini_mvin2(buf, 0, GEMMINI_DIM, GEMMINI_DIM);
#elif defined(CASE_COMPUTE_WITHOUT_PRELOAD)
  gemmini_config_ex(GEMMINI_WS, GEMMINI_NO_ACT, 0, 0, 1, 1, 0);
  gemmini_compute_preloaded(0, GEMMINI_GARBAGE, GEMMINI_DIM, GEMMINI_DIM, GEMMINI_DIM, GEMMINI_DIM);
#elif defined(CASE_BAD_ACTIVATION)
  gemmini_config_ex(GEMMINI_WS, 2, 0, 0, 1, 1, 0);
#elif defined(CASE_FLAGS_ON_SPAD)
  gemmini_mvin(buf, GEMMINI_ACCUMULATE | 4, GEMMINI_DIM, GEMMINI_DIM);
#elif defined(CASE_TOO_MANY_ROWS)
  gemmini_mvout(buf, 0, GEMMINI_DIM, GEMMINI_DIM + 1);
#elif defined(CASE_WS_A_TRANSPOSE)
  gemmini_config_ex(GEMMINI_WS, GEMMINI_NO_ACT, 1, 0, 1, 1, 0);
#elif defined(CASE_COUNTER_ID)
  printf("%lu\n", (unsigned long)gemmini_counter(200));
#elif defined(CASE_WRONG_FUNCT3)
  __asm__ volatile(".insn r 0x7b, 0x7, 2, x5, %0, %1" ::"r"(buf), "r"(0) : "x5", "memory");
#elif defined(CASE_DRAM_FAULT)
  gemmini_mvin((void *)0x10, 0, GEMMINI_DIM, GEMMINI_DIM); /* no memory there */
#else
#error "define one CASE_..."
#endif
  gemmini_fence();
  return 0;
}
