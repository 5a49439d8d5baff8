/* memcpy and memset, eight bytes at a time where the pointers allow it. They take the place of the
   C library's: picolibc's freestanding versions move one byte per six instructions, and the
   compilers call memcpy for every copy of a struct (the accelerator header passes its tilings
   by value), so a kernel launch spent hundreds of instructions in them. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* (GCC would otherwise turn the byte loops back into calls of the functions they are in.) */
#if defined(__GNUC__) && !defined(__clang__)
#define TVMX_NO_LIBCALLS __attribute__((optimize("no-tree-loop-distribute-patterns")))
#else
#define TVMX_NO_LIBCALLS
#endif

typedef uint64_t __attribute__((may_alias)) tvmx_word; /* reads and writes any type's bytes */

TVMX_NO_LIBCALLS void *memcpy(void *restrict dst, const void *restrict src, size_t n) {
  unsigned char *d = dst;
  const unsigned char *s = src;
  if ((((uintptr_t)d | (uintptr_t)s) & 7) == 0) {
    tvmx_word *dw = (tvmx_word *)(void *)d;
    const tvmx_word *sw = (const tvmx_word *)(const void *)s;
    for (; n >= 32; n -= 32, dw += 4, sw += 4) { /* (a tiling struct is 13 words) */
      const uint64_t w0 = sw[0], w1 = sw[1], w2 = sw[2], w3 = sw[3];
      dw[0] = w0, dw[1] = w1, dw[2] = w2, dw[3] = w3;
    }
    for (; n >= 8; n -= 8) *dw++ = *sw++;
    d = (unsigned char *)dw, s = (const unsigned char *)sw;
  }
  while (n--) *d++ = *s++;
  return dst;
}

TVMX_NO_LIBCALLS void *memset(void *dst, int c, size_t n) {
  unsigned char *d = dst;
  if (((uintptr_t)d & 7) == 0) {
    const uint64_t word = (uint64_t)(unsigned char)c * 0x0101010101010101u;
    for (; n >= 8; n -= 8, d += 8) *(tvmx_word *)(void *)d = word;
  }
  while (n--) *d++ = (unsigned char)c;
  return dst;
}
