# tvmx bare-metal start-up: stack, gp, tp, FPU/vector/RoCC enable, trap vector, zeroed .bss.
# A fixed file symbol: without it, gcc's assembler names the file after its random temporary object.
  .file "crt0.S"
  .section .text.init, "ax"
  .globl _start
_start:
  .option push
  .option norelax
  la gp, __global_pointer$
  .option pop
  la sp, __stack_top
  la tp, __tls_base
  # mstatus: FS=initial (bit 13), VS=initial (bit 9), XS=initial (bit 15); FP, RVV and RoCC code trap otherwise
  li t0, (1 << 13) | (1 << 9) | (1 << 15)
  csrs mstatus, t0
  la t0, __tvmx_trap_entry  /* first: a fault from here on is reported, not a hang */
  csrw mtvec, t0
#ifdef __riscv_flen
  csrwi fcsr, 0  /* only a core with F has it (a soft-float target, rv64imac, traps on it) */
#endif
  # zero .bss and .tbss
  la t0, __bss_start
  la t1, __bss_end
1:
  bgeu t0, t1, 2f
#if __riscv_xlen == 64
  sd zero, 0(t0)
#else
  sw zero, 0(t0)
#endif
  addi t0, t0, __riscv_xlen / 8
  j 1b
2:
  call __tvmx_start
3:
  j 3b

  # Trap: hand mcause, mepc, mtval to C, which reports them and exits.
  .balign 4
__tvmx_trap_entry:
  la sp, __stack_top
  csrr a0, mcause
  csrr a1, mepc
  csrr a2, mtval
  call __tvmx_trap
4:
  j 4b
