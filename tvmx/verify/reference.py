"""onnxruntime as the reference implementation."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tvmx.errors import InputError


def quantized_output_scales(model_path: Path) -> dict[str, float]:
    """Outputs produced by a per-tensor DequantizeLinear: name -> scale (one quantization step); and
    outputs that are a QuantizeLinear's integers: name -> 1 (a step is one)."""
    import onnx

    from tvmx.stages.import_onnx import constant_values

    model = onnx.load(str(model_path), load_external_data=False)
    consts = constant_values(model)
    producers = {out: node for node in model.graph.node for out in node.output}
    scales = {}
    for output in model.graph.output:
        node = producers.get(output.name)
        if node is not None and node.op_type == "DequantizeLinear" and node.input[1] in consts:
            scale = consts[node.input[1]]
            if scale.size == 1:
                scales[output.name] = float(scale.reshape(()))
        elif node is not None and node.op_type == "QuantizeLinear":
            scales[output.name] = 1.0
    return scales


def run_reference(model: Path, inputs: dict[str, np.ndarray], *, fuse_qdq: bool = True) -> dict[str, np.ndarray]:
    """onnxruntime's outputs. fuse_qdq=False keeps the graph's QuantizeLinear/DequantizeLinear as written
    (basic optimisations only); with it, onnxruntime swaps QDQ groups for its own int8 kernels
    (QLinearConv, QLinearSigmoid tables, ...), whose rounding can differ from the graph by 1 LSB."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    if not fuse_qdq:
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    try:
        session = ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types from C++
        raise InputError(f"onnxruntime cannot load {model}: {str(exc).splitlines()[0][:300]}",
                         hint="the reference needs a model onnxruntime supports (IR version <= 13)") from exc
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, inputs), strict=True))
