"""External tools as data: commands, their executor, and the RISC-V toolchain that builds them."""
