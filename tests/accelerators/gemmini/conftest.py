"""A rig that compiles C test programs against gemmini.h for one target and runs them on Spike
with the Gemmini model, returning the program's `out_*` arrays from the signature dump."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from elftools.elf.elffile import ELFFile
from elftools.elf.sections import SymbolTableSection
from toolcheck import skip_or_fail

from tvmx.accelerators import SimulatorExtras, accelerator_for
from tvmx.accelerators.gemmini import Gemmini
from tvmx.errors import GuestError, ToolNotFoundError
from tvmx.simulator.guest import check_exit
from tvmx.simulator.spike import Spike, read_signature
from tvmx.target import Target, load_target
from tvmx.toolchain.command import Executor
from tvmx.toolchain.riscv import Toolchain, find_toolchain

DATA = Path(__file__).resolve().parents[2] / "data" / "gemmini"
TARGETS = ["gemmini", "gemmini-8"]


@dataclass
class GuestRun:
    returncode: int
    console: str
    stderr: str
    outputs: dict[str, bytes]
    stats: dict[str, Any]

    def array(self, name: str, dtype: Any, shape: tuple[int, ...]) -> np.ndarray:
        return np.frombuffer(self.outputs[name], dtype=dtype).reshape(shape)


def c_array(name: str, arr: np.ndarray, ctype: str) -> str:
    dims = "".join(f"[{n}]" for n in arr.shape)
    body = ", ".join(str(int(v)) for v in arr.ravel())
    return f"static const {ctype} {name}{dims} __attribute__((aligned(64))) = {{{body}}};\n"


def output_symbols(elf: Path) -> tuple[int, dict[str, tuple[int, int]]]:
    """begin_signature and every `out_*` symbol as (address, size)."""
    with elf.open("rb") as f:
        symtab = ELFFile(f).get_section_by_name(".symtab")
        assert isinstance(symtab, SymbolTableSection)
        syms = {s.name: (s["st_value"], s["st_size"]) for s in symtab.iter_symbols()}
    outs = {n: v for n, v in syms.items() if n.startswith("out_")}
    return syms["begin_signature"][0], outs



def expect_trap(rig: Rig, source: Path, name: str, case: str, reason: str) -> None:
    """`source` built with -DCASE_<case> traps: an illegal-instruction exit, and the model says why."""
    elf = rig.build(f"{name}_{case}", source, defines=(f"CASE_{case.upper()}",))
    run = rig.run(elf)
    with pytest.raises(GuestError) as info:
        check_exit(run.returncode, run.console, elf)
    assert "(mcause 2)" in info.value.message, info.value.message
    assert "gemmini: illegal command" in run.stderr and reason in run.stderr, run.stderr


class Rig:
    def __init__(self, target: Target, workdir: Path) -> None:
        self.target = target
        self.workdir = workdir
        acc = accelerator_for(target)
        assert isinstance(acc, Gemmini)
        self.gemmini = acc
        self.dim = acc.config.dim
        self.executor = Executor(log_path=workdir / "commands.sh")
        try:
            self.toolchain: Toolchain = find_toolchain(target.cpu, target.toolchain)
            self.extras: SimulatorExtras = acc.simulator_extras(workdir, self.executor)
        except ToolNotFoundError as exc:
            skip_or_fail(f"{exc.message} ({exc.hint})")  # in CI a missing tool fails
        self.includes = acc.include_dirs(workdir)

    def build(self, name: str, source: Path, *, data: str = "", defines: tuple[str, ...] = ()) -> Path:
        folder = self.workdir / name
        folder.mkdir(exist_ok=True)
        (folder / "case_data.h").write_text(data)
        elf = folder / f"{name}.elf"
        flags = tuple(f"-D{d}" for d in defines)
        cmd = self.toolchain.build_elf([source], elf, map_file=folder / f"{name}.map",
                                       include_dirs=(folder, *self.includes), extra_flags=flags)
        self.executor.run(cmd)
        return elf

    def run(self, elf: Path, timeout: float = 120) -> GuestRun:
        sig = elf.with_suffix(".sig")
        spike = Spike(self.target.simulator, extlibs=self.extras.extlibs, extension=self.extras.extension)
        assert self.extras.stats_file is not None
        self.extras.stats_file.unlink(missing_ok=True)
        res = self.executor.run(spike.command(elf, signature=sig, env=self.extras.env), check=False,
                                timeout=timeout)
        outputs: dict[str, bytes] = {}
        if sig.is_file():
            blob = read_signature(sig)
            base, syms = output_symbols(elf)
            outputs = {n: blob[a - base:a - base + s] for n, (a, s) in syms.items()}
        stats = json.loads(self.extras.stats_file.read_text()) if self.extras.stats_file.is_file() else {}
        return GuestRun(res.returncode, res.stdout, res.stderr, outputs, stats)

    def run_source(self, name: str, source: str, data: str, timeout: float = 120) -> GuestRun:
        """Write, build and run a generated C program; a trap or non-zero exit fails the test."""
        src = self.workdir / f"{name}.c"
        src.write_text(source)
        elf = self.build(name, src, data=data)
        run = self.run(elf, timeout=timeout)
        check_exit(run.returncode, run.console, elf)
        return run


@pytest.fixture(scope="session", params=TARGETS)
def rig(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Rig:
    name = request.param
    return Rig(load_target(name), tmp_path_factory.mktemp(name))
