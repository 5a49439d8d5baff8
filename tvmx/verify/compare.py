"""Element-wise comparison of outputs, summarised as one line."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class OutputDiff:
    name: str
    max_abs: float
    max_rel: float
    mismatched: int  # elements outside atol + rtol * |ref|
    total: int
    exact: bool


@dataclass(frozen=True)
class Comparison:
    outputs: list[OutputDiff]
    rtol: float
    atol: float

    @property
    def ok(self) -> bool:
        return all(o.mismatched == 0 for o in self.outputs)

    def summary(self) -> str:
        max_abs = max((o.max_abs for o in self.outputs), default=0.0)
        max_rel = max((o.max_rel for o in self.outputs), default=0.0)
        bad = sum(o.mismatched for o in self.outputs)
        total = sum(o.total for o in self.outputs)
        verdict = "PASS" if self.ok else "FAIL"
        return (f"{verdict}: {len(self.outputs)} output(s), {total} elements, max abs err {max_abs:.3g}, "
                f"max rel err {max_rel:.3g}, {bad} outside rtol={self.rtol:g} atol={self.atol:g}")


def compare(actual: dict[str, np.ndarray], expected: dict[str, np.ndarray], rtol: float, atol: float) -> Comparison:
    diffs = []
    for name, ref in expected.items():
        got = actual[name]
        ref64, got64 = np.asarray(ref, np.float64), np.asarray(got, np.float64)
        if ref64.shape != got64.shape:
            diffs.append(OutputDiff(name, float("inf"), float("inf"), ref64.size, ref64.size, False))
            continue
        err = np.abs(got64 - ref64)
        rel = err / np.maximum(np.abs(ref64), np.finfo(np.float32).tiny)
        rel = np.where(err == 0, 0.0, rel)
        bad = int(np.count_nonzero(~(err <= atol + rtol * np.abs(ref64))))
        diffs.append(OutputDiff(name, float(err.max(initial=0.0)), float(rel.max(initial=0.0)), bad, ref64.size,
                                bool(np.array_equal(ref64, got64))))
    return Comparison(diffs, rtol, atol)
