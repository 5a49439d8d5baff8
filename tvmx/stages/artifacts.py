"""Typed artifacts passed from one stage to the next."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

# TVM ships no type information; its modules are passed through as opaque values.
IRModule = Any


@dataclass(frozen=True)
class TensorSpec:
    name: str  # the ONNX name
    shape: tuple[int, ...]
    dtype: str  # numpy dtype name

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) * np.dtype(self.dtype).itemsize

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "shape": list(self.shape), "dtype": self.dtype}


@dataclass
class ImportedModel:
    """Stage 1: the model as TVM imported it."""

    mod: IRModule
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    node_labels: list[str] = field(default_factory=list)  # the ONNX nodes' labels by index (provenance)


@dataclass
class GraphModule:
    """Stage 2: Relax after graph passes (fused kernels as TIR, calls in Relax)."""

    mod: IRModule
    model: ImportedModel


@dataclass
class ScheduledModule:
    """Stage 3: every kernel carries the schedule it was given; `choices` says which."""

    mod: IRModule
    model: ImportedModel
    choices: dict[str, str]


@dataclass(frozen=True)
class BufferRef:
    """Where a tensor lives: a planned storage, a model input/output, or the weights blob."""

    kind: str  # "storage" | "input" | "output" | "const"
    index: int
    offset: int  # bytes
    dtype: str
    shape: tuple[int, ...]


@dataclass
class ExecutionPlan:
    """Stage 4: a flat list of kernel calls over statically planned memory."""

    storages: list[int]  # sizes in bytes
    constants: list[np.ndarray]
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    calls: list[tuple[str, list[BufferRef]]]
    output_refs: list[BufferRef]  # usually kind "output"; can alias an input or a constant

    def to_json(self) -> dict[str, Any]:
        def ref(r: BufferRef) -> dict[str, Any]:
            return {"kind": r.kind, "index": r.index, "offset": r.offset, "dtype": r.dtype, "shape": list(r.shape)}

        return {
            "storages": self.storages,
            "constants": [{"dtype": str(c.dtype), "shape": list(c.shape)} for c in self.constants],
            "inputs": [t.to_json() for t in self.inputs],
            "outputs": [t.to_json() for t in self.outputs],
            "calls": [{"kernel": k, "args": [ref(a) for a in args]} for k, args in self.calls],
            "output_refs": [ref(r) for r in self.output_refs],
        }


@dataclass
class LoweredModule:
    mod: IRModule  # the PrimFuncs to generate code for
    plan: ExecutionPlan


@dataclass
class GeneratedSources:
    """Stage 5: C and assembly sources plus the I/O description `tvmx run` needs."""

    sources: list[Path]
    io_json: Path
    include_dirs: tuple[Path, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class LinkedProgram:
    """Stage 6."""

    elf: Path
    map_file: Path
    disassembly: Path
    io_json: Path
    size: dict[str, int]
