"""The default CPU schedule rules, on TE kernels (no compiler or simulator needed)."""

from __future__ import annotations

from typing import Any

import pytest

tvm = pytest.importorskip("tvm")
from tvm import te, topi  # noqa: E402

from tvmx.schedules.cpu import InlineElementwise, InnerSpatialReduction, SingleReduction  # noqa: E402


def _conv() -> Any:
    x = te.placeholder((1, 8, 16, 16), "float32", name="x")
    w = te.placeholder((8, 8, 3, 3), "float32", name="w")
    return te.create_prim_func([x, w, topi.nn.conv2d_nchw(x, w, 1, 1, 1)])


def _matmul() -> Any:
    a = te.placeholder((1, 64), "float32", name="a")
    b = te.placeholder((64, 32), "float32", name="b")
    k = te.reduce_axis((0, 64), name="k")
    return te.create_prim_func([a, b, te.compute((1, 32), lambda i, j: te.sum(a[i, k] * b[k, j], axis=k))])


def _softmax() -> Any:
    x = te.placeholder((1, 1000), "float32", name="x")
    return te.create_prim_func([x, topi.nn.softmax(x, axis=1)])


def test_conv_gets_output_width_innermost() -> None:
    sch = InnerSpatialReduction(vector=False).apply(_conv(), None, False)
    assert sch is not None
    assert "_init" in sch.mod.script()  # the reduction's init was hoisted out of the reordered nest
    loops = sch.get_loops(sch.get_sblock("conv2d_nchw_update"))
    extents = [int(sch.get(lp).extent) for lp in loops]
    assert extents[-1] == 16, extents  # output width innermost (it was the 3-wide kernel axis)
    assert extents[-4:-1] == [8, 3, 3], extents  # the reduction over channels and the kernel window


def test_scalar_matmul_is_left_to_single_reduction() -> None:
    assert InnerSpatialReduction(vector=False).apply(_matmul(), None, False) is None
    assert InnerSpatialReduction(vector=True).apply(_matmul(), None, False) is not None


def _pool(kind: str, dtype: str = "int8") -> Any:
    x = te.placeholder((1, 15, 15, 128), dtype, name="x")
    return te.create_prim_func([x, topi.nn.pool2d(x, (3, 3), (2, 2), (1, 1), (0, 0, 0, 0), kind, layout="NHWC")])


@pytest.mark.parametrize(("kind", "dtype"), [("max", "int8"), ("avg", "float32")])
def test_scalar_pools_keep_their_taps_innermost(kind: str, dtype: str) -> None:
    """On a scalar core each output's taps reduce in a register where its row is longer than
    REGISTER_ROW (channels inside the taps: a load, a max or add and a store of the output per tap);
    with vectors the channels go innermost, as for a conv, whose products keep the reorder on scalar
    cores too."""
    assert InnerSpatialReduction(vector=False).apply(_pool(kind, dtype), None, False) is None
    assert InnerSpatialReduction(vector=False).apply(_conv(), None, False) is not None
    # a row of up to REGISTER_ROW outputs stays in registers once unrolled: the reorder is kept
    x = te.placeholder((1, 4, 8, 8), dtype, name="x")
    short = te.create_prim_func([x, topi.nn.pool2d(x, (3, 3), (1, 1), (1, 1), (1, 1, 1, 1), kind, layout="NCHW")])
    assert InnerSpatialReduction(vector=False).apply(short, None, False) is not None
    if kind == "avg":
        return
    sch = InnerSpatialReduction(vector=True).apply(_pool(kind, dtype), None, False)
    assert sch is not None
    loops = sch.get_loops(sch.get_sblock("pool_max_update"))
    assert [int(sch.get(lp).extent) for lp in loops][-3:] == [3, 3, 128]


def test_single_reduction_refuses_softmax() -> None:
    assert SingleReduction().apply(_softmax(), None, False) is None


def test_a_concat_copies_each_input_in_a_loop_of_its_own() -> None:
    """int8 channels 5 + 3 + 8 (NHWC) and a dequantize after them: inlined, the concat's axis
    partitioned at 5 and 8, so the C loops have no branch; the same values as TVM's loop nest."""
    import numpy as np

    from tvmx.stages.kernels_c import generate

    parts = [te.placeholder((1, 4, 6, c), "int8", name=f"x{i}") for i, c in enumerate((5, 3, 8))]
    joined = topi.concatenate(parts, axis=3)
    out = te.compute(joined.shape, lambda *i: joined(*i).astype("float32") * 0.5, name="dequantize")
    func = te.create_prim_func([*parts, out])
    sch = InlineElementwise().apply(func, None, False)
    assert sch is not None
    source, _ = generate(tvm.IRModule({"k": sch.mod["main"].with_attr("global_symbol", "k")}))
    kernel = source[source.index("void k(int8_t"):]
    assert "if (" not in kernel and "?" not in kernel and kernel.count("for (") == 5  # 2 outer + 3 parts
    rng = np.random.default_rng(0)
    xs = [rng.integers(-128, 128, [int(d) for d in p.shape]).astype(np.int8) for p in parts]
    results = []
    for f in (func, sch.mod["main"]):
        built = tvm.compile(tvm.IRModule({"main": f}), target="llvm")
        y = tvm.runtime.tensor(np.zeros([int(d) for d in out.shape], np.float32))
        built["main"](*(tvm.runtime.tensor(x) for x in xs), y)
        results.append(y.numpy())
    assert np.array_equal(results[0], results[1])
    assert np.array_equal(results[1], np.concatenate(xs, axis=3).astype(np.float32) * 0.5)


def test_a_per_channel_lookup_unrolls_its_channels_and_an_int8_lookup_does_not() -> None:
    """`table[256 * c + x + 128]` with c the innermost (NHWC channel) axis: unrolled, each channel's
    row a constant offset, the same values; `table[x & 255]` picks no row by the loop: left alone."""
    import numpy as np
    from tvm import tirx

    from tvmx.stages.kernels_c import generate

    x = te.placeholder((1, 3, 5, 8), "int8", name="x")
    table = te.placeholder((8 * 256,), "int8", name="table")
    rows = te.compute(x.shape, lambda n, h, w, c: table[c.astype("int64") * 256 + 128 + x[n, h, w, c].astype("int64")],
                      name="lookup")
    func = te.create_prim_func([table, x, rows])
    sch = InlineElementwise().apply(func, None, False)
    assert sch is not None
    source, _ = generate(tvm.IRModule({"k": sch.mod["main"].with_attr("global_symbol", "k")}))
    kernel = source[source.index("void k(int8_t"):]
    assert kernel.count("for (") == 2 and "+ 1920)]" in kernel  # h, w loops; channel 7's row: 7 * 256 + 128
    rng = np.random.default_rng(0)
    args = [rng.integers(-128, 128, 8 * 256).astype(np.int8), rng.integers(-128, 128, (1, 3, 5, 8)).astype(np.int8)]
    results = []
    for f in (func, sch.mod["main"]):
        y = tvm.runtime.tensor(np.zeros((1, 3, 5, 8), np.int8))
        tvm.compile(tvm.IRModule({"main": f}), target="llvm")["main"](*(tvm.runtime.tensor(a) for a in args), y)
        results.append(y.numpy())
    assert np.array_equal(results[0], results[1])
    wrap = te.compute(x.shape, lambda *i: table[tirx.bitwise_and(x(*i).astype("int64"), 255)], name="lookup")
    assert InlineElementwise().apply(te.create_prim_func([table, x, wrap]), None, False) is None
