/* The runtime's memcpy and memset against byte loops, over every alignment of both pointers and
   lengths 0..72: prints the first difference and exits with the number of cases that differ. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static void *(*volatile copy)(void *, const void *, size_t) = memcpy;
static void *(*volatile fill)(void *, int, size_t) = memset;

int main(void) {
  static unsigned char src[96] __attribute__((aligned(8))), dst[96] __attribute__((aligned(8)));
  static unsigned char want[96];
  int bad = 0;
  for (unsigned i = 0; i < sizeof src; i++) src[i] = (unsigned char)(i * 37 + 11);
  for (size_t so = 0; so < 8; so++)
    for (size_t d0 = 0; d0 < 8; d0++)
      for (size_t n = 0; n <= 72; n++) {
        for (unsigned i = 0; i < sizeof dst; i++) dst[i] = want[i] = 0xEE;
        for (size_t i = 0; i < n; i++) want[d0 + i] = src[so + i];
        void *r = copy(dst + d0, src + so, n);
        int ok = r == dst + d0;
        for (unsigned i = 0; i < sizeof dst; i++) ok &= dst[i] == want[i];
        if (!ok && bad++ == 0) printf("memcpy differs: src+%u dst+%u n=%u\n", (unsigned)so, (unsigned)d0, (unsigned)n);
        for (size_t i = 0; i < n; i++) want[d0 + i] = (unsigned char)(0xA0 + so);
        r = fill(dst + d0, (int)(0xFFFFFF00u | (0xA0 + so)), n); /* only the low byte counts */
        ok = r == dst + d0;
        for (unsigned i = 0; i < sizeof dst; i++) ok &= dst[i] == want[i];
        if (!ok && bad++ == 0) printf("memset differs: value 0x%x dst+%u n=%u\n", (unsigned)(0xA0 + so),
                                      (unsigned)d0, (unsigned)n);
      }
  printf("%d cases differ\n", bad);
  return bad;
}
