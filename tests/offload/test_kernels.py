"""Offloaded kernels tensorize onto the intrinsic built from the target's declaration, for every
shape family the pattern accepts (no compiler or simulator needed)."""

from __future__ import annotations

import numpy as np
import pytest

from tvmx.offload import kernels
from tvmx.offload.layers import Pool, QAdd, QLayer, Rejected, accelerator_sum, analyze_add, analyze_pool, pack_groups

CONVS = [  # (H, W, C_in, C_out, k, stride, pad)
    (16, 16, 3, 16, 3, 1, 1), (16, 16, 16, 8, 1, 1, 0), (17, 17, 8, 8, 3, 2, 1), (32, 32, 3, 16, 3, 2, 1),
    (15, 15, 5, 7, 5, 1, 2), (14, 14, 4, 4, 7, 2, 3), (7, 9, 16, 32, 3, 1, 0), (8, 8, 16, 16, 1, 2, 0),
    (64, 64, 3, 64, 3, 2, 0), (1, 1, 32, 10, 1, 1, 0),
]


def _out(size: int, k: int, s: int, p: int) -> int:
    return (size + 2 * p - k) // s + 1


def _conv_layer(h: int, w: int, cin: int, cout: int, k: int, s: int, p: int, relu: bool, groups: int = 1,
                pool: Pool | None = None, dim: int = 16) -> QLayer:
    weight = pack_groups(np.zeros((cout, cin // groups, k, k), np.int8), groups, dim)
    return QLayer("conv2d", (1, cin, h, w), (1, cout, _out(h, k, s, p), _out(w, k, s, p)), weight,
                  np.zeros(cout, np.int32), 0.0123, relu, (s, s), (p, p, p, p), groups, pool)


def _tensorized(layer: QLayer) -> str:
    source = kernels.conv2d_source(layer, "tiled_conv_grouped_auto")
    text: str = kernels.tensorize(source.kernel(), "conv2d", source.register()).script()
    assert 'T.call_extern("int32", "tvmx_tiled_conv_grouped_auto"' in text
    assert "T.if_then_else" not in text and "for ky" not in text  # the loop nest is gone
    return text


@pytest.mark.parametrize(("h", "w", "cin", "cout", "k", "s", "p"), CONVS)
@pytest.mark.parametrize("relu", [False, True])
def test_conv_kernels_tensorize(h: int, w: int, cin: int, cout: int, k: int, s: int, p: int, relu: bool) -> None:
    _tensorized(_conv_layer(h, w, cin, cout, k, s, p, relu))


@pytest.mark.parametrize(("c", "groups", "dim", "blocks"), [(16, 16, 16, 1), (32, 32, 16, 2), (32, 4, 16, 2),
                                                            (32, 32, 8, 4), (6, 3, 16, 1), (24, 2, 8, 2)])
def test_grouped_convs_pack_into_dense_blocks(c: int, groups: int, dim: int, blocks: int) -> None:
    layer = _conv_layer(9, 9, c, c, 3, 1, 1, True, groups=groups, dim=dim)
    assert layer.weight.shape[0] == blocks
    text = _tensorized(layer)
    assert f"T.int64({blocks}), T.int64({c // blocks}), T.int64({c // blocks})" in text


def test_packed_weights_are_block_diagonal() -> None:
    rng = np.random.default_rng(0)
    w = rng.integers(-128, 128, (8, 1, 3, 3)).astype(np.int8)  # depthwise, 8 channels
    packed = pack_groups(w, 8, 4)  # 2 blocks of 4 groups
    assert packed.shape == (2, 3, 3, 4, 4)
    for ch in range(8):
        blk, p = divmod(ch, 4)
        assert np.array_equal(packed[blk, :, :, p, p], w[ch, 0])
        assert not np.delete(packed[blk, :, :, :, p], p, axis=-1).any()  # nothing from the other groups


@pytest.mark.parametrize(("h", "k", "s", "p", "pool"), [(32, 3, 1, 1, Pool(2, 2, 0)), (15, 3, 1, 1, Pool(3, 2, 1)),
                                                        (16, 3, 2, 1, Pool(3, 2, 1)), (8, 1, 1, 0, Pool(2, 1, 0))])
def test_pooled_convs_tensorize(h: int, k: int, s: int, p: int, pool: Pool) -> None:
    layer = _conv_layer(h, h, 8, 16, k, s, p, True, pool=pool)
    text = _tensorized(layer)
    assert f"T.int64({pool.size}), T.int64({pool.stride}), T.int64({pool.pad})" in text
    assert layer.final_shape[2] == pool.out(layer.out_shape[2])


@pytest.mark.parametrize(("m", "k", "n"), [(1, 64, 128), (1, 96, 10), (33, 40, 24), (16, 1, 16)])
def test_matmul_kernels_tensorize(m: int, k: int, n: int) -> None:
    layer = QLayer("matmul", (m, k), (m, n), np.zeros((k, n), np.int8), None, 0.5, False)
    source = kernels.matmul_source(layer, "tiled_matmul_auto")
    prim = kernels.tensorize(source.kernel(), "matmul", source.register())
    assert 'T.call_extern("int32", "tvmx_tiled_matmul_auto"' in prim.script()


@pytest.mark.parametrize("shape", [(1, 16, 16, 16), (1, 10), (1, 1, 1, 5), (3,)])
@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("scales", [(54865.3, -54034.7), (54865.3, -54034.7, 1234.5)])
def test_add_kernels_tensorize(shape: tuple[int, ...], relu: bool, scales: tuple[float, ...]) -> None:
    add = QAdd(shape, scales, 2.0**-16, 16, relu)
    op, function = ("add", "tiled_resadd_auto") if len(scales) == 2 else ("add3", "tiled_resadd3_auto")
    source = kernels.add_source(add, function)
    prim = kernels.tensorize(source.kernel(), op, source.register())
    text = prim.script()
    assert f'T.call_extern("int32", "tvmx_{function}", T.int64({int(np.prod(shape))})' in text
    assert text.count("T.tvm_access_ptr") == len(scales) + 1  # the inputs and the output
    assert "T.nearbyint" not in text  # the loop nest is gone


def test_add_scales_keep_fractional_bits_and_the_accumulator_exact() -> None:
    from tvm import relax

    def const(v: float | int, dtype: str) -> object:
        return relax.const(np.array(v, dtype))

    ty = relax.TensorType((1, 8), "int8")
    scales = (const(0.078, "float32"), const(0.077, "float32"), const(0.093, "float32"))
    zeros = (const(0, "int8"),) * 3
    add = analyze_add([ty, ty], scales, zeros, "int8", relu=False)
    assert add.frac_bits == 16 and add.out_scale == 2.0**-16
    assert add.in_scales[0] == float(np.float32(np.float32(0.078) / np.float32(0.093) * 2**16))
    assert 128 * sum(add.in_scales) < 2**24  # int32 -> float32 in mvout stays exact
    with pytest.raises(Rejected, match="broadcasting"):
        analyze_add([ty, relax.TensorType((1, 1), "int8")], scales, zeros, "int8", relu=False)
    with pytest.raises(Rejected, match="zero point"):
        analyze_add([ty, ty], scales, (const(0, "int8"), const(3, "int8"), const(0, "int8")), "int8", relu=False)


def test_add_is_accepted_only_where_every_input_gives_the_qdq_result() -> None:
    """Checked over all 256^n operand combinations: a tie in exact arithmetic that float32 rounding
    decides either way (scales 0.05 + 0.05 -> 0.1) is refused; power-of-two scales, exact in both, are
    accepted, for three operands too; the CNN's Sum of three misses on 132 of 16.7M inputs."""
    from tvm import relax

    def consts(*values: float) -> tuple[object, ...]:
        return tuple(relax.const(np.array(v, "float32")) for v in values)

    ty = relax.TensorType((1, 8), "int8")
    zeros = (relax.const(np.array(0, "int8")),) * 4
    with pytest.raises(Rejected, match=r"differs from the QDQ graph's float32 arithmetic on \d+ of 65536 inputs"):
        analyze_add([ty, ty], consts(0.05, 0.05, 0.1), zeros[:3], "int8", relu=False)
    add = analyze_add([ty] * 3, consts(2**-4, 2**-5, 2**-3, 2**-2), zeros, "int8", relu=True)
    assert add.arity == 3 and add.relu
    grids = np.meshgrid(*[np.arange(-128, 128)] * 3, indexing="ij", sparse=True)
    exact = sum(g * s for g, s in zip(grids, (2**-4, 2**-5, 2**-3), strict=True)) / 2**-2
    want = np.maximum(np.clip(np.rint(exact), -128, 127), 0)
    assert np.array_equal(accelerator_sum(grids, add), want)
    with pytest.raises(Rejected, match="on 132 of 16777216 inputs"):
        analyze_add([ty] * 3, consts(0.04724409431219101, 0.080664105713367462, 0.11745376884937286,
                                     0.15306931734085083), zeros, "int8", relu=False)


def test_pools_the_mvout_cannot_do_are_rejected() -> None:
    from types import SimpleNamespace

    from tvm import relax

    def pool(size: int, stride: int, pad: int) -> object:
        attrs = SimpleNamespace(pool_size=[size, size], strides=[stride, stride], padding=[pad] * 4, layout="NCHW",
                                dilation=[1, 1], ceil_mode=False)
        return SimpleNamespace(attrs=attrs)

    scale, zero = relax.const(np.array(0.1, np.float32)), relax.const(np.array(0, np.int8))
    q = SimpleNamespace(args=[None, scale, zero])
    assert analyze_pool(pool(3, 2, 1), q, q) == Pool(3, 2, 1)
    with pytest.raises(Rejected, match="padding"):
        analyze_pool(pool(2, 2, 2), q, q)
