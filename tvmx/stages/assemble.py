"""Stage 6, assemble: cross-compile the sources with the bare-metal runtime into model.elf."""

from __future__ import annotations

import json

from elftools.elf.elffile import ELFFile

from tvmx.build.builddir import atomic_write
from tvmx.stages.artifacts import GeneratedSources, LinkedProgram
from tvmx.stages.context import StageContext


def section_sizes(elf_path: object) -> dict[str, int]:
    with open(str(elf_path), "rb") as f:
        elf = ELFFile(f)
        return {s.name: s["sh_size"] for s in elf.iter_sections() if s["sh_flags"] & 0x2 and s.name}


def run(ctx: StageContext, gen: GeneratedSources) -> LinkedProgram:
    out_dir = ctx.stage_dir(6, "assemble")
    tc = ctx.toolchain
    include_dirs = gen.include_dirs
    if ctx.accelerator is not None:
        include_dirs += ctx.accelerator.include_dirs(out_dir)
    tmp_elf, map_file = out_dir / ".model.elf.tmp", out_dir / "model.map"
    cmd = tc.build_elf(gen.sources, tmp_elf, map_file=map_file, include_dirs=include_dirs,
                       extra_flags=(f"-O{ctx.options.opt_level}", *ctx.options.cflags))
    ctx.executor.run(cmd)
    elf = out_dir / "model.elf"
    if ctx.executor.dry_run:  # nothing was built: report where it would be
        return LinkedProgram(elf, map_file, out_dir / "model.dis", gen.io_json, {})
    tmp_elf.replace(elf)  # only a complete link is ever called model.elf
    disasm = out_dir / "model.dis"
    atomic_write(disasm, ctx.executor.run(tc.disassemble(elf)).stdout)
    sizes = section_sizes(elf)
    atomic_write(out_dir / "size.json", json.dumps(sizes, indent=2) + "\n")
    atomic_write(ctx.build.root / "model.elf", elf.read_bytes())
    atomic_write(ctx.build.root / "io.json", gen.io_json.read_bytes())
    ctx.build.record_stage("assemble", gen.sources, [elf, map_file, disasm], {"toolchain": tc.describe()})
    return LinkedProgram(ctx.build.root / "model.elf", map_file, disasm, ctx.build.root / "io.json", sizes)
