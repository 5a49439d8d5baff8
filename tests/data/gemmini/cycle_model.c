/* Small command sequences timed by the model's own counters (test_cycle_model.py has the expected
   counts, worked out by hand from TIMING.md's rules). Every sequence starts on idle units (after a
   fence) and runs between two COUNTER reads with no other instruction in between, so the CPU's part
   is exactly one cycle per instruction. out_t[case] = cycles, out_s[case] = stall cycles between
   the reads; -DCASE_DRAIN: the program ends with work still queued (see the test). */
#include <stdint.h>

#include "gemmini.h"

#define D_ GEMMINI_DIM
#define MAXB GEMMINI_MAX_BLOCK_LEN
static int8_t A[MAXB * D_ * D_] __attribute__((aligned(64)));
static int8_t B[2 * D_ * D_] __attribute__((aligned(64)));
static int32_t bias[D_] __attribute__((aligned(64)));
__attribute__((section(".tvmx_outputs"), aligned(64))) int8_t out_c[D_ * D_];
__attribute__((section(".tvmx_outputs"), aligned(64))) uint64_t out_t[8];
__attribute__((section(".tvmx_outputs"), aligned(64))) uint64_t out_s[8];

#define CTR(dst, id) ".insn r 0x7b, 0x7, 126, " dst ", " id ", x0\n\t"
#define CMD(funct, rs1, rs2) ".insn r 0x7b, 0x3, " #funct ", x0, " rs1 ", " rs2 "\n\t"

/* cycles and stalls of `body` (asm text; its register operands are %6.., after the four outputs and
   the two counter ids) */
#define TIMED(n, body, ...)                                                                                  \
  do {                                                                                                     \
    gemmini_fence();                                                                                       \
    uint64_t c0, c1, s0, s1;                                                                               \
    __asm__ volatile(CTR("%0", "%4") CTR("%2", "%5") body CTR("%1", "%4") CTR("%3", "%5")                   \
                     : "=&r"(c0), "=&r"(c1), "=&r"(s0), "=&r"(s1)                                          \
                     : "r"((uint64_t)GEMMINI_CTR_CYCLES), "r"((uint64_t)GEMMINI_CTR_STALL), __VA_ARGS__     \
                     : "memory");                                                                          \
    out_t[n] = c1 - c0 - 1; /* as if one read before and one after: less the stall read in between */     \
    out_s[n] = s1 - s0;                                                                                    \
  } while (0)

/* A 3x3 conv loop long enough to outlast the program's exit: 16 x 32 outputs, 4 DIM input channels,
   DIM output channels, no bias, no padding (inputs all 0) */
#define BIG_IH 18
#define BIG_IW 34
static int8_t XB[BIG_IH * BIG_IW * 4 * D_] __attribute__((aligned(64)));
static int8_t WB[9 * 4 * D_ * D_] __attribute__((aligned(64)));
static int8_t YB[16 * 32 * D_] __attribute__((aligned(64)));
static void big_loop_config(void) {
  gemmini_loop_conv_ws_config(1, BIG_IH, BIG_IW, 4 * D_, D_, 16, 32, 16, 32, 1, 0, 3, 0, 0, 0, 1, 16, 32, D_, 3, 3,
                              4 * D_, 0, 0, 0, 0, 0, 0, 0, 0, 16, 32, WB, YB, 0, XB, 4 * D_, D_, D_);
}

static uint64_t opnd(uint32_t local, unsigned cols, unsigned rows) { return GEMMINI_OPERAND(local, cols, rows); }

