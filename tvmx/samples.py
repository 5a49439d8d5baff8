"""Sample ONNX models built with onnx.helper (no model zoo can be fetched here), plus the real
architectures the `onnx` package ships as weightless "light" models, given seeded random weights.

Used by `make demo`, the end-to-end tests and the benchmarks:
    python -m tvmx.samples {mlp,cnn,dwsep,squeezenet,resnet50} -o model.onnx
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
IR_VERSION = 8  # onnxruntime 1.31 reads IR versions up to 13; onnx 1.23 writes 14 by default
LIGHT_DIR = Path(onnx.__file__).parent / "backend" / "test" / "data" / "light"


class _Graph:
    """A tiny builder: named nodes and seeded initializers."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.count = 0

    def name(self, prefix: str) -> str:
        self.count += 1
        return f"{prefix}{self.count}"

    def const(self, arr: np.ndarray, prefix: str = "w") -> str:
        name = self.name(prefix)
        self.inits.append(numpy_helper.from_array(arr, name))
        return name

    def weight(self, shape: tuple[int, ...], fan_in: int) -> str:
        return self.const((self.rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(np.float32))

    def node(self, op: str, inputs: list[str], **attrs: Any) -> str:
        out = self.name(op.lower() + "_")
        self.nodes.append(helper.make_node(op, inputs, [out], name=out, **attrs))
        return out

    def conv(self, x: str, cin: int, cout: int, k: int, stride: int = 1, groups: int = 1, bn: bool = True) -> str:
        w = self.weight((cout, cin // groups, k, k), cin // groups * k * k)
        y = self.node("Conv", [x, w, self.const(self.rng.standard_normal(cout).astype(np.float32) * 0.1, "b")],
                      kernel_shape=[k, k], strides=[stride, stride], pads=[k // 2] * 4, group=groups)
        if bn:
            y = self.node("BatchNormalization", [
                y,
                self.const(self.rng.uniform(0.5, 1.5, cout).astype(np.float32), "gamma"),
                self.const((self.rng.standard_normal(cout) * 0.1).astype(np.float32), "beta"),
                self.const((self.rng.standard_normal(cout) * 0.1).astype(np.float32), "mean"),
                self.const(self.rng.uniform(0.5, 1.5, cout).astype(np.float32), "var"),
            ], epsilon=1e-5)
        return y

    def gemm(self, x: str, n_in: int, n_out: int) -> str:
        return self.node("Gemm", [x, self.weight((n_out, n_in), n_in),
                                  self.const(np.zeros(n_out, np.float32), "b")], transB=1)

    def model(self, name: str, inputs: list[tuple[str, list[int]]], output: str,
              out_shape: list[int]) -> onnx.ModelProto:
        graph = helper.make_graph(
            self.nodes, name,
            [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs],
            [helper.make_tensor_value_info(output, TensorProto.FLOAT, out_shape)], self.inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="tvmx.samples")
        model.ir_version = IR_VERSION
        onnx.checker.check_model(model, full_check=True)
        return model


def mlp(seed: int = 0, softmax: bool = True) -> onnx.ModelProto:
    """Gemm, MatMul, Add, Relu, Softmax (or logits)."""
    g = _Graph(seed)
    h = g.node("Relu", [g.gemm("x", 64, 128)])
    h = g.node("Add", [g.node("MatMul", [h, g.weight((128, 96), 128)]), g.const(np.full(96, 0.1, np.float32))])
    h = g.node("Relu", [h])
    y = g.gemm(h, 96, 10)
    y = g.node("Softmax", [y], axis=1) if softmax else y
    return g.model("mlp", [("x", [1, 64])], y, [1, 10])


def cnn(seed: int = 0, softmax: bool = True) -> onnx.ModelProto:
    """Conv (pads, strides), BatchNormalization, Relu, MaxPool, a residual Add, a Sum, Sigmoid, Clip,
    Concat, AveragePool, GlobalAveragePool, Flatten, Reshape, Gemm and Softmax."""
    g = _Graph(seed)
    x = g.node("Relu", [g.conv("x", 3, 16, 3)])
    x = g.node("MaxPool", [x], kernel_shape=[2, 2], strides=[2, 2])
    r = g.node("Relu", [g.conv(x, 16, 16, 3)])
    x = g.node("Relu", [g.node("Add", [g.conv(r, 16, 16, 3), x])])  # residual
    gate = g.node("Sigmoid", [g.conv(x, 16, 8, 1, bn=False)])
    relu6 = g.node("Clip", [g.conv(x, 16, 8, 1, bn=False), g.const(np.array(0.0, np.float32), "lo"),
                            g.const(np.array(6.0, np.float32), "hi")])
    x = g.node("Concat", [gate, relu6], axis=1)
    x = g.node("Sum", [x, g.conv(x, 16, 16, 3, bn=False), g.conv(x, 16, 16, 1)])
    x = g.node("Relu", [g.conv(x, 16, 32, 3, stride=2)])
    x = g.node("AveragePool", [x], kernel_shape=[2, 2], strides=[1, 1], pads=[0, 0, 1, 1])
    x = g.node("Flatten", [g.node("GlobalAveragePool", [x])])
    x = g.node("Reshape", [g.gemm(x, 32, 10), g.const(np.array([1, 10], np.int64), "shape")])
    y = g.node("Softmax", [x], axis=1) if softmax else x
    return g.model("cnn", [("x", [1, 3, 32, 32])], y, [1, 10])


def dwsep(seed: int = 0, softmax: bool = True) -> onnx.ModelProto:
    """MobileNet-style: strided stem, depthwise 3x3 (groups = channels), pointwise 1x1, ReLU6 (Clip),
    a grouped conv (groups = 4) and an inverted-residual Add."""
    g = _Graph(seed)

    def relu6(t: str) -> str:
        return g.node("Clip", [t, g.const(np.array(0.0, np.float32), "lo"), g.const(np.array(6.0, np.float32), "hi")])

    x = relu6(g.conv("x", 3, 16, 3, stride=2))
    x = relu6(g.conv(x, 16, 16, 3, groups=16))  # depthwise
    x = relu6(g.conv(x, 16, 32, 1))  # pointwise
    y = relu6(g.conv(x, 32, 32, 3, stride=2, groups=32))
    y = g.conv(relu6(g.conv(y, 32, 32, 3, groups=4)), 32, 32, 1)
    x = g.node("Add", [y, relu6(g.conv(y, 32, 32, 3, groups=32))])
    x = g.node("Flatten", [g.node("GlobalAveragePool", [x])])
    y = g.gemm(x, 32, 10)
    return g.model("dwsep", [("x", [1, 3, 32, 32])], g.node("Softmax", [y], axis=1) if softmax else y, [1, 10])


def materialize_light(name: str, seed: int = 0, image: int | None = None) -> onnx.ModelProto:
    """An `onnx` test-data "light" model with its ConstantOfShape weights replaced by seeded random
    initializers (BatchNorm variances positive), optionally with a smaller square input image."""
    model = onnx.load(str(LIGHT_DIR / f"light_{name}.onnx"))
    rng = np.random.default_rng(seed)
    shapes = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    bn_role: dict[str, str] = {}
    for node in model.graph.node:
        if node.op_type == "BatchNormalization":
            for role, inp in zip(("x", "scale", "bias", "mean", "var"), node.input, strict=False):
                bn_role[inp] = role
    kept, new_inits = [], []
    for node in model.graph.node:
        if node.op_type == "ConstantOfShape" and node.input[0] in shapes:
            shape = tuple(int(d) for d in shapes[node.input[0]])
            kind = bn_role.get(node.output[0])
            fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else 1
            if kind in ("scale", "var"):
                arr = rng.uniform(0.5, 1.5, shape)
            elif kind in ("bias", "mean") or len(shape) == 1:
                arr = rng.standard_normal(shape) * 0.05
            else:
                arr = rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)
            new_inits.append(numpy_helper.from_array(arr.astype(np.float32), node.output[0]))
        else:
            kept.append(node)
    used = {i for n in kept for i in n.input}
    inits = [t for t in model.graph.initializer if t.name in used] + new_inits
    init_names = {t.name for t in inits}
    inputs = [i for i in model.graph.input if i.name not in shapes and i.name not in init_names]
    if image is not None:
        dims = inputs[0].type.tensor_type.shape.dim
        dims[2].dim_value = dims[3].dim_value = image
    del model.graph.node[:]
    model.graph.node.extend(kept)
    del model.graph.initializer[:]
    model.graph.initializer.extend(inits)
    del model.graph.input[:]
    model.graph.input.extend(inputs)
    model.ir_version = IR_VERSION  # IR 3 wants initializers listed as inputs; later versions do not
    del model.graph.value_info[:]  # stale for a new image size; output shapes do not depend on it
    model = onnx.shape_inference.infer_shapes(model)
    onnx.checker.check_model(model)
    return model


SAMPLES: dict[str, Callable[[], onnx.ModelProto]] = {
    "mlp": mlp,
    "cnn": cnn,
    "dwsep": dwsep,
    "squeezenet": lambda: materialize_light("squeezenet", image=64),
    "resnet50": lambda: materialize_light("resnet50"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", choices=sorted(SAMPLES))
    parser.add_argument("-o", "--output", type=Path, required=True)
    args = parser.parse_args()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(SAMPLES[args.name](), str(args.output))
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
