"""TIR -> plain C: float32 constants survive TVM's 7-digit literals exactly."""

from __future__ import annotations

import re
from pathlib import Path
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


def test_a_saturating_round_is_one_conversion_after_the_clamp() -> None:
    """A quantization's round-then-clamp: clamped in float, then one round-to-int (tvmx_round_i32)."""
    from tvm import tirx

    def quantize(x: Any) -> Any:
        rounded = tirx.round(x / tirx.const(0.5, "float32")) + tirx.const(3.0, "float32")
        return tirx.Cast("int8", tirx.Max(tirx.Min(rounded, tirx.const(127.0, "float32")),
                                          tirx.const(-128.0, "float32")))

    a, b = tirx.decl_buffer((4,), "float32", "a"), tirx.decl_buffer((4,), "int8", "b")
    i = tirx.Var("i", "int32")
    body = tirx.For(i, 0, 4, tirx.ForKind.SERIAL, tirx.BufferStore(b, quantize(tirx.BufferLoad(a, [i])), [i]))
    import tvm

    mod = tvm.IRModule({"k": tirx.PrimFunc([a, b], body).with_attr("global_symbol", "k")})
    source, _ = generate(mod)
    kernel = source[source.index("void k("):]
    assert "tvmx_round_i32(" in kernel and "nearbyintf" not in kernel
    assert "-1.310000e+02f" in kernel and "1.240000e+02f" in kernel  # the bounds less the zero point


# Ties at every magnitude, the saturation edges on either side of the zero point, and beyond float's
# integer range.
EDGES = [0.0, -0.0, 0.5, -0.5, 1.5, -1.5, 2.5, -2.5, 123.5, 124.5, 125.5, 126.5, 127.5, -127.5, -128.5, -130.5,
         -131.5, -132.5, 1e9, -1e9, 3e38, -3e38, 8388607.5, -8388608.5]


@pytest.mark.toolchain
@pytest.mark.spike
@pytest.mark.parametrize(("dtype", "zero_point"), [(np.int8, 3), (np.uint8, 128)])
def test_quantize_on_the_cpu_rounds_and_saturates_like_onnxruntime(tmp_path: Path, dtype: Any,
                                                                   zero_point: int) -> None:
    """QuantizeLinear compiled for rv64gc and run on Spike: every tie, bound, infinity and NaN as
    onnxruntime quantizes it."""
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    from tvmx.options import make_options
    from tvmx.pipeline import compile_model
    from tvmx.run.runner import run_build
    from tvmx.target import load_target

    scale = np.float32(0.25)
    x = np.array([*EDGES, np.inf, -np.inf, np.nan], np.float32) * scale
    x = np.concatenate([x, np.random.default_rng(0).uniform(-40, 40, 32).astype(np.float32)]).reshape(1, -1)
    out = TensorProto.INT8 if dtype == np.int8 else TensorProto.UINT8
    graph = helper.make_graph(
        [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["y"])], "q",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x.shape))],
        [helper.make_tensor_value_info("y", out, list(x.shape))],
        [numpy_helper.from_array(np.array(scale), "s"), numpy_helper.from_array(np.array(zero_point, dtype), "z")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)
    onnx.save(model, str(tmp_path / "q.onnx"))
    target = load_target("rv64gc")
    build = compile_model(tmp_path / "q.onnx", target, make_options(), tmp_path / "b").build_dir
    got = run_build(target, build, {"x": x}, None).outputs["y"]
    want = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    assert "tvmx_round_i32(" in (build / "05-codegen" / "kernels.c").read_text()
    np.testing.assert_array_equal(got, want)


