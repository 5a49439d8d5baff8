"""Model I/O through the ELF itself: inputs are patched into a copy of the file (no recompile),
outputs are read back from Spike's dump of the `.tvmx_outputs` region."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
from elftools.elf.elffile import ELFFile
from elftools.elf.sections import SymbolTableSection

from tvmx.errors import InputError


def symbols(elf: Path, names: set[str]) -> dict[str, tuple[int, int]]:
    """name -> (address, size) for the requested symbols."""
    found: dict[str, tuple[int, int]] = {}
    with elf.open("rb") as f:
        symtab = ELFFile(f).get_section_by_name(".symtab")
        if isinstance(symtab, SymbolTableSection):
            for sym in symtab.iter_symbols():
                if sym.name in names:
                    found[sym.name] = (sym["st_value"], sym["st_size"])
    return found


def patch_inputs(elf: Path, out: Path, arrays: dict[str, bytes]) -> None:
    """Copy `elf` to `out` with each symbol's bytes replaced (the symbols live in PROGBITS data)."""
    shutil.copyfile(elf, out)
    with out.open("r+b") as f:
        elffile = ELFFile(f)
        places = symbols(out, set(arrays))
        for name, data in arrays.items():
            if name not in places:
                raise InputError(f"{elf}: no input symbol '{name}'", hint="recompile the model with `tvmx compile`")
            addr, size = places[name]
            if len(data) != size:
                raise InputError(f"input for '{name}' has {len(data)} bytes, the program expects {size}")
            offset = _file_offset(elffile, addr)
            f.seek(offset)
            f.write(data)


def _file_offset(elffile: ELFFile, addr: int) -> int:
    for seg in elffile.iter_segments():
        if seg["p_type"] == "PT_LOAD" and seg["p_vaddr"] <= addr < seg["p_vaddr"] + seg["p_filesz"]:
            return int(seg["p_offset"] + addr - seg["p_vaddr"])
    raise InputError(f"address 0x{addr:x} is not backed by file data", hint="recompile with this tvmx version")


def read_region(blob: bytes, base: int, addr: int, size: int) -> bytes:
    start = addr - base
    if start < 0 or start + size > len(blob):
        raise InputError("output lies outside the dumped region", hint="recompile with this tvmx version")
    return blob[start : start + size]


def to_array(data: bytes, dtype: str, shape: list[int]) -> np.ndarray:
    return np.frombuffer(data, dtype=np.dtype(dtype).newbyteorder("<")).reshape(shape).copy()
