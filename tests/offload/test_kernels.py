"""Offloaded kernels tensorize onto the intrinsic built from the target's declaration, for every
shape family the pattern accepts (no compiler or simulator needed)."""

from __future__ import annotations

import numpy as np
import pytest

from tvmx.offload import kernels
from tvmx.offload.layers import QAdd, QLayer, Rejected, analyze_add

CONVS = [  # (H, W, C_in, C_out, k, stride, pad)
    (16, 16, 3, 16, 3, 1, 1), (16, 16, 16, 8, 1, 1, 0), (17, 17, 8, 8, 3, 2, 1), (32, 32, 3, 16, 3, 2, 1),
    (15, 15, 5, 7, 5, 1, 2), (14, 14, 4, 4, 7, 2, 3), (7, 9, 16, 32, 3, 1, 0), (8, 8, 16, 16, 1, 2, 0),
    (64, 64, 3, 64, 3, 2, 0), (1, 1, 32, 10, 1, 1, 0),
]


def _out(size: int, k: int, s: int, p: int) -> int:
    return (size + 2 * p - k) // s + 1


@pytest.mark.parametrize(("h", "w", "cin", "cout", "k", "s", "p"), CONVS)
@pytest.mark.parametrize("relu", [False, True])
def test_conv_kernels_tensorize(h: int, w: int, cin: int, cout: int, k: int, s: int, p: int, relu: bool) -> None:
    oh, ow = _out(h, k, s, p), _out(w, k, s, p)
    layer = QLayer("conv2d", (1, cin, h, w), (1, cout, oh, ow), np.zeros((k, k, cin, cout), np.int8),
                   np.zeros(cout, np.int32), 0.0123, relu, (s, s), (p, p, p, p))
    source = kernels.conv2d_source(layer, "tiled_conv_auto", (1, h, w, cin), (1, oh, ow, cout))
    prim = kernels.tensorize(source.kernel(), "conv2d", source.register())
    text = prim.script()
    assert 'T.call_extern("int32", "tvmx_tiled_conv_auto"' in text
    assert "T.if_then_else" not in text and "for ky" not in text  # the loop nest is gone


@pytest.mark.parametrize(("m", "k", "n"), [(1, 64, 128), (1, 96, 10), (33, 40, 24), (16, 1, 16)])
def test_matmul_kernels_tensorize(m: int, k: int, n: int) -> None:
    layer = QLayer("matmul", (m, k), (m, n), np.zeros((k, n), np.int8), None, 0.5, False)
    source = kernels.matmul_source(layer, "tiled_matmul_auto")
    prim = kernels.tensorize(source.kernel(), "matmul", source.register())
    assert 'T.call_extern("int32", "tvmx_tiled_matmul_auto"' in prim.script()


@pytest.mark.parametrize("shape", [(1, 16, 16, 16), (1, 10), (1, 1, 1, 5), (3,)])
@pytest.mark.parametrize("relu", [False, True])
def test_add_kernels_tensorize(shape: tuple[int, ...], relu: bool) -> None:
    add = QAdd(shape, 54865.3, -54034.7, 2.0**-16, 16, relu)
    source = kernels.add_source(add, "tiled_resadd_auto")
    prim = kernels.tensorize(source.kernel(), "add", source.register())
    text = prim.script()
    assert f'T.call_extern("int32", "tvmx_tiled_resadd_auto", T.int64({int(np.prod(shape))})' in text
    assert "T.nearbyint" not in text  # the loop nest is gone


def test_add_scales_keep_fractional_bits_and_the_accumulator_exact() -> None:
    from tvm import relax

    def const(v: float | int, dtype: str) -> object:
        return relax.const(np.array(v, dtype))

    ty = relax.TensorType((1, 8), "int8")
    scales = (const(0.078, "float32"), const(0.077, "float32"), const(0.093, "float32"))
    zeros = (const(0, "int8"),) * 3
    add = analyze_add(ty, ty, scales, zeros, "int8", relu=False)
    assert add.frac_bits == 16 and add.out_scale == 2.0**-16
    assert add.a_scale == float(np.float32(np.float32(0.078) / np.float32(0.093) * 2**16))
    assert 128 * (add.a_scale + add.b_scale) < 2**24  # int32 -> float32 in mvout stays exact
    with pytest.raises(Rejected, match="broadcasting"):
        analyze_add(ty, relax.TensorType((1, 1), "int8"), scales, zeros, "int8", relu=False)
    with pytest.raises(Rejected, match="zero point"):
        analyze_add(ty, ty, scales, (const(0, "int8"), const(3, "int8"), const(0, "int8")), "int8", relu=False)
