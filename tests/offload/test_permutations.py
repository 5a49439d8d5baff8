"""Chains of reshapes and transposes that only permute the innermost axis become one gather with the
same values; other chains stay as they are."""

from __future__ import annotations

from typing import Any

import numpy as np
from helpers import relax_main, run_relax

from tvmx.offload.permutations import channel_permutations, last_axis_permutation


def _shuffle(groups: int) -> Any:
    """ShuffleNet's channel shuffle of an NHWC tensor between layout transforms, as tvmx's layout
    pass leaves it: NHWC -> NCHW, (N, g, C/g, H, W), swap g and C/g, back to NCHW, -> NHWC."""
    from tvm import relax

    def make(bb: Any, x: Any) -> Any:
        n, h, w, c = (int(d) for d in x.ty.shape)
        t = bb.emit(relax.op.permute_dims(x, [0, 3, 1, 2]))
        t = bb.emit(relax.op.reshape(t, (n, groups, c // groups, h, w)))
        t = bb.emit(relax.op.permute_dims(t, [0, 2, 1, 3, 4]))
        t = bb.emit(relax.op.reshape(t, (n, c, h, w)))
        return relax.op.permute_dims(t, [0, 2, 3, 1])

    return make


def _kernels(mod: Any) -> list[str]:
    from tvm import tirx

    return [gv.name_hint for gv, f in mod.functions.items() if isinstance(f, tirx.PrimFunc)]


def test_a_channel_shuffle_becomes_one_gather_with_the_same_values() -> None:
    x = np.random.default_rng(0).integers(-128, 128, (1, 3, 5, 24)).astype(np.int8)
    mod = relax_main(_shuffle(4), x.shape)
    rewritten = channel_permutations(mod)
    assert _kernels(rewritten) == ["channel_permutation"]
    assert "permute_dims" not in rewritten["main"].script()
    np.testing.assert_array_equal(run_relax(rewritten, x), run_relax(mod, x))
    want = x.reshape(1, 3, 5, 4, 6).transpose(0, 1, 2, 4, 3).reshape(x.shape)  # the shuffle itself
    np.testing.assert_array_equal(run_relax(rewritten, x), want)


def test_chains_that_move_across_pixels_stay() -> None:
    from tvm import relax

    mod = relax_main(lambda bb, x: relax.op.permute_dims(bb.emit(relax.op.permute_dims(x, [0, 2, 1, 3])), [0, 1, 2, 3]),
                  (1, 3, 5, 8))
    assert _kernels(channel_permutations(mod)) == []
    assert last_axis_permutation(np.arange(12).reshape(3, 4)[:, [1, 0, 3, 2]]) is not None
    assert last_axis_permutation(np.arange(12).reshape(3, 4)[[1, 0, 2]]) is None
