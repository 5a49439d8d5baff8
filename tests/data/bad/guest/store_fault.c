/* A bare-metal program that stores to an address with no memory behind it (a store access fault). */
#include <stdint.h>
#include <stdio.h>

__attribute__((noinline)) void poke(uintptr_t addr) { *(volatile uint32_t *)addr = 1; }

int main(void) {
  printf("about to fault\n");
  poke(0x40);
  return 0;
}
