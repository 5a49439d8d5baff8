"""One candidate as a small benchmark program: the kernel alone, called once on fixed random
inputs with its real shapes, built by the same lower, codegen and assemble stages as a model.

Its cost is the modelled cycles of the run (`cycles` of stats.json: instructions retired in main
plus the CPU's stalls on the accelerator and the accelerator's drain), its outputs are compared
with the default schedule's: a fast wrong kernel is a failure.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tvmx.build.builddir import BuildDir
from tvmx.options import Options
from tvmx.stages import assemble, codegen, lower
from tvmx.stages.artifacts import ImportedModel, ScheduledModule, TensorSpec
from tvmx.stages.context import StageContext
from tvmx.target.model import Target
from tvmx.toolchain.command import Executor
from tvmx.tune.tasks import Task, structural_key


@dataclass(frozen=True)
class Bench:
    """What a benchmark of one kernel needs to know about it (plain data: it travels to workers)."""

    name: str
    args: tuple[TensorSpec, ...]  # inputs first, then outputs (destination-passing style)
    n_inputs: int
    seed: int  # of the fixed random inputs

    @classmethod
    def of(cls, task: Task) -> Bench:
        return cls(task.name, tuple(task.args), task.n_inputs, int(structural_key(task.workload), 16) % 2**32)

    @property
    def inputs(self) -> list[TensorSpec]:
        return list(self.args[: self.n_inputs])

    @property
    def outputs(self) -> list[TensorSpec]:
        return list(self.args[self.n_inputs:])


@dataclass(frozen=True)
class Program:
    """A built benchmark: everything a measurement needs, as bytes (it may run on another machine)."""

    elf: bytes
    io_json: bytes
    inputs: bytes  # .npz of the inputs by name


@dataclass
class Measurement:
    cycles: int | None  # None: the candidate failed
    error: str | None = None
    outputs: dict[str, np.ndarray] = field(default_factory=dict)
    stats: dict[str, Any] = field(default_factory=dict)


def bench_inputs(bench: Bench) -> dict[str, np.ndarray]:
    """Fixed random inputs per workload: every candidate of a task sees the same ones."""
    from tvmx.run.runner import random_inputs

    arrays = random_inputs([t.to_json() for t in bench.inputs], bench.seed)
    for spec in bench.inputs:  # small int32s (biases) keep int8 outputs away from saturation
        if spec.dtype == "int32":
            arrays[spec.name] = (arrays[spec.name] * 8).astype(np.int32)
    return arrays


def _one_call_module(bench: Bench, func: Any) -> Any:
    """Relax main(inputs...) = call_tir(kernel, inputs) for the scheduled kernel."""
    import tvm
    from tvm import relax

    params = [relax.Var(f"in{i}", relax.TensorType(s.shape, s.dtype)) for i, s in enumerate(bench.inputs)]
    outs = [relax.TensorType(s.shape, s.dtype) for s in bench.outputs]
    bb = relax.BlockBuilder()
    with bb.function("main", params):
        gv = bb.add_func(func.with_attr("global_symbol", bench.name), bench.name)
        out = bb.emit(relax.call_tir(gv, params, outs if len(outs) > 1 else outs[0]))
        bb.emit_func_output(out)
    mod = bb.get()
    return tvm.IRModule({gv: f for gv, f in mod.functions.items()})


def build_program(bench: Bench, func: Any, target: Target, folder: Path, executor: Executor | None = None) -> Program:
    """Build the benchmark ELF of one scheduled kernel into `folder` (a scratch build folder)."""
    arrays = bench_inputs(bench)
    inputs, outputs = bench.inputs, bench.outputs
    mod = _one_call_module(bench, func.with_attr("tirx.is_scheduled", True))
    build = BuildDir(folder)
    build.start({}, {"benchmark": bench.name}, force=True)
    ctx = StageContext(folder / "kernel.onnx", target, Options(), build,
                       executor or Executor(build.commands_log))
    scheduled = ScheduledModule(mod, ImportedModel(mod, inputs, outputs), {})
    linked = assemble.run(ctx, codegen.run(ctx, lower.run(ctx, scheduled)))
    inputs_npz = npz_bytes({s.name: arrays[s.name] for s in inputs})
    return Program(linked.elf.read_bytes(), linked.io_json.read_bytes(), inputs_npz)


def npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)  # type: ignore[arg-type]  # numpy's stubs take the names for its flags
    return buf.getvalue()


def run_program(program: Program, target: Target, folder: Path, timeout: float | None = None) -> Measurement:
    """Run a benchmark on the target's simulator; its cycles and outputs (a trap or timeout is a failure)."""
    from tvmx.errors import TvmxError
    from tvmx.run.runner import load_inputs, run_build

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.elf").write_bytes(program.elf)
    (folder / "io.json").write_bytes(program.io_json)
    (folder / "inputs.npz").write_bytes(program.inputs)
    io_spec = json.loads(program.io_json)
    try:
        result = run_build(target, folder, load_inputs(io_spec, folder / "inputs.npz", None), folder / "run",
                           timeout=timeout)
    except TvmxError as exc:
        return Measurement(None, exc.message.splitlines()[0][:300])
    return Measurement(int(result.stats["cycles"]), None, result.outputs, result.stats)


def same_outputs(got: dict[str, np.ndarray], want: dict[str, np.ndarray]) -> str | None:
    """Why `got` is not the reference's result, or None. Integers bit for bit; floats to 1e-5
    relative (another schedule may sum in another order), NaN where the reference has NaN."""
    for name, ref in want.items():
        out = got.get(name)
        if out is None or out.shape != ref.shape:
            return f"output {name} missing or of another shape"
        if ref.dtype.kind == "f":
            if not np.allclose(out, ref, rtol=1e-5, atol=1e-6, equal_nan=True):
                err = float(np.nanmax(np.abs(out.astype(np.float64) - ref)))
                return f"output {name} differs from the default schedule's (max abs err {err:.3g})"
        elif not np.array_equal(out, ref):
            return f"output {name} differs from the default schedule's in {int(np.sum(out != ref))} elements"
    return None
