"""What a guest program left behind: exit code, trap report and statistics."""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from pathlib import Path

from elftools.elf.elffile import ELFFile
from elftools.elf.sections import SymbolTableSection

from tvmx.errors import GuestError

TRAP_RE = re.compile(r"tvmx-trap: mcause=(\d+) mepc=0x([0-9a-f]+) mtval=0x([0-9a-f]+) \(([^)]*)\)")
TRAP_EXIT_CODE = 134
TRAP_HINT = "look up that pc in the disassembly (06-assemble/model.dis for a tvmx build)"
STATS_MAGIC = 0x5354415453584D56  # keep in sync with runtime/tvmx_runtime.h
STATS_FORMAT = "<4Q"


@dataclass(frozen=True)
class Trap:
    cause: int
    cause_name: str
    pc: int
    tval: int
    symbol: str | None

    def describe(self) -> str:
        where = f" in {self.symbol}" if self.symbol else ""
        return (f"guest trapped: {self.cause_name} (mcause {self.cause}) at pc 0x{self.pc:x}{where}, "
                f"mtval 0x{self.tval:x}")


def symbolize(elf: Path, pc: int) -> str | None:
    """The function containing `pc`, as `name+0xoff`."""
    with elf.open("rb") as f:
        symtab = ELFFile(f).get_section_by_name(".symtab")
        if not isinstance(symtab, SymbolTableSection):
            return None
        best: tuple[int, str] | None = None
        for sym in symtab.iter_symbols():
            if sym["st_info"]["type"] != "STT_FUNC" or not sym.name:
                continue
            start, size = sym["st_value"], sym["st_size"]
            if start <= pc < start + max(size, 1) and (best is None or start > best[0]):
                best = (start, sym.name)
    return f"{best[1]}+0x{pc - best[0]:x}" if best else None


def parse_trap(console: str, elf: Path) -> Trap | None:
    m = TRAP_RE.search(console)
    if not m:
        return None
    pc = int(m.group(2), 16)
    return Trap(int(m.group(1)), m.group(4), pc, int(m.group(3), 16), symbolize(elf, pc))


def check_exit(returncode: int, console: str, elf: Path) -> None:
    """Raise GuestError for a trap or a non-zero exit of the guest."""
    trap = parse_trap(console, elf)
    if trap is not None:
        raise GuestError(trap.describe(), hint=TRAP_HINT,
                         guest_exit_code=returncode)
    if returncode != 0:
        raise GuestError(f"guest exited with code {returncode}", hint="see its console output above",
                         guest_exit_code=returncode)


@dataclass(frozen=True)
class GuestStats:
    instret: int
    exit_code: int


def parse_stats(blob: bytes) -> GuestStats | None:
    """The runtime's `struct tvmx_stats` at the start of the signature dump, if present."""
    if len(blob) < struct.calcsize(STATS_FORMAT):
        return None
    magic, instret, code, _ = struct.unpack_from(STATS_FORMAT, blob)
    return GuestStats(instret, code) if magic == STATS_MAGIC else None
