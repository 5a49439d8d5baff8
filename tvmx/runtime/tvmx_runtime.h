/* Interface between the tvmx bare-metal runtime, generated code and the host (`tvmx run`). */
#ifndef TVMX_RUNTIME_H
#define TVMX_RUNTIME_H
#include <stdint.h>

#define TVMX_TRAP_TAG "tvmx-trap:"
#define TVMX_TRAP_EXIT_CODE 134
#define TVMX_STATS_MAGIC 0x5354415453584d56ull /* "VMXSTATS" */

/* Lives at the start of the .tvmx_outputs section, which Spike dumps at exit. */
struct tvmx_stats {
  uint64_t magic;
  uint64_t instret;   /* instructions retired inside main() */
  uint64_t exit_code;
  uint64_t reserved;
};

/* Reads a cycle-model region's counters where an accelerator provides them. */
static inline uint64_t tvmx_instret(void) {
  uint64_t v;
  __asm__ volatile("csrr %0, minstret" : "=r"(v));
  return v;
}

#endif
