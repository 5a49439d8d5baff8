"""Stage 6, assemble: cross-compile the sources with the bare-metal runtime into model.elf."""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import secrets
from pathlib import Path

from elftools.elf.elffile import ELFFile

from tvmx.build.builddir import atomic_write
from tvmx.stages.artifacts import GeneratedSources, LinkedProgram
from tvmx.stages.context import StageContext
from tvmx.toolchain.riscv import linker_script


def section_sizes(elf_path: object) -> dict[str, int]:
    with open(str(elf_path), "rb") as f:
        elf = ELFFile(f)
        return {s.name: s["sh_size"] for s in elf.iter_sections() if s["sh_flags"] & 0x2 and s.name}


def _inside_relative(root: Path, path: Path) -> Path:
    """`path` relative to the build folder `root` when it lies inside it; other paths (the runtime,
    an accelerator's header folder) stay absolute."""
    resolved = path.resolve()
    return Path(os.path.relpath(resolved, root)) if root in resolved.parents else resolved


def _runtime_copies(sources: list[Path], folder: Path) -> list[Path]:
    """The runtime's sources, copied into the build folder: clang 14's assembler keeps the absolute
    path of a .S file in its debug info whatever the prefix maps, and that path is wherever tvmx is
    installed. Compiled from here, a checkout and a wheel of the same tvmx link the same bytes."""
    folder.mkdir(exist_ok=True)
    for source in sources:
        atomic_write(folder / source.name, source.read_bytes())
    return [folder / source.name for source in sources]


def run(ctx: StageContext, gen: GeneratedSources) -> LinkedProgram:
    out_dir = ctx.stage_dir(6, "assemble")
    tc = ctx.toolchain
    include_dirs = gen.include_dirs
    if ctx.accelerator is not None:
        include_dirs += ctx.accelerator.include_dirs(out_dir)
    elf, map_file = out_dir / "model.elf", out_dir / "model.map"
    # The linker writes unique temporary names, renamed once the link is complete: a killed or
    # failed link never leaves a model.elf or model.map that looks finished.
    token = secrets.token_hex(6)
    tmp_elf, tmp_map = out_dir / f".model.elf.{token}.tmp", out_dir / f".model.map.{token}.tmp"
    ctx.build.will_write([elf, map_file, tmp_elf, tmp_map])
    script = out_dir / "link.ld"  # the target's RAM: a program too big for it fails here, not on the simulator
    atomic_write(script, linker_script(ctx.target.simulator.memory_mb))
    # Reproducible: the compiler runs in the build folder on relative paths, and the folder's own
    # path is mapped away in debug info, so the same model built in two folders is the same ELF.
    root = ctx.build.root.resolve()
    here = functools.partial(_inside_relative, root)
    shipped = {here(d): f"tvmx-include/{d.name}" for d in include_dirs if here(d).is_absolute()}
    flags = (f"-O{ctx.options.opt_level}", *tc.reproducible_flags(root, shipped), *ctx.options.cflags)
    cmd = tc.build_elf([here(s) for s in gen.sources], here(tmp_elf), map_file=here(tmp_map),
                       include_dirs=tuple(here(d) for d in include_dirs), extra_flags=flags, cwd=root,
                       runtime=[here(s) for s in _runtime_copies(tc.runtime_sources(), out_dir / "runtime")],
                       script=here(script))
    try:
        ctx.executor.run(cmd)
        if ctx.executor.dry_run:  # nothing was built: report where it would be
            return LinkedProgram(elf, map_file, out_dir / "model.dis", gen.io_json, {})
        tmp_map.replace(map_file)
        tmp_elf.replace(elf)  # only a complete link is ever called model.elf
    finally:
        tmp_elf.unlink(missing_ok=True)
        tmp_map.unlink(missing_ok=True)
    disasm = out_dir / "model.dis"
    # in the build folder: the debug info's source paths are relative to it (for -S)
    atomic_write(disasm, ctx.executor.run(dataclasses.replace(tc.disassemble(here(elf)), cwd=root)).stdout)
    sizes = section_sizes(elf)
    atomic_write(out_dir / "size.json", json.dumps(sizes, indent=2) + "\n")
    atomic_write(ctx.build.root / "model.elf", elf.read_bytes())
    atomic_write(ctx.build.root / "io.json", gen.io_json.read_bytes())
    ctx.build.record_stage("assemble", gen.sources, [elf, map_file, disasm], {"toolchain": tc.describe()})
    return LinkedProgram(ctx.build.root / "model.elf", map_file, disasm, ctx.build.root / "io.json", sizes)
