"""Typed view of a validated target file."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class CpuSpec:
    march: str
    mabi: str
    vector: bool = False

    @property
    def xlen(self) -> int:
        return 32 if self.march.startswith("rv32") else 64


@dataclass(frozen=True)
class ToolchainSpec:
    cc: str | None = None
    libc: str | None = None
    cflags: tuple[str, ...] = ()
    clang_cflags: tuple[str, ...] = ()
    gcc_cflags: tuple[str, ...] = ()


@dataclass(frozen=True)
class SimulatorSpec:
    kind: str
    isa: str
    memory_mb: int = 2048
    timeout_s: float = 1800.0
    # An accelerator model: {name, source} of its C++ extension, and its cycle-model parameters.
    extension: dict[str, str] | None = field(default=None, compare=False)
    timing: dict[str, Any] | None = field(default=None, compare=False)


@dataclass(frozen=True)
class VerifySpec:
    rtol: float = 1e-4
    atol: float = 1e-5
    max_lsb: int = 1  # QDQ outputs are compared in quantization steps, not with rtol/atol
    max_lsb_fraction: float = 0.001


@dataclass(frozen=True)
class Target:
    name: str
    path: Path
    description: str
    cpu: CpuSpec
    toolchain: ToolchainSpec
    simulator: SimulatorSpec
    verify: VerifySpec
    # The accelerator section, validated by the schema; its kind's own module gives it a type.
    accelerator: dict[str, Any] | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any], path: Path) -> Target:
        tc = data.get("toolchain", {})
        return cls(
            name=data["name"],
            path=path,
            description=data.get("description", ""),
            cpu=CpuSpec(**data["cpu"]),
            toolchain=ToolchainSpec(
                cc=tc.get("cc"),
                libc=tc.get("libc"),
                cflags=tuple(tc.get("cflags", ())),
                clang_cflags=tuple(tc.get("clang_cflags", ())),
                gcc_cflags=tuple(tc.get("gcc_cflags", ())),
            ),
            simulator=SimulatorSpec(**data["simulator"]),
            verify=VerifySpec(**data.get("verify", {})),
            accelerator=data.get("accelerator"),
            raw=data,
        )
