/* Simulation speed: COMMANDS accelerator commands in the pattern of tiled_matmul's inner loop
   (preload + compute on full DIM x DIM tiles, a mvin and a mvout every 8 computes).
   Built with -DNO_ACCEL, every command becomes an empty asm with the same operands, so the two
   programs differ only in the custom instructions. */
#include <stdint.h>

#include "gemmini.h"

#define COMMANDS 1000000
#ifdef NO_ACCEL
#undef GEMMINI_CMD
#define GEMMINI_CMD(funct, rs1, rs2) __asm__ volatile("" ::"r"((uint64_t)(rs1)), "r"((uint64_t)(rs2)) : "memory")
#endif

static int8_t buf[GEMMINI_DIM * GEMMINI_DIM * 8];

int main(void) {
#ifdef EMPTY
  return 0;
#endif
  const uint32_t dim = GEMMINI_DIM;
  for (unsigned i = 0; i < sizeof buf; i++) buf[i] = (int8_t)(i * 37 + 11); /* non-zero operands */
  gemmini_config_ld(0, dim, 1.0f, 0, dim);
  for (uint32_t r = 0; r < 256 * dim; r += dim) gemmini_mvin(buf + (r & 63) * dim, r, dim, dim);
  gemmini_config_ex(GEMMINI_WS, GEMMINI_NO_ACT, 0, 0, 1, 1, 0);
  gemmini_config_ld(0, dim, 1.0f, 0, dim);
  gemmini_config_st(dim, GEMMINI_NO_ACT, 1.0f);
  long issued = 4 + 256;
  for (uint32_t it = 0; issued < COMMANDS; it++) {
    uint32_t slot = it & 7;
    if (slot == 0) {
      gemmini_mvin(buf + (it & 63) * dim, (it & 255) * dim, dim, dim);
      gemmini_mvout(buf + ((it + 32) & 63) * dim, GEMMINI_ACC_ADDR((it & 31) * dim), dim, dim);
      issued += 2;
    }
    gemmini_preload(slot == 0 ? (it & 255) * dim : GEMMINI_GARBAGE,
                    GEMMINI_ACC_ADDR((slot * dim) % 1024) | GEMMINI_ACCUMULATE, dim, dim, dim, dim);
    if (slot == 0)
      gemmini_compute_preloaded(((it + 1) & 255) * dim, GEMMINI_GARBAGE, dim, dim, dim, dim);
    else
      gemmini_compute_accumulated(((it + 1) & 255) * dim, GEMMINI_GARBAGE, dim, dim, dim, dim);
    issued += 2;
  }
  gemmini_fence();
  return 0;
}
