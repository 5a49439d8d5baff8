"""`tvmx verify`: compile (or reuse), run on the simulator, compare with onnxruntime."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tvmx.build.builddir import BuildDir, atomic_write
from tvmx.options import Options
from tvmx.pipeline import compile_model
from tvmx.run.runner import load_inputs, run_build
from tvmx.target.model import Target
from tvmx.verify.compare import Comparison, compare
from tvmx.verify.reference import quantized_output_scales, run_reference


@dataclass
class VerifyReport:
    build_dir: Path
    outputs: dict[str, np.ndarray]
    reference: dict[str, np.ndarray]
    comparison: Comparison
    stats: dict[str, Any]
    compile_seconds: float
    reused: bool


def verify_model(model: Path, target: Target, options: Options, build_dir: Path | None = None, *,
                 inputs: Path | None = None, seed: int | None = None, force: bool = False,
                 log: Callable[[str], None] = lambda _m: None) -> VerifyReport:
    compiled = compile_model(model, target, options, build_dir, reuse=True, force=force, log=log)
    io = json.loads((compiled.build_dir / "io.json").read_text())
    arrays = load_inputs(io, inputs, seed)
    result = run_build(target, compiled.build_dir, arrays, None, timeout=options.timeout_s)
    rtol = options.rtol if options.rtol is not None else target.verify.rtol
    atol = options.atol if options.atol is not None else target.verify.atol
    scales = quantized_output_scales(model)
    limits = (target.verify.max_lsb, target.verify.max_lsb_fraction)
    # A QDQ model means what its graph says: the reference runs it without onnxruntime's int8 fusions.
    reference = run_reference(model, arrays, fuse_qdq=not scales)
    comparison = compare(result.outputs, reference, rtol, atol, scales, *limits)
    summary: dict[str, Any] = {"summary": comparison.summary(), "ok": comparison.ok,
                               "outputs": [o.__dict__ for o in comparison.outputs]}
    if scales:  # for the record: how far onnxruntime's own fused int8 kernels are from the graph
        fused = compare(result.outputs, run_reference(model, arrays), rtol, atol, scales, *limits)
        summary["vs_onnxruntime_fused_int8_kernels"] = fused.summary()
    verify_json = compiled.build_dir / "run" / "verify.json"
    atomic_write(verify_json, json.dumps(summary, indent=2) + "\n")
    BuildDir(compiled.build_dir).claim([verify_json])
    return VerifyReport(compiled.build_dir, result.outputs, reference, comparison, result.stats,
                        compiled.seconds, compiled.reused)
