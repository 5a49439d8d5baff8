"""Transpose sinking moves table lookups and the per-channel offsets of their indices to NHWC, so
the transposes around an accelerator conv cancel across them."""

from __future__ import annotations

import numpy as np

from tvmx.offload.layout import TO_NCHW, TO_NHWC, sink_transposes
from tvmx.offload.rewrite import bindings, constant_array, op_name


def test_a_channel_lookup_between_two_nhwc_layers_leaves_no_transpose() -> None:
    from tvm import relax

    channels = 4
    bb = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType((1, 3, 5, channels), "int8"))
    offsets = (np.arange(channels, dtype=np.int32) * 256 + 128).reshape(1, channels, 1, 1)
    with bb.function("main", [x]):
        with bb.dataflow():
            nchw = bb.emit(relax.op.permute_dims(x, TO_NCHW))
            index = bb.emit(relax.op.add(bb.emit(relax.op.astype(nchw, "int32")), relax.const(offsets)))
            y = bb.emit(relax.op.take(relax.const(np.zeros(channels * 256, np.int8)), index, axis=0, mode="clip"))
            nhwc = bb.emit(relax.op.permute_dims(y, TO_NHWC))  # the next accelerator layer's input
            out = bb.emit_output(relax.op.add(nhwc, nhwc))
        bb.emit_func_output(out)
    main = sink_transposes(bb.get())["main"]
    assert "permute_dims" not in main.script(), main.script()
    adds = [v for v in bindings(main).values() if op_name(v) == "relax.add" and constant_array(v.args[1]) is not None]
    assert len(adds) == 1  # the offsets, one per channel along the NHWC channel axis
    assert np.array_equal(constant_array(adds[0].args[1]), offsets.transpose(TO_NHWC))