def _copies(width: int, stride: int = 1) -> Any:
    """out[p, :] = concat(a[p, :], b[p, :]) over 8 pixels of `width` int8 channels each, one loop per
    input as the CPU schedule partitions a concatenation; `stride` > 1 reads a's channels strided."""
    import tvm
    from tvm import tirx

    a, b = tirx.decl_buffer((8 * width * stride,), "int8", "a"), tirx.decl_buffer((8 * width,), "int8", "b")
    out = tirx.decl_buffer((16 * width,), "int8", "out")
    p, c, d = (tirx.Var(n, "int32") for n in "pcd")
    first = tirx.For(c, 0, width, tirx.ForKind.SERIAL, tirx.BufferStore(
        out, tirx.BufferLoad(a, [p * (width * stride) + c * stride]), [p * (2 * width) + c]))
    second = tirx.For(d, 0, width, tirx.ForKind.SERIAL,
                      tirx.BufferStore(out, tirx.BufferLoad(b, [p * width + d]), [p * (2 * width) + width + d]))
    body = tirx.For(p, 0, 8, tirx.ForKind.SERIAL, tirx.SeqStmt([first, second]))
    return tvm.IRModule({"k": tirx.PrimFunc([a, b, out], body).with_attr("global_symbol", "k")})


def test_contiguous_copy_loops_become_memcpy_calls() -> None:
    """A concatenation's per-input copy of a pixel's channels: one memcpy of the run, eight bytes at a
    time, where a loop moves one per load and store; strided, short or vector-target copies stay loops."""
    source, _ = generate(_copies(64))
    calls = re.findall(r"memcpy\(\(&\((\w+)\[(.*?)\]\)\), \(&\((\w+)\[(.*?)\]\)\), (\d+)\)", source)
    assert [(dst, src, n) for dst, _, src, _, n in calls] == [("out", "a", "64"), ("out", "b", "64")], source
    assert "TVM_DLL void* memcpy" not in source  # string.h declares it
    strided = generate(_copies(64, stride=2))[0]
    assert strided.count("memcpy((&") == 1  # b's run only: a is read every other byte
    assert "memcpy((&" not in generate(_copies(8))[0]  # 8 bytes: the loop is cheaper than a call
    assert "memcpy((&" not in generate(_copies(64), copy_calls=False)[0]


@pytest.mark.toolchain
@pytest.mark.spike
def test_quarter_powers_are_square_roots_rounded_once(tmp_path: Path) -> None:
    """Pow by 0.25, 0.5 and 0.75 (an LRN's beta) compiled for rv64gc and run on Spike: the correctly
    rounded powers (float64 pow rounded to float32). onnxruntime's own are off by an ulp on 5, 1 and 1
    of these 4010 inputs (picolibc's powf, called before, on 348, 0 and 381)."""
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    from tvmx.options import make_options
    from tvmx.pipeline import compile_model
    from tvmx.run.runner import run_build
    from tvmx.target import load_target

    rng = np.random.default_rng(0)
    x = np.concatenate([np.array([0.0, -0.0, 1.0, 4.0, 1e-45, 1e-38, 3e38, np.inf, -1.0, np.nan], np.float32),
                        rng.uniform(0.5, 3.0, 2000).astype(np.float32),
                        np.exp(rng.uniform(-80, 80, 2000)).astype(np.float32)]).reshape(1, -1)
    nodes = [helper.make_node("Pow", ["x", f"e{i}"], [f"y{i}"]) for i in range(3)]
    exps = [numpy_helper.from_array(np.array(e, np.float32), f"e{i}") for i, e in enumerate((0.25, 0.5, 0.75))]
    graph = helper.make_graph(nodes, "p", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x.shape))],
                              [helper.make_tensor_value_info(f"y{i}", TensorProto.FLOAT, list(x.shape))
                               for i in range(3)], exps)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)
    onnx.save(model, str(tmp_path / "p.onnx"))
    target = load_target("rv64gc")
    build = compile_model(tmp_path / "p.onnx", target, make_options(), tmp_path / "b").build_dir
    assert (build / "05-codegen" / "kernels.c").read_text().count("tvmx_pow_quarter_f(") >= 3
    got = run_build(target, build, {"x": x}, None).outputs
    want = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})
    with np.errstate(invalid="ignore"):
        for i, e in enumerate((0.25, 0.5, 0.75)):
            exact = np.power(x.astype(np.float64), e).astype(np.float32)
            np.testing.assert_array_equal(got[f"y{i}"], exact)
            assert not np.signbit(got[f"y{i}"][0, 1]) and not np.signbit(want[i][0, 1])  # (-0) ** e is +0, as in C
            same = (got[f"y{i}"] == want[i]) | (np.isnan(got[f"y{i}"]) & np.isnan(want[i]))
            assert (~same).sum() <= 5, i
