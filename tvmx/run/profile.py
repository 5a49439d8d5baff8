"""The per-kernel profile of a run (`tvmx run --profile`): the counters the generated main read around
every kernel call (tvmx_profile, one row per call; see stages/codegen.profile_c), less the cost of the
reads themselves, turned into one row per kernel with the accelerator's figures and roofline.

run/profile.json (format 1; docs/profile.md):
  {"format": 1, "target": T, "accelerator": KIND | null,
   "total": {"cycles", "instret", "macs", "array_macs", "kernel_cycles", "outside_kernels", "unaccounted",
             "overhead": {counter: per call, "pair_instret"}},
   "kernels": [{"name", "calls", "nodes", "where", "macs", "instret", "cycles", "stall_cycles", "array_macs", "units",
                "dma_bytes", "share", "utilisation", "bound_cycles", "over_bound"}...],
   "calls": [{"kernel", "instret", "cycles"}...]}
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tvmx.accelerators import Accelerator
from tvmx.errors import InputError
from tvmx.stages.lower import c_symbol
from tvmx.stages.provenance import KernelWork

FORMAT = 1
PROFILE_HINT = "recompile the model with this tvmx (`tvmx compile`)"


@dataclass
class KernelRow:
    """One kernel, summed over its calls."""

    name: str
    calls: int
    nodes: list[str]  # the ONNX nodes it computes (none: a kernel tvmx added, a layout transform)
    where: str  # "accelerator" or "cpu"
    macs: int | None  # the multiply-accumulates of its ONNX nodes; None where the build does not say
    instret: int
    cycles: int
    stall_cycles: int = 0
    array_macs: int | None = None  # what the array computed (its counter), padding and halo included
    units: dict[str, int] = field(default_factory=dict)  # busy cycles per accelerator unit
    dma_bytes: dict[str, int] = field(default_factory=dict)
    share: float = 0.0  # of the whole model's cycles
    utilisation: float | None = None  # of the array: macs / (peak x cycles)
    bound_cycles: int | None = None  # the roofline of what the array did: no schedule of it is faster
    over_bound: float | None = None  # cycles / bound_cycles


@dataclass
class Profile:
    target: str
    accelerator: str | None
    total: dict[str, Any]
    kernels: list[KernelRow]
    calls: list[dict[str, Any]]

    def to_json(self) -> dict[str, Any]:
        return {"format": FORMAT, "target": self.target, "accelerator": self.accelerator, "total": self.total,
                "kernels": [asdict(k) for k in self.kernels], "calls": self.calls}


def read_rows(spec: dict[str, Any], blob_region: Any) -> tuple[list[str], np.ndarray, np.ndarray, int]:
    """(counter names, per-call rows, the empty window's row, the instret of a whole begin/end pair)
    from the dumped region. `blob_region(symbol, nbytes)` returns the bytes of a symbol in the dump."""
    names = spec.get("counters") or ["instret"]  # builds before the counters: instret only
    calls = spec["calls"]
    width = len(names)
    rows = np.frombuffer(blob_region(spec["symbol"], 8 * width * len(calls)), "<u8").reshape(len(calls), width)
    overhead = np.zeros(width + 1, np.uint64)
    if spec.get("overhead_symbol"):
        overhead = np.frombuffer(blob_region(spec["overhead_symbol"], 8 * (width + 1)), "<u8")
    return list(names), rows.astype(np.int64), overhead[:width].astype(np.int64), int(overhead[width])


def kernel_work(build_dir: Path) -> dict[str, KernelWork]:
    """kernel (C symbol) -> the ONNX nodes it computes and their MACs, from the relax stage's record
    of the kernels (02-relax/kernels.json, stages/provenance.py)."""
    path = build_dir / "02-relax" / "kernels.json"
    if not path.is_file():
        return {}
    try:
        return {c_symbol(name): KernelWork([str(n) for n in entry["nodes"]], int(entry["macs"]))
                for name, entry in json.loads(path.read_text())["kernels"].items()}
    except (OSError, ValueError, AttributeError, KeyError, TypeError) as exc:
        raise InputError(f"{path}: not tvmx's record of the kernels: {exc}", hint=PROFILE_HINT) from exc


def build_profile(target: str, accel: Accelerator | None, accel_kind: str | None, spec: dict[str, Any],
                  blob_region: Any, stats: dict[str, Any], work: dict[str, KernelWork]) -> Profile:
    names, rows, overhead, pair = read_rows(spec, blob_region)
    deltas = rows - overhead  # the reads' own cost, measured once by an empty window
    calls_json: list[dict[str, Any]] = []
    per_kernel: dict[str, KernelRow] = {}
    for kernel, delta in zip(spec["calls"], deltas, strict=True):
        counts = {n: int(v) for n, v in zip(names, delta, strict=True)}
        if accel is not None and "cycles" in counts:
            figures = accel.kernel_figures(counts)
        else:  # a CPU retires one instruction per cycle
            figures = {"cycles": counts["instret"], "macs": None, "commands": 0}
        calls_json.append({"kernel": kernel, "instret": counts["instret"], "cycles": int(figures["cycles"])})
        row = per_kernel.get(kernel)
        on_accel = bool(figures.get("commands"))
        if row is None:
            known = work.get(kernel, KernelWork())
            row = per_kernel[kernel] = KernelRow(kernel, 0, known.nodes, "cpu",
                                                 known.macs if kernel in work else None, 0, 0)
        row.calls += 1
        row.instret += counts["instret"]
        row.cycles += int(figures["cycles"])
        row.stall_cycles += int(figures.get("stall_cycles") or 0)
        if on_accel:
            row.where = "accelerator"
            row.array_macs = (row.array_macs or 0) + int(figures["macs"])
            row.bound_cycles = (row.bound_cycles or 0) + int(figures["bound_cycles"])
        for key in ("units", "dma_bytes"):
            for unit, n in (figures.get(key) or {}).items():
                getattr(row, key)[unit] = getattr(row, key).get(unit, 0) + int(n)
    total_cycles = int(stats.get("cycles") or 0)
    kernel_cycles = sum(r.cycles for r in per_kernel.values())
    peak = accel.profile_counters().peak_macs_per_cycle if accel is not None else 0
    for row in per_kernel.values():
        row.share = round(row.cycles / total_cycles, 4) if total_cycles else 0.0
        if row.where == "accelerator":
            row.macs = row.macs if row.macs is not None else row.array_macs  # a kernel the report does not name
            row.utilisation = round((row.macs or 0) / (peak * row.cycles), 4) if row.cycles and peak else 0.0
            row.over_bound = round(row.cycles / row.bound_cycles, 3) if row.bound_cycles else None
        if row.where == "cpu":
            row.units, row.dma_bytes = {}, {}
    per_call = {n: int(v) for n, v in zip(names, overhead, strict=True)}
    if "cycles" not in per_call:
        per_call["cycles"] = per_call["instret"]
    per_call["pair_instret"] = pair  # a whole begin/end pair, calls included: what each call adds to main
    total = {"cycles": total_cycles, "instret": int(stats.get("instret") or 0),
             "macs": sum(r.macs or 0 for r in per_kernel.values()),
             "array_macs": sum(r.array_macs or 0 for r in per_kernel.values()), "kernel_cycles": kernel_cycles,
             # the profile's own cost (a pair per call, and the empty one), main's entry and exit, and
             # the accelerator's drain after main returned
             "outside_kernels": total_cycles - kernel_cycles, "overhead": per_call,
             "unaccounted": total_cycles - kernel_cycles - pair * (len(spec["calls"]) + 1)}
    kernels = sorted(per_kernel.values(), key=lambda r: -r.cycles)
    return Profile(target, accel_kind, total, kernels, calls_json)
