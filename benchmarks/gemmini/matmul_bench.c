/* One int8 matmul C = sat8(round(A·B * scale)) of size SIZE^3, twice: through gemmini.h's
   tiled_matmul with gemmini_auto_tiling's tiling (cycles from the model's counters; -DHW_LOOP=0/1
   forces the CPU-issued or the LOOP_WS path, with that path's default tiling) and as plain C on
   the CPU (minstret, Spike retiring one instruction per cycle). Prints one RESULT line; the outputs
   must agree. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>

#include "gemmini.h"

#ifndef SIZE
#error "compile with -DSIZE=n"
#endif
#define SCALE (1.0f / 256)

static int8_t A[SIZE * SIZE], B[SIZE * SIZE], C_acc[SIZE * SIZE], C_cpu[SIZE * SIZE];
static int32_t row[SIZE];

static void fill(int8_t *x, size_t n, uint32_t seed) {
  for (size_t i = 0; i < n; i++) {
    seed = seed * 1664525u + 1013904223u;
    x[i] = (int8_t)(seed >> 24);
  }
}

static inline uint64_t instret(void) {
  uint64_t v;
  __asm__ volatile("csrr %0, minstret" : "=r"(v));
  return v;
}

/* i-k-j with an int32 row accumulator: the usual fast scalar form */
static void cpu_matmul(size_t n, const int8_t *a, const int8_t *b, int8_t *c) {
  for (size_t i = 0; i < n; i++) {
    for (size_t j = 0; j < n; j++) row[j] = 0;
    for (size_t k = 0; k < n; k++) {
      int32_t x = a[i * n + k];
      const int8_t *bk = b + k * n;
      for (size_t j = 0; j < n; j++) row[j] += x * bk[j];
    }
    for (size_t j = 0; j < n; j++) {
      float r = nearbyintf((float)row[j] * SCALE);
      c[i * n + j] = (int8_t)(r > 127.0f ? 127 : r < -128.0f ? -128 : (int)r);
    }
  }
}

int main(void) {
  fill(A, sizeof A, 1);
  fill(B, sizeof B, 2);
  uint64_t c0 = gemmini_counter(GEMMINI_CTR_CYCLES);
  uint64_t l0 = gemmini_counter(GEMMINI_CTR_LOAD_BUSY), e0 = gemmini_counter(GEMMINI_CTR_EXEC_BUSY);
  uint64_t s0 = gemmini_counter(GEMMINI_CTR_STORE_BUSY), st0 = gemmini_counter(GEMMINI_CTR_STALL);
#ifdef HW_LOOP /* the header's default tiling for that issue path */
  const gemmini_tiling t = gemmini_auto_tiling_issue(SIZE, SIZE, SIZE, HW_LOOP);
#else
  const gemmini_tiling t = gemmini_auto_tiling(SIZE, SIZE, SIZE);
#endif
  uint64_t i0 = instret();
  tiled_matmul(SIZE, SIZE, SIZE, A, B, NULL, C_acc, SIZE, SIZE, 0, SIZE, 1.0f, 1.0f, SCALE, GEMMINI_NO_ACT, 0, t);
  uint64_t i1 = instret();
  uint64_t c1 = gemmini_counter(GEMMINI_CTR_CYCLES);
  uint64_t l1 = gemmini_counter(GEMMINI_CTR_LOAD_BUSY), e1 = gemmini_counter(GEMMINI_CTR_EXEC_BUSY);
  uint64_t s1 = gemmini_counter(GEMMINI_CTR_STORE_BUSY), st1 = gemmini_counter(GEMMINI_CTR_STALL);
  uint64_t p0 = instret();
  cpu_matmul(SIZE, A, B, C_cpu);
  uint64_t p1 = instret();
  unsigned long mismatches = 0;
  for (size_t i = 0; i < sizeof A; i++) mismatches += C_acc[i] != C_cpu[i];
  printf("RESULT cycles=%lu cpu_instret=%lu accel_instret=%lu load=%lu exec=%lu store=%lu stall=%lu "
         "mismatches=%lu tile=%lux%lux%lu hw_loop=%lu\n",
         (unsigned long)(c1 - c0), (unsigned long)(p1 - p0), (unsigned long)(i1 - i0), (unsigned long)(l1 - l0),
         (unsigned long)(e1 - e0), (unsigned long)(s1 - s0), (unsigned long)(st1 - st0), mismatches,
         (unsigned long)t.i, (unsigned long)t.j, (unsigned long)t.k, (unsigned long)t.hw_loop);
  return mismatches != 0;
}
