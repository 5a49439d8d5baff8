/* HTIF console and exit for Spike (and any host speaking tohost/fromhost), plus picolibc's stdio glue. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include "tvmx_runtime.h"

volatile uint64_t tohost __attribute__((section(".htif"), aligned(64)));
volatile uint64_t fromhost __attribute__((section(".htif"), aligned(64)));

#define HTIF_SYS_WRITE 64

/* One HTIF round trip. The host spins until it has served the request, so each call costs
   thousands of guest instructions: keep console output out of measured regions. */
static void htif_call(uint64_t value) {
  tohost = value;
  while (fromhost == 0) {
  }
  fromhost = 0;
}

static void htif_write(const char *buf, size_t len) {
  static volatile uint64_t magic[8] __attribute__((aligned(64)));
  magic[0] = HTIF_SYS_WRITE;
  magic[1] = 1; /* host stdout */
  magic[2] = (uintptr_t)buf;
  magic[3] = len;
  __asm__ volatile("fence" ::: "memory");
  htif_call((uintptr_t)magic);
}

void _exit(int code) {
  __asm__ volatile("fence" ::: "memory");
  for (;;) tohost = ((uint64_t)(unsigned)code << 1) | 1;
}

/* Line-buffered stdout: one HTIF call per line instead of per character. */
static char line[256];
static size_t line_len;

static int console_flush(FILE *f) {
  (void)f;
  if (line_len) htif_write(line, line_len);
  line_len = 0;
  return 0;
}

static int console_putc(char c, FILE *f) {
  line[line_len++] = c;
  if (c == '\n' || line_len == sizeof line) console_flush(f);
  return (unsigned char)c;
}

static FILE console = FDEV_SETUP_STREAM(console_putc, NULL, console_flush, _FDEV_SETUP_WRITE);
FILE *const stdout = &console;
FILE *const stderr = &console;
FILE *const stdin = NULL;

/* lld resolves undefined weak hooks to address 0, which overflows PC-relative relocations once
   .text passes 4 KiB: give picolibc's start-up and exit hooks real definitions. */
__attribute__((weak)) void _init(void) {}
__attribute__((weak)) void _fini(void) {}

static const char *trap_causes[] = {
    "instruction address misaligned", "instruction access fault", "illegal instruction",
    "breakpoint", "load address misaligned", "load access fault", "store address misaligned",
    "store access fault", "ecall from U-mode", "ecall from S-mode", "reserved", "ecall from M-mode",
    "instruction page fault", "load page fault", "reserved", "store page fault"};

void __tvmx_trap(uint64_t mcause, uint64_t mepc, uint64_t mtval) {
  const char *name = mcause < 16 ? trap_causes[mcause] : "unknown";
  printf("\n" TVMX_TRAP_TAG " mcause=%lu mepc=0x%lx mtval=0x%lx (%s)\n", (unsigned long)mcause,
         (unsigned long)mepc, (unsigned long)mtval, name);
  fflush(stdout);
  _exit(TVMX_TRAP_EXIT_CODE);
}

int main(void);

/* Counters around main. Spike retires one instruction per cycle; accelerator models add stalls. */
struct tvmx_stats tvmx_stats __attribute__((section(".tvmx_outputs"), aligned(64)));

static inline uint64_t read_instret(void) {
  uint64_t v;
  __asm__ volatile("csrr %0, minstret" : "=r"(v));
  return v;
}

void __tvmx_start(void) {
  tvmx_stats.magic = TVMX_STATS_MAGIC;
  uint64_t start = read_instret();
  int code = main();
  tvmx_stats.instret = read_instret() - start;
  tvmx_stats.exit_code = (uint64_t)code;
  fflush(stdout);
  _exit(code);
}