int main(void) {
  for (unsigned i = 0; i < sizeof A; i++) A[i] = (int8_t)(i * 7 % 23 - 11);
  for (unsigned i = 0; i < sizeof B; i++) B[i] = (int8_t)(i * 5 % 19 - 9);
  for (unsigned i = 0; i < D_; i++) bias[i] = (int32_t)(i * 1000) - 7000;
  gemmini_config_ex(GEMMINI_WS, GEMMINI_NO_ACT, 0, 0, 1, 1, 0);
  gemmini_config_ld(0, D_, 1.0f, 0, D_);
  gemmini_config_ld(1, D_, 1.0f, 0, D_);
  gemmini_config_st(D_, GEMMINI_NO_ACT, 1.0f);
#if defined(CASE_DRAIN)
  big_loop_config();
  gemmini_fence();
  uint64_t c0;
  __asm__ volatile(CTR("%0", "%1") CMD(15, "%2", "%3")
                   : "=&r"(c0)
                   : "r"((uint64_t)GEMMINI_CTR_CYCLES), "r"((uint64_t)1), "r"((uint64_t)1)
                   : "memory");
  out_t[0] = c0; /* the loop starts at c0 + 1 and is still running when main returns */
  return 0;
#else
  /* 0: load-compute-store chain: mvin A, mvin2 B, preload B -> C (accumulator), compute A, mvout C, flush */
  TIMED(0, CMD(2, "%6", "%7") CMD(1, "%8", "%9") CMD(6, "%9", "%10") CMD(4, "%7", "%11") CMD(3, "%12", "%10")
           CMD(7, "x0", "x0"),
        "r"(A), "r"(opnd(0, D_, D_)), "r"(B), "r"(opnd(D_, D_, D_)), "r"(opnd(GEMMINI_ACC_ADDR(0), D_, D_)),
        "r"(opnd(GEMMINI_GARBAGE, D_, D_)), "r"(out_c));
  /* 1: a full load queue: ten mvins of MAXB blocks (DIM rows of DIM * MAXB bytes), no flush */
  gemmini_config_ld(0, D_ * MAXB, 1.0f, 0, D_);
  TIMED(1, CMD(2, "%6", "%7") CMD(2, "%6", "%8") CMD(2, "%6", "%9") CMD(2, "%6", "%7") CMD(2, "%6", "%8")
           CMD(2, "%6", "%9") CMD(2, "%6", "%7") CMD(2, "%6", "%8") CMD(2, "%6", "%9") CMD(2, "%6", "%7"),
        "r"(A), "r"(opnd(0, D_ * MAXB, D_)), "r"(opnd(D_ * MAXB, D_ * MAXB, D_)),
        "r"(opnd(2 * D_ * MAXB, D_ * MAXB, D_)));
  gemmini_config_ld(0, D_, 1.0f, 0, D_);
  /* 2: read after write on one row: mvin of one row, preload of that row as B, flush */
  TIMED(2, CMD(2, "%6", "%7") CMD(6, "%8", "%9") CMD(7, "x0", "x0"),
        "r"(A), "r"(opnd(100, D_, 1)), "r"(opnd(100, D_, 1)), "r"(opnd(GEMMINI_GARBAGE, D_, D_)));
  /* 3: the same with the preload reading the next row, which nothing writes */
  TIMED(3, CMD(2, "%6", "%7") CMD(6, "%8", "%9") CMD(7, "x0", "x0"),
        "r"(A), "r"(opnd(200, D_, 1)), "r"(opnd(201, D_, 1)), "r"(opnd(GEMMINI_GARBAGE, D_, D_)));
  /* 4: LOOP_WS of 1 x 1 x 2 blocks (A: D_ x 2 D_, B: 2 D_ x D_), flush */
  GEMMINI_CMD(GEMMINI_FUNCT_LOOP_WS_CONFIG_BOUNDS, 0, (2ull << 32) | (1ull << 16) | 1);
  GEMMINI_CMD(GEMMINI_FUNCT_LOOP_WS_CONFIG_ADDRS_AB, (uintptr_t)A, (uintptr_t)B);
  GEMMINI_CMD(GEMMINI_FUNCT_LOOP_WS_CONFIG_ADDRS_DC, 0, (uintptr_t)out_c);
  GEMMINI_CMD(GEMMINI_FUNCT_LOOP_WS_CONFIG_STRIDES_AB, 2 * D_, D_);
  GEMMINI_CMD(GEMMINI_FUNCT_LOOP_WS_CONFIG_STRIDES_DC, 0, D_);
  gemmini_config_ld(0, 2 * D_, 1.0f, 0, D_);
  TIMED(4, CMD(8, "%6", "%6") CMD(7, "x0", "x0"), "r"((uint64_t)0));
  /* 5: LOOP_CONV_WS of a 1x1 conv, one output row of D_ pixels, D_ channels in and out, with bias */
  gemmini_loop_conv_ws_config(1, 1, D_, D_, D_, 1, D_, 1, D_, 1, 0, 1, 0, 0, 0, 1, 1, D_, D_, 1, 1, D_, 0, 0, 0, 0, 0,
                              0, 0, 0, 1, D_, B, out_c, bias, A, D_, D_, D_);
  TIMED(5, CMD(15, "%6", "%7") CMD(7, "x0", "x0"), "r"((uint64_t)0), "r"((uint64_t)1));
  /* 6: the drain case's loop, run to its end */
  big_loop_config();
  TIMED(6, CMD(15, "%6", "%7") CMD(7, "x0", "x0"), "r"((uint64_t)1), "r"((uint64_t)1));
  return 0;
#endif
}
