"""Running programs on the target's simulator: I/O through the ELF, statistics, guest failures."""
