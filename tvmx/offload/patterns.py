"""QDQ patterns in Relax as TVM's ONNX importer produces them from a QDQ int8 model:

    quantize( op( dequantize(x), [permute_dims](dequantize(W)) ) [+ dequantize(bias)] )
    [ -> quantize(relu(dequantize(.)))  with the same scale: fused as the accelerator's ReLU ]
    [ -> quantize(max_pool2d(dequantize(.)))  (conv2d only): fused into the accelerator's output store ]

op is matmul (ONNX MatMul, Gemm) or conv2d (ONNX Conv, any groups). Matching runs before constant
folding, which would fold dequantize(int8 weight) into a float constant.
"""

from __future__ import annotations

import itertools
from typing import Any

from tvm.relax.dpl import is_const, is_op, wildcard
from tvm.relax.transform import FusionPattern


def _dq(inner: Any) -> Any:
    return is_op("relax.dequantize")(inner, is_const(), is_const())


def _q(inner: Any) -> Any:
    return is_op("relax.quantize")(inner, is_const(), is_const())


def qdq_patterns(prefix: str, ops: set[str]) -> list[tuple[str, dict[str, Any]]]:
    """(name, annotations) for every supported op with and without bias, ReLU and pool, largest first."""
    out = []
    for op in ("matmul", "conv2d"):
        if op not in ops:
            continue
        for pool, bias, relu in itertools.product((op == "conv2d", False) if op == "conv2d" else (False,),
                                                  (True, False), (True, False)):
            x, w, b = wildcard(), is_const(), is_const()
            dq_x, dq_w = _dq(x), _dq(w)
            dq_b = _dq(b)
            if op == "matmul":
                core = is_op("relax.matmul")(dq_x, dq_w | is_op("relax.permute_dims")(dq_w))
                bias_term = dq_b
            else:
                core = is_op("relax.nn.conv2d")(dq_x, dq_w)
                bias_term = is_op("relax.reshape")(dq_b, wildcard())
            acc = is_op("relax.add")(core, bias_term) if bias else core
            root = q = _q(acc)
            annotations = {"x": x, "w": w, "dq_x": dq_x, "dq_w": dq_w, "core": core, "q": q}
            if relu:
                annotations["relu"] = relu_op = is_op("relax.nn.relu")(_dq(q))
                annotations["act_q"] = root = _q(relu_op)
            if pool:
                annotations["pool"] = pool_op = is_op("relax.nn.max_pool2d")(_dq(root))
                annotations["pool_q"] = root = _q(pool_op)
            if bias:
                annotations.update(b=b, dq_b=dq_b)
            annotations["root"] = root
            name = f"{prefix}.q{op}" + ("_bias" if bias else "") + ("_relu" if relu else "") + ("_pool" if pool else "")
            out.append((name, annotations))
    return out


def fusion_patterns(prefix: str, ops: set[str], check: Any, attrs: Any) -> list[FusionPattern]:
    return [FusionPattern(name, ann["root"], ann, check, attrs) for name, ann in qdq_patterns(prefix, ops)]
