"""`tvmx verify`: compile (or reuse), run on the simulator, compare with onnxruntime."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tvmx.build.builddir import BuildDir, atomic_write
from tvmx.errors import TvmxError
from tvmx.options import Options
from tvmx.pipeline import compile_model
from tvmx.run.runner import load_inputs, run_build
from tvmx.target.model import Target
from tvmx.verify.compare import Comparison, compare
from tvmx.verify.junit import ModelResult
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


def verify_models(models: list[Path], target: Target, options: Options, build_dir: Path | None = None, *,
                  inputs: Path | None = None, seed: int | None = None, force: bool = False,
                  log: Callable[[str], None] = lambda _m: None,
                  on_report: Callable[[Path, VerifyReport], None] = lambda _m, _r: None,
                  ) -> list[tuple[ModelResult, TvmxError | None]]:
    """Verify each model in turn (one test suite for CI): a model that cannot be verified (it does
    not compile, the guest traps) is recorded with its error and the next one still runs."""
    results: list[tuple[ModelResult, TvmxError | None]] = []
    for model in models:
        start = time.perf_counter()
        try:
            report = verify_model(model, target, options, build_dir, inputs=inputs, seed=seed, force=force, log=log)
        except TvmxError as exc:
            message = exc.message + (f" (hint: {exc.hint})" if exc.hint else "")
            results.append((ModelResult(model.stem, target.name, time.perf_counter() - start, error=message,
                                        error_type=type(exc).__name__), exc))
            continue
        on_report(model, report)
        details = (f"{report.comparison.summary()}; instret={report.stats.get('instret')} "
                   f"cycles={report.stats.get('cycles')}; build {report.build_dir}")
        results.append((ModelResult(model.stem, target.name, time.perf_counter() - start, report.comparison,
                                    details=details), None))
    return results
