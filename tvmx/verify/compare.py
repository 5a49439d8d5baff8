"""Element-wise comparison of outputs, summarised as one line."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class OutputDiff:
    name: str
    max_abs: float
    max_rel: float
    mismatched: int  # elements outside the tolerance
    total: int
    exact: bool
    max_lsb: int | None = None  # for dequantized int8 outputs: largest difference in quantization steps
    lsb_elements: int = 0  # ... and how many elements differ at all
    nonfinite: int = 0  # NaN/inf on one side only, or a different one (always mismatched)


@dataclass(frozen=True)
class Comparison:
    outputs: list[OutputDiff]
    rtol: float
    atol: float
    max_lsb: int = 1
    max_lsb_fraction: float = 0.001

    @property
    def ok(self) -> bool:
        return all(o.mismatched == 0 for o in self.outputs)

    def summary(self) -> str:
        max_abs = max((o.max_abs for o in self.outputs), default=0.0)
        max_rel = max((o.max_rel for o in self.outputs), default=0.0)
        bad = sum(o.mismatched for o in self.outputs)
        total = sum(o.total for o in self.outputs)
        verdict = "PASS" if self.ok else "FAIL"
        line = (f"{verdict}: {len(self.outputs)} output(s), {total} elements, max abs err {max_abs:.3g}, "
                f"max rel err {max_rel:.3g}")
        nonfinite = sum(o.nonfinite for o in self.outputs)
        if nonfinite:
            line += f", {nonfinite} NaN/inf where onnxruntime has another value"
        quantized = [o for o in self.outputs if o.max_lsb is not None]
        if quantized:
            lsb = max(o.max_lsb or 0 for o in quantized)
            differ = sum(o.lsb_elements for o in quantized)
            line += (f", int8 outputs: max {lsb} LSB, {differ} of {sum(o.total for o in quantized)} elements differ "
                     f"(allowed: {self.max_lsb} LSB on {self.max_lsb_fraction:.1%})")
        if len(quantized) < len(self.outputs):
            line += f", {bad} outside rtol={self.rtol:g} atol={self.atol:g}"
        return line


def nonfinite_mismatches(got: np.ndarray, ref: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(elements where either side is NaN or inf, those of them that disagree). NaN matches NaN and
    inf the same inf at the same position; anything else non-finite is a mismatch, whatever the tolerance."""
    special = ~np.isfinite(got) | ~np.isfinite(ref)
    same = (np.isnan(got) & np.isnan(ref)) | (np.isinf(got) & (got == ref))
    return special, special & ~same


def compare(actual: dict[str, np.ndarray], expected: dict[str, np.ndarray], rtol: float, atol: float,
            lsb_scales: dict[str, float] | None = None, max_lsb: int = 1,
            max_lsb_fraction: float = 0.001) -> Comparison:
    """rtol/atol per element; outputs in `lsb_scales` (dequantized int8) in quantization steps instead.
    A NaN or inf on one side only (or a different one) fails either way."""
    diffs = []
    for name, ref in expected.items():
        got = actual[name]
        ref64, got64 = np.asarray(ref, np.float64), np.asarray(got, np.float64)
        if ref64.shape != got64.shape:
            diffs.append(OutputDiff(name, float("inf"), float("inf"), ref64.size, ref64.size, False))
            continue
        special, wrong = nonfinite_mismatches(got64, ref64)
        bad_special = int(np.count_nonzero(wrong))
        # Errors over the finite elements; the non-finite ones are judged above, not by subtraction.
        got64, ref64 = np.where(special, 0.0, got64), np.where(special, 0.0, ref64)
        err = np.abs(got64 - ref64)
        rel = err / np.maximum(np.abs(ref64), np.finfo(np.float32).tiny)
        rel = np.where(err == 0, 0.0, rel)
        max_abs = float("inf") if bad_special else float(err.max(initial=0.0))
        max_rel = float("inf") if bad_special else float(rel.max(initial=0.0))
        exact = bad_special == 0 and bool(np.array_equal(ref64, got64))
        if lsb_scales and name in lsb_scales:
            steps = np.rint(err / lsb_scales[name]).astype(np.int64)
            worst, differ = int(steps.max(initial=0)), int(np.count_nonzero(steps)) + bad_special
            within = bad_special == 0 and worst <= max_lsb and differ <= max_lsb_fraction * ref64.size
            diffs.append(OutputDiff(name, max_abs, max_rel, 0 if within else differ, ref64.size, exact, worst, differ,
                                    bad_special))
            continue
        bad = int(np.count_nonzero(~(err <= atol + rtol * np.abs(ref64)))) + bad_special
        diffs.append(OutputDiff(name, max_abs, max_rel, bad, ref64.size, exact, nonfinite=bad_special))
    return Comparison(diffs, rtol, atol, max_lsb, max_lsb_fraction)
