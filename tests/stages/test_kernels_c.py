"""TIR -> plain C: float32 constants survive TVM's 7-digit literals exactly."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest

from tvmx.stages.kernels_c import generate


def test_float_constants_that_would_not_round_trip_are_written_by_their_bits() -> None:
    import tvm
    from tvm.script import tirx as T

    scale = np.float32(0.030972873792052269)  # prints as 3.097287e-02, which is another float32
    assert np.float32(float(f"{float(scale):.6e}")) != scale

    @T.prim_func
    def quantize(a: T.Buffer((4,), "float32"), b: T.Buffer((4,), "float32")) -> None:
        for i in range(4):
            b[i] = a[i] / T.float32(float(scale)) + T.float32(0.5)

    source, _ = generate(tvm.IRModule({"quantize": quantize.with_attr("global_symbol", "quantize")}))
    assert f"tvmx_f32((uint32_t){int(scale.view(np.uint32))})" in source
    assert "5.000000e-01f" in source  # exact as printed: left readable


def _elementwise(dtype: str, value: Any) -> Any:
    """b[i] = value(a[i]) over four elements, as a module of one kernel."""
    import tvm
    from tvm import tirx

    a, b = tirx.decl_buffer((4,), dtype, "a"), tirx.decl_buffer((4,), dtype, "b")
    i = tirx.Var("i", "int32")
    body = tirx.For(i, 0, 4, tirx.ForKind.SERIAL, tirx.BufferStore(b, value(tirx.BufferLoad(a, [i])), [i]))
    return tvm.IRModule({"k": tirx.PrimFunc([a, b], body).with_attr("global_symbol", "k")})


@pytest.mark.parametrize(("dtype", "calls"), [("float32", ["fabsf(", "exp2f(", "fmodf(", "powf(1.000000e+01f"]),
                                              ("float64", ["fabs(", "exp2(", "fmod(", "pow(1.000000e+01"])])
def test_math_intrinsics_without_a_c_rule_become_libm_calls(dtype: str, calls: list[str]) -> None:
    """TVM's C target has no rule for fabs (Softplus, Softsign, isinf), exp2, exp10 or fmod."""
    from tvm import tirx

    source, _ = generate(_elementwise(dtype, lambda x: tirx.abs(x) + tirx.exp2(x) + tirx.exp10(x) + tirx.fmod(x, x)))
    for call in calls:
        assert call in source, call


def test_non_finite_literals_are_compiler_builtins() -> None:
    """TVM prints them as `inff` and `nanf`, which C does not define."""
    from tvm import tirx

    source, _ = generate(_elementwise("float32", lambda x: tirx.Select(
        tirx.isinf(x), tirx.const(float("nan"), "float32"), x + tirx.const(float("-inf"), "float32"))))
    assert "__builtin_inff()" in source and '__builtin_nanf("")' in source
    assert re.search(r"(?<!\w)(inff|nanf)\b(?!\s*\()", source) is None


def test_a_symbolic_element_offset_is_zero() -> None:
    """TOPI's extern kernels (scatter) declare buffers with an element-offset variable."""
    import tvm
    from tvm import te, topi

    data = te.placeholder((4, 3), "float32", name="data")
    idx = te.placeholder((1, 2), "int64", name="idx")  # TOPI's layout: index depth first
    upd = te.placeholder((2, 3), "float32", name="upd")
    func = te.create_prim_func([data, idx, upd, topi.scatter_nd(data, idx, upd, "update")])
    source, _ = generate(tvm.IRModule({"scatter_nd": func.with_attr("global_symbol", "scatter_nd")}))
    assert "void scatter_nd(" in source
