"""TIR -> plain C: float32 constants survive TVM's 7-digit literals exactly."""

from __future__ import annotations

import numpy as np

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
