"""One scale for a quantized Concat and all its inputs.

onnxruntime's quantizer calibrates each input of a Concat on its own, so the QDQ graph requantizes
every input whose scale differs from the output's: a table lookup per element on the CPU, where a
concatenation at one scale only moves bytes (and a producer could write its slice in place). TFLite's
int8 specification asks the same of a concatenation. The shared scale is the largest of them (the
output's, with min-max calibration, whose range is the union of the inputs'): no input is clipped,
and a narrower input loses at most the bits between its range and the widest one's.
"""

from __future__ import annotations

import onnx

from tvmx.quantize_adds import graph_maps, qdq_scale_name, scalar_scale


def _before_relus(dq: onnx.NodeProto | None, producer: dict[str, onnx.NodeProto],
                  inits: dict[str, onnx.TensorProto]) -> list[str]:
    """The scales of DQ -> Relu -> Q chains that lead into this DequantizeLinear: at one scale an int8
    ReLU is max(q, 0), and the accelerator's conv with ReLU writes the concatenation's scale itself."""
    names = []
    while dq is not None:
        q = producer.get(dq.input[0])
        relu = producer.get(q.input[0]) if q is not None and q.op_type == "QuantizeLinear" else None
        dq = producer.get(relu.input[0]) if relu is not None and relu.op_type == "Relu" else None
        name = qdq_scale_name(inits, dq, "DequantizeLinear")
        if name is None:
            break
        names.append(name)
    return names


def shared_concat_scales(model: onnx.ModelProto) -> tuple[dict[str, float], int]:
    """New values for the scale initializers of each Concat whose inputs all come through
    DequantizeLinear of computed int8 tensors and whose output goes to one QuantizeLinear (symmetric,
    scalar scales): every one of them the largest, and how many Concats that unifies. A scale shared
    with another Concat that needs another value is left, and so is that Concat."""
    inits, producer, users = graph_maps(model)
    shared: dict[str, float] = {}
    made = 0
    for node in model.graph.node:
        if node.op_type != "Concat":
            continue
        after = users.get(node.output[0], [])
        names = [qdq_scale_name(inits, producer.get(name), "DequantizeLinear") for name in node.input]
        names.append(qdq_scale_name(inits, after[0], "QuantizeLinear") if len(after) == 1 else None)
        if not all(names):
            continue
        for name in node.input:  # and the scales before a ReLU into an input (a conv's output)
            names += _before_relus(producer.get(name), producer, inits)
        values = [float(scalar_scale(inits, n)) for n in names]  # type: ignore[arg-type]
        if len(set(values)) == 1:
            continue  # one scale already
        target = max(values)
        if any(shared.get(n, target) != target for n in names):  # type: ignore[arg-type]
            continue
        shared.update(dict.fromkeys(names, target))  # type: ignore[arg-type]
        made += 1
    return shared, made
