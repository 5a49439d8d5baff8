/* A bare-metal program that never ends: `tvmx run --timeout` must stop it. */
int main(void) {
  for (;;) __asm__ volatile("");
}
