/* A bare-metal program that executes an illegal instruction inside a named function. */
#include <stdio.h>

__attribute__((noinline)) void bad_kernel(void) { __asm__ volatile(".word 0x00000000"); }

int main(void) {
  printf("about to trap\n");
  bad_kernel();
  return 0;
}
