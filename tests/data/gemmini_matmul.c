/* A bare-metal program using gemmini.h directly: one tiled int8 matmul checked against the CPU. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include "gemmini.h"

#define M 33
#define N 24
#define K 40
static elem_t A[M * K], B[K * N], C[M * N];
static acc_t D[N];

int main(void) {
  for (int i = 0; i < M * K; i++) A[i] = (elem_t)((i * 7) % 23 - 11);
  for (int i = 0; i < K * N; i++) B[i] = (elem_t)((i * 5) % 19 - 9);
  for (int j = 0; j < N; j++) D[j] = j * 3 - 30;
  const float scale = 0.0625f;
  tiled_matmul_auto(M, N, K, A, B, D, C, K, N, 0, N, 1.0f, 1.0f, scale, GEMMINI_RELU, 0);
  int bad = 0;
  for (int i = 0; i < M; i++)
    for (int j = 0; j < N; j++) {
      int32_t acc = D[j];
      for (int k = 0; k < K; k++) acc += (int32_t)A[i * K + k] * B[k * N + j];
      float v = nearbyintf((float)acc * scale); /* round half to even, as the accelerator's mvout */
      v = v > 127.0f ? 127.0f : (v < -128.0f ? -128.0f : v);
      if (v < 0.0f) v = 0.0f;
      bad += C[i * N + j] != (elem_t)v;
    }
  printf("gemmini matmul %dx%dx%d: %d mismatches\n", M, N, K, bad);
  return bad;
}
