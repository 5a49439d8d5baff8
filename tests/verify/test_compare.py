"""The comparison behind `tvmx verify`: tolerances, quantization steps, and NaN/inf that never pass."""

from __future__ import annotations

import numpy as np
import pytest

from tvmx.verify.compare import compare

NAN, INF = float("nan"), float("inf")
SCALE = 0.05  # one quantization step of the int8-compared output


def _float(got: list[float], ref: list[float]) -> tuple[bool, int, int]:
    c = compare({"y": np.array(got, np.float32)}, {"y": np.array(ref, np.float32)}, rtol=1e-4, atol=1e-5)
    return c.ok, c.outputs[0].mismatched, c.outputs[0].nonfinite


def _int8(got: list[float], ref: list[float]) -> tuple[bool, int, int]:
    # A huge max_lsb_fraction: only the NaN/inf rule can fail these.
    c = compare({"y": np.array(got, np.float32)}, {"y": np.array(ref, np.float32)}, rtol=1e-4, atol=1e-5,
                lsb_scales={"y": SCALE}, max_lsb=1, max_lsb_fraction=1.0)
    return c.ok, c.outputs[0].mismatched, c.outputs[0].nonfinite


BAD = {
    "nan_in_tvmx_only": ([1.0, NAN, 3.0], [1.0, 2.0, 3.0]),
    "nan_in_reference_only": ([1.0, 2.0, 3.0], [1.0, NAN, 3.0]),
    "nan_at_another_position": ([NAN, 2.0, 3.0], [1.0, NAN, 3.0]),
    "inf_in_tvmx_only": ([1.0, INF, 3.0], [1.0, 2.0, 3.0]),
    "inf_of_the_other_sign": ([1.0, -INF, 3.0], [1.0, INF, 3.0]),
    "inf_against_nan": ([1.0, INF, 3.0], [1.0, NAN, 3.0]),
}


@pytest.mark.parametrize("case", list(BAD))
@pytest.mark.parametrize("kind", ["float", "int8"])
def test_nonfinite_on_one_side_fails(case: str, kind: str) -> None:
    got, ref = BAD[case]
    ok, mismatched, nonfinite = (_float if kind == "float" else _int8)(got, ref)
    assert not ok
    assert nonfinite >= 1 and mismatched >= nonfinite


@pytest.mark.parametrize("kind", ["float", "int8"])
def test_the_same_nan_and_inf_at_the_same_place_pass(kind: str) -> None:
    ok, mismatched, nonfinite = (_float if kind == "float" else _int8)([NAN, INF, -INF, 1.0], [NAN, INF, -INF, 1.0])
    assert ok and mismatched == 0 and nonfinite == 0


def test_summary_names_the_nonfinite_elements() -> None:
    c = compare({"y": np.array([NAN, 1.0], np.float32)}, {"y": np.array([0.0, 1.0], np.float32)}, 1e-4, 1e-5)
    assert c.summary().startswith("FAIL") and "1 NaN/inf" in c.summary()
    assert c.outputs[0].max_abs == INF and not c.outputs[0].exact


def test_int8_outputs_in_quantization_steps() -> None:
    ref = np.arange(2000, dtype=np.float32) * SCALE
    one_step = ref.copy()
    one_step[0] += SCALE  # 1 LSB on 1 of 2000 elements: allowed (0.1%)
    two_steps = ref.copy()
    two_steps[0] += 2 * SCALE
    ok = compare({"y": one_step}, {"y": ref}, 1e-4, 1e-5, {"y": SCALE}, max_lsb=1, max_lsb_fraction=0.001)
    bad = compare({"y": two_steps}, {"y": ref}, 1e-4, 1e-5, {"y": SCALE}, max_lsb=1, max_lsb_fraction=0.001)
    assert ok.ok and ok.outputs[0].max_lsb == 1 and ok.outputs[0].lsb_elements == 1
    assert not bad.ok and bad.outputs[0].max_lsb == 2


def test_float_tolerance_and_shape() -> None:
    assert _float([1.0, 2.00001], [1.0, 2.0])[0]
    assert not _float([1.0, 2.1], [1.0, 2.0])[0]
    c = compare({"y": np.zeros(3, np.float32)}, {"y": np.zeros(4, np.float32)}, 1e-4, 1e-5)
    assert not c.ok
