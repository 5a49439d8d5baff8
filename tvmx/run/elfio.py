"""Model I/O through the ELF itself: inputs are patched into a copy of the file (no recompile),
outputs are read back from Spike's dump of the `.tvmx_outputs` region."""

from __future__ import annotations

import shutil
import struct
from pathlib import Path

import numpy as np
from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile
from elftools.elf.sections import SymbolTableSection

from tvmx.errors import InputError, one_line


def symbols(elf: Path, names: set[str]) -> dict[str, tuple[int, int]]:
    """name -> (address, size) for the requested symbols."""
    try:
        table = _symbol_table(elf)
    except (ELFError, ValueError, IndexError, struct.error) as exc:  # a corrupt file: its tables point nowhere
        raise InputError(f"{elf}: not a readable ELF file ({exc.__class__.__name__}: {one_line(str(exc), 80)})",
                         hint="pass an ELF built by `tvmx compile` or the target's toolchain") from exc
    return {name: table[name] for name in names if name in table}


_SYMBOL_CACHE: dict[tuple[str, int, int], dict[str, tuple[int, int]]] = {}
# Elf32_Sym / Elf64_Sym, little-endian (RISC-V): the fields we read, in their file order
_SYM32 = np.dtype([("name", "<u4"), ("value", "<u4"), ("size", "<u4"), ("info", "u1"), ("other", "u1"),
                   ("shndx", "<u2")])
_SYM64 = np.dtype([("name", "<u4"), ("info", "u1"), ("other", "u1"), ("shndx", "<u2"), ("value", "<u8"),
                   ("size", "<u8")])


def _symbol_table(elf: Path) -> dict[str, tuple[int, int]]:
    """Every named symbol of the ELF, parsed once per file version. pyelftools' per-symbol parsing
    costs ~0.4 s for a model's few thousand symbols; numpy reads the table in one go."""
    st = elf.stat()
    key = (str(elf.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _SYMBOL_CACHE:
        table: dict[str, tuple[int, int]] = {}
        with elf.open("rb") as f:
            elffile = ELFFile(f)
            symtab = elffile.get_section_by_name(".symtab")
            if isinstance(symtab, SymbolTableSection):
                strings = elffile.get_section(symtab["sh_link"]).data()
                syms = np.frombuffer(symtab.data(), _SYM64 if elffile.elfclass == 64 else _SYM32)
                for name_at, value, size in zip(syms["name"], syms["value"], syms["size"], strict=True):
                    if name_at:
                        end = strings.index(b"\0", int(name_at))
                        table.setdefault(strings[int(name_at):end].decode(errors="replace"), (int(value), int(size)))
        if len(_SYMBOL_CACHE) > 64:
            _SYMBOL_CACHE.clear()
        _SYMBOL_CACHE[key] = table
    return _SYMBOL_CACHE[key]


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
