"""Tuning tasks: the distinct kernels of a model after the relax stage, with how often each runs.

A task is one workload in MetaSchedule's sense: a PrimFunc normalised so that the same layer in
another model (other names, other quantization scales) is the same workload and reuses its records.
"""

from __future__ import annotations

import fnmatch
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tvmx.errors import InputError
from tvmx.options import Options
from tvmx.stages.artifacts import GraphModule, TensorSpec
from tvmx.target.model import Target

ACCELERATOR, CPU = "accelerator", "cpu"


@dataclass
class Task:
    name: str  # the first kernel of the model with this workload
    kind: str  # ACCELERATOR | CPU
    func: Any  # the kernel as the relax stage made it (unscheduled)
    workload: Any  # IRModule {"main": normalised func}: what records are keyed by
    args: list[TensorSpec]  # the kernel's buffers in order, inputs first (destination-passing style)
    n_inputs: int
    kernels: tuple[str, ...]  # every kernel of the model with this workload
    calls: int  # how often the model calls them

    @property
    def op(self) -> str | None:
        return str(self.func.attrs["tvmx.offloaded"]) if self.kind == ACCELERATOR else None

    @property
    def sizes(self) -> dict[str, int]:
        if self.kind != ACCELERATOR:
            return {}
        return {str(k): int(v) for k, v in self.func.attrs["tvmx.sizes"].items()}

    def describe(self) -> str:
        return self.name if len(self.kernels) == 1 else f"{self.name} (+{len(self.kernels) - 1} alike)"


def workload_of(func: Any) -> Any:
    """The func as a MetaSchedule workload: named `main`; an accelerator kernel also without the
    float constants (its scales) and the intrinsic's name, which change numbers but not cycles."""
    import tvm
    import tvm_ffi

    func = func.with_attr("global_symbol", "main")
    if "tvmx.offloaded" in func.attrs:
        func = func.without_attr("tvmx.intrinsic")
        func = tvm_ffi.structural_map(func, (tvm.tirx.FloatImm, lambda imm: tvm.tirx.FloatImm(imm.ty, 1.0)))
    return tvm.IRModule({"main": func})


def structural_key(obj: Any) -> str:
    """A workload (names and scales removed) or a scheduled module, by structure: the key records use."""
    import tvm_ffi

    return f"{tvm_ffi.structural_hash(obj) & (2**64 - 1):016x}"


def _call_sites(graph_mod: Any) -> dict[str, tuple[int, int]]:
    """kernel name -> (number of input args, calls) from the Relax main's call_tirs."""
    from tvm import relax

    sites: dict[str, tuple[int, int]] = {}

    def visit(expr: Any) -> None:
        if isinstance(expr, relax.Call) and getattr(expr.op, "name", "") == "relax.call_tir":
            name = expr.args[0].name_hint
            n_inputs = len(expr.args[1].fields)
            sites[name] = (n_inputs, sites.get(name, (n_inputs, 0))[1] + 1)

    relax.analysis.post_order_visit(graph_mod["main"], visit)
    return sites


def _arg_specs(func: Any) -> list[TensorSpec]:
    return [TensorSpec(str(p.name), tuple(int(d) for d in p.shape), str(p.dtype)) for p in func.params]


def extract_tasks(graph: GraphModule) -> list[Task]:
    """Distinct kernels of the model, in the order the model first calls them."""
    import tvm

    sites = _call_sites(graph.mod)
    by_key: dict[str, Task] = {}
    for gv, func in graph.mod.functions.items():
        name = gv.name_hint
        if not isinstance(func, tvm.tirx.PrimFunc) or name not in sites:
            continue
        n_inputs, calls = sites[name]
        workload = workload_of(func)
        key = structural_key(workload)
        if key in by_key:
            task = by_key[key]
            task.kernels += (name,)
            task.calls += calls
            continue
        kind = ACCELERATOR if "tvmx.offloaded" in func.attrs else CPU
        by_key[key] = Task(name, kind, func, workload, _arg_specs(func), n_inputs, (name,), calls)
    return sorted(by_key.values(), key=lambda t: t.name)


def model_tasks(model: Path, target: Target, options: Options) -> list[Task]:
    """Import and run the relax stage of `model` (in a scratch build folder), then extract its tasks."""
    from tvmx.pipeline import compile_model
    from tvmx.stages.registry import find_stage

    with tempfile.TemporaryDirectory(prefix="tvmx-tasks-") as tmp:
        result = compile_model(model, target, options, Path(tmp) / "build", compile_to=find_stage("relax"))
    graph: GraphModule = result.artifact
    return extract_tasks(graph)


def select_kernels(tasks: list[Task], only: str | None) -> list[Task]:
    """The tasks with a kernel whose name matches the glob `only` (all of them for None)."""
    if only is None:
        return tasks
    chosen = [t for t in tasks if any(fnmatch.fnmatchcase(k, only) for k in t.kernels)]
    if not chosen:
        names = ", ".join(t.name for t in tasks[:12])
        raise InputError(f"--only '{only}' matches no kernel of the model", hint=f"kernels: {names}, ...")
    return chosen
