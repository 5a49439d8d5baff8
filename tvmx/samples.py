"""Sample ONNX models built with onnx.helper (no model zoo can be fetched here), plus the real
architectures the `onnx` package ships as weightless "light" models, given seeded random weights.

Used by `make demo`, the end-to-end tests and the benchmarks:
    python -m tvmx.samples {mlp,cnn,dwsep,attention,squeezenet,resnet50} -o model.onnx
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


def attention(seed: int = 0, seq: int = 32, width: int = 64) -> onnx.ModelProto:
    """A transformer encoder block: single-head self-attention (Q.K^T and P.V are matmuls of two
    activations), residual Adds, LayerNormalization and a two-layer ReLU MLP."""
    g = _Graph(seed)

    def linear(t: str, n_in: int, n_out: int) -> str:
        return g.node("Add", [g.node("MatMul", [t, g.weight((n_in, n_out), n_in)]),
                              g.const((g.rng.standard_normal(n_out) * 0.1).astype(np.float32), "b")])

    def norm(t: str) -> str:
        return g.node("LayerNormalization", [t, g.const(g.rng.uniform(0.5, 1.5, width).astype(np.float32), "gamma"),
                                             g.const((g.rng.standard_normal(width) * 0.1).astype(np.float32), "beta")],
                      axis=-1, epsilon=1e-5)

    q, k, v = (linear("x", width, width) for _ in range(3))
    scores = g.node("Mul", [g.node("MatMul", [q, g.node("Transpose", [k], perm=[0, 2, 1])]),
                            g.const(np.array(1 / np.sqrt(width), np.float32), "scale")])
    mixed = g.node("MatMul", [g.node("Softmax", [scores], axis=-1), v])
    h = norm(g.node("Add", ["x", linear(mixed, width, width)]))
    mlp = linear(g.node("Relu", [linear(h, width, 2 * width)]), 2 * width, width)
    y = norm(g.node("Add", [h, mlp]))
    return g.model("attention", [("x", [1, seq, width])], y, [1, seq, width])


LIGHT_MODELS = ("bvlc_alexnet", "densenet121", "inception_v1", "inception_v2", "resnet50", "shufflenet",
                "squeezenet", "vgg19", "zfnet512")


def materialize_light(name: str, seed: int = 0, image: int | None = None, calibrate: bool = True) -> onnx.ModelProto:
    """An `onnx` test-data "light" model with its ConstantOfShape weights replaced by seeded random
    initializers, optionally at a smaller square input image (flattening reshapes, global pools and
    the first classifier's weights follow the new size).

    `calibrate` keeps the activations in range, as trained weights do: each BatchNormalization gets
    the statistics of its input and every other conv or Gemm is scaled to unit output variance,
    measured with onnxruntime on a batch of seeded random inputs. Without it, residual sums grow
    through the network and the softmax saturates to one-hot outputs, which verify little."""
    model = onnx.load(str(LIGHT_DIR / f"light_{name}.onnx"))
    _resize(model, image=image)
    rng = np.random.default_rng(seed)
    # Some light models keep a few small tensors (biases, BatchNorm statistics) as real values.
    weights = {**_float_initializers(model), **_random_weights(model, rng)}
    if calibrate:
        probe = onnx.ModelProto()
        probe.CopyFrom(model)
        _resize(probe, batch=CALIBRATION_BATCH)
        _calibrate(_weights_as_inputs(probe, weights), weights, rng)
    _install_weights(model, weights)
    model.ir_version = IR_VERSION  # IR 3 wants initializers listed as inputs; later versions do not
    del model.graph.value_info[:]  # stale for a new image size; output shapes do not depend on it
    model = onnx.shape_inference.infer_shapes(model)
    onnx.checker.check_model(model)
    return model


CALIBRATION_BATCH = 8  # random images: statistics of a 1x1 feature map need more than one


def _weight_roles(model: onnx.ModelProto) -> dict[str, str]:
    """ConstantOfShape output -> what it is: a BatchNorm scale/bias/mean/var, an affine scale (Mul)
    or shift (Add, also through Unsqueeze), else a conv/Gemm weight or bias by its rank."""
    unsqueezed = {n.output[0]: n.input[0] for n in model.graph.node if n.op_type == "Unsqueeze"}
    roles: dict[str, str] = {}
    for node in model.graph.node:
        if node.op_type == "BatchNormalization":
            for role, inp in zip(("x", "scale", "bias", "mean", "var"), node.input, strict=False):
                roles[inp] = role
        elif node.op_type in ("Mul", "Add"):
            for inp in node.input[1:]:
                roles[unsqueezed.get(inp, inp)] = "scale" if node.op_type == "Mul" else "bias"
    return roles


def _weight_nodes(model: onnx.ModelProto) -> dict[str, tuple[int, ...]]:
    """The ConstantOfShape nodes that stand for weights: output name -> shape."""
    shapes = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    return {n.output[0]: tuple(int(d) for d in shapes[n.input[0]]) for n in model.graph.node
            if n.op_type == "ConstantOfShape" and n.input[0] in shapes}


def _random_weights(model: onnx.ModelProto, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Seeded random values for the ConstantOfShape weights: He-normal conv and Gemm weights, small
    biases, BatchNorm scales and variances around 1."""
    roles = _weight_roles(model)
    weights = {}
    for name, shape in _weight_nodes(model).items():
        kind = roles.get(name)
        if kind in ("scale", "var"):
            arr = rng.uniform(0.5, 1.5, shape).astype(np.float32)
        elif kind in ("bias", "mean") or len(shape) == 1:
            arr = rng.standard_normal(shape, dtype=np.float32) * np.float32(0.05)
        else:
            arr = rng.standard_normal(shape, dtype=np.float32) * np.float32(np.sqrt(2.0 / int(np.prod(shape[1:]))))
        weights[name] = arr
    return weights


def _float_initializers(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    used = {i for n in model.graph.node for i in n.input}
    return {t.name: numpy_helper.to_array(t) for t in model.graph.initializer
            if t.data_type == TensorProto.FLOAT and t.name in used}


def _drop_weight_nodes(model: onnx.ModelProto, weights: dict[str, np.ndarray]) -> None:
    """Remove the ConstantOfShape weight nodes, their shape constants, the initializers `weights`
    replaces, and initializers that old IR versions list as graph inputs."""
    kept = [n for n in model.graph.node if not (n.op_type == "ConstantOfShape" and n.output[0] in weights)]
    used = {i for n in kept for i in n.input}
    inits = [t for t in model.graph.initializer if t.name in used and t.name not in weights]
    init_names = {t.name for t in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in init_names and i.name not in weights]
    del model.graph.node[:]
    model.graph.node.extend(kept)
    del model.graph.initializer[:]
    model.graph.initializer.extend(inits)
    del model.graph.input[:]
    model.graph.input.extend(inputs)


def _install_weights(model: onnx.ModelProto, weights: dict[str, np.ndarray]) -> None:
    _drop_weight_nodes(model, weights)
    model.graph.initializer.extend(numpy_helper.from_array(arr, name) for name, arr in weights.items())


def _weights_as_inputs(model: onnx.ModelProto, weights: dict[str, np.ndarray]) -> onnx.ModelProto:
    """The model with every weight a graph input, so one onnxruntime session runs it with any values."""
    _drop_weight_nodes(model, weights)
    model.graph.input.extend(helper.make_tensor_value_info(n, TensorProto.FLOAT, a.shape) for n, a in weights.items())
    model.ir_version = IR_VERSION
    return model


def _value_shapes(model: onnx.ModelProto) -> dict[str, list[int]]:
    inferred = onnx.shape_inference.infer_shapes(model)
    values = [*inferred.graph.input, *inferred.graph.value_info, *inferred.graph.output]
    return {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim] for v in values
            if v.type.tensor_type.HasField("shape")}


def _resize(model: onnx.ModelProto, *, image: int | None = None, batch: int | None = None) -> None:
    """Give the model (still with its ConstantOfShape weights) a square `image` input or a `batch`:
    rewrite the shape-dependent constants in graph order, inferring shapes again after each change."""
    if image is None and batch is None:
        return
    original = _value_shapes(model)
    data = next(i for i in model.graph.input if i.name not in {t.name for t in model.graph.initializer}
                and len(i.type.tensor_type.shape.dim) == 4)
    dims = data.type.tensor_type.shape.dim
    if image is not None:
        dims[2].dim_value = dims[3].dim_value = image
    if batch is not None:
        dims[0].dim_value = batch
    del model.graph.value_info[:]
    inits = {t.name: t for t in model.graph.initializer}
    producers = {o: n for n in model.graph.node for o in n.output}
    shapes = _value_shapes(model)
    for node in model.graph.node:
        changed = False
        if node.op_type == "Reshape" and node.input[1] in inits:
            old = original[node.input[0]], [int(d) for d in numpy_helper.to_array(inits[node.input[1]])]
            target = _reshaped(*old, shapes[node.input[0]])
            if target != old[1]:
                node.input[1] = _add_init(model, inits, np.array(target, np.int64), f"{node.name}_shape")
                changed = True
        elif node.op_type in ("AveragePool", "MaxPool") and _was_global_pool(node, original):
            changed = _make_global(node, shapes[node.input[0]])
        elif node.op_type == "Gemm":
            changed = _resize_gemm_weight(model, node, shapes, inits, producers)
        if changed:
            shapes = _value_shapes(model)
    empty = [name for name, shape in _value_shapes(model).items() if any(d <= 0 for d in shape)]
    if empty or any(o.name not in shapes for o in model.graph.output):
        raise ValueError(f"{image}x{image} is too small an image for this model (no pixels left in "
                         f"'{empty[0] if empty else model.graph.output[0].name}')")


def _add_init(model: onnx.ModelProto, inits: dict[str, onnx.TensorProto], arr: np.ndarray, name: str) -> str:
    tensor = numpy_helper.from_array(arr, name)
    model.graph.initializer.append(tensor)
    inits[name] = tensor
    return name


def _reshaped(old_in: list[int], old_out: list[int], new_in: list[int]) -> list[int]:
    """A Reshape target for a new input shape: the leading and trailing dimensions the old target
    copied from its input follow the input; the middle (a flattened or split group) keeps its split,
    or is the flattened size where it was a single dimension."""
    if old_in == new_in:
        return old_out
    if any(d <= 0 for d in new_in):
        raise ValueError(f"too small an image for this model (a reshape of an empty {new_in})")
    head = 0
    while head < min(len(old_in), len(old_out)) and old_in[head] == old_out[head]:
        head += 1
    tail = 0
    while (tail < min(len(old_in), len(old_out)) - head
           and old_in[len(old_in) - 1 - tail] == old_out[len(old_out) - 1 - tail]):
        tail += 1
    old_mid, new_mid = old_out[head:len(old_out) - tail], new_in[head:len(new_in) - tail]
    size = int(np.prod(new_mid))
    if len(old_mid) == 1:
        old_mid = [size]
    elif int(np.prod(old_mid)) != size:
        raise ValueError(f"cannot resize the reshape {old_in} -> {old_out} to an input {new_in}")
    return [*new_in[:head], *old_mid, *new_in[len(new_in) - tail:]]


def _was_global_pool(node: onnx.NodeProto, original: dict[str, list[int]]) -> bool:
    """A pool whose fixed window covered its whole input at the original image size."""
    return all(d == 1 for d in original[node.output[0]][2:]) and any(d > 1 for d in original[node.input[0]][2:])


def _make_global(node: onnx.NodeProto, in_shape: list[int]) -> bool:
    """Set the window of a global pool to the whole (padded) input of its new size."""
    attrs = {a.name: a for a in node.attribute}
    spatial = in_shape[2:]
    pads = list(attrs["pads"].ints) if "pads" in attrs else [0] * 2 * len(spatial)
    kernel = [d + pads[i] + pads[i + len(spatial)] for i, d in enumerate(spatial)]
    if list(attrs["kernel_shape"].ints) == kernel:
        return False
    del attrs["kernel_shape"].ints[:]
    attrs["kernel_shape"].ints.extend(kernel)
    return True


def _resize_gemm_weight(model: onnx.ModelProto, node: onnx.NodeProto, shapes: dict[str, list[int]],
                        inits: dict[str, onnx.TensorProto], producers: dict[str, onnx.NodeProto]) -> bool:
    """The classifier after a flatten has as many inputs as the new flattened size."""
    k = shapes[node.input[0]][-1]
    trans_b = any(a.name == "transB" and a.i for a in node.attribute)
    weight = producers.get(node.input[1])
    if weight is None or weight.op_type != "ConstantOfShape" or weight.input[0] not in inits:
        return False
    shape = [int(d) for d in numpy_helper.to_array(inits[weight.input[0]])]
    axis = 1 if trans_b else 0
    if shape[axis] == k:
        return False
    shape[axis] = k
    weight.input[0] = _add_init(model, inits, np.array(shape, np.int64), f"{weight.output[0]}__resized_shape")
    return True


def _calibrate(probe: onnx.ModelProto, weights: dict[str, np.ndarray], rng: np.random.Generator) -> None:
    """Set each BatchNormalization's mean and variance to those of its input, and scale every conv
    or Gemm that no BatchNormalization follows to unit output variance: in one onnxruntime run of
    `probe` (the model with its weights as inputs) rewritten to normalize as it goes, so each layer
    sees its inputs as calibrated. The statistics it reads back become the weights: the calibrated
    model computes what the probe did."""
    import onnxruntime as ort

    nodes = _calibration_nodes(probe)
    source = _weight_source(probe, weights)
    params = {i: [source(name) for name in _calibrated_params(probe.graph.node[i])] for i in nodes}
    is_bn = {i: probe.graph.node[i].op_type == "BatchNormalization" for i in nodes}
    stats = _normalize_in_graph(probe, nodes)
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(probe.SerializeToString(), options, providers=["CPUExecutionProvider"])
    feeds = {i.name: rng.standard_normal([d.dim_value for d in i.type.tensor_type.shape.dim]).astype(np.float32)
             for i in probe.graph.input if i.name not in weights}
    names = [n for i in nodes for n in stats[i]]
    values = dict(zip(names, session.run(names, {**feeds, **weights}), strict=True))
    for i in nodes:
        measured = [values[n] for n in stats[i]]
        if is_bn[i]:
            for name, value in zip(params[i], measured, strict=True):  # mean, variance
                weights[name] = value.astype(np.float32)
        else:
            for name in params[i]:  # weight and bias: the output scales with both
                weights[name] = (weights[name] / measured[0].reshape(())).astype(np.float32)


def _calibration_nodes(model: onnx.ModelProto) -> list[int]:
    """The indices of every BatchNormalization, and of every conv or Gemm whose only consumer is not one."""
    consumers: dict[str, list[str]] = {}
    for node in model.graph.node:
        for i in node.input:
            consumers.setdefault(i, []).append(node.op_type)
    return [i for i, n in enumerate(model.graph.node) if n.op_type == "BatchNormalization" or (
        n.op_type in ("Conv", "Gemm") and consumers.get(n.output[0], []) != ["BatchNormalization"])]


def _normalize_in_graph(model: onnx.ModelProto, nodes: list[int]) -> dict[int, list[str]]:
    """Rewrite `model` in place: each BatchNormalization of `nodes` normalizes by the statistics of
    its input (per-channel means; one variance, the mean of the channels': per-channel ones from
    the few values of a 1x1 map would blow up near-constant channels on any other input), each conv
    or Gemm output is divided by its standard deviation. Returns, per node, the graph outputs that
    hold those statistics (mean and variance; standard deviation)."""
    ranks = {name: len(shape) for name, shape in _value_shapes(model).items()}
    calibrated = set(nodes)
    graph = model.graph
    graph.initializer.extend([numpy_helper.from_array(np.array([-1], np.int64), "__cal_flat"),
                              numpy_helper.from_array(np.array(1e-12, np.float32), "__cal_tiny")])
    new_nodes: list[onnx.NodeProto] = []
    stats: dict[int, list[str]] = {}

    def op(op_type: str, inputs: list[str], out: str, **attrs: Any) -> str:
        new_nodes.append(helper.make_node(op_type, inputs, [out], **attrs))
        return out

    for index, node in enumerate(graph.node):
        if index not in calibrated:
            new_nodes.append(node)
            continue
        tag = f"__cal{index}"
        if node.op_type == "BatchNormalization":
            x = node.input[0]
            axes = [a for a in range(ranks[x]) if a != 1]
            mean4 = op("ReduceMean", [x], f"{tag}_mean4", axes=axes, keepdims=1)
            centred = op("Sub", [x, mean4], f"{tag}_centred")
            var = op("ReduceMean", [op("Mul", [centred, centred], f"{tag}_sq")], f"{tag}_var0", keepdims=0)
            mean = op("Reshape", [mean4, "__cal_flat"], f"{tag}_mean")
            variance = op("Expand", [var, op("Shape", [mean], f"{tag}_shape")], f"{tag}_var")
            bn = onnx.NodeProto()
            bn.CopyFrom(node)
            bn.input[3], bn.input[4] = mean, variance
            new_nodes.append(bn)
            stats[index] = [mean, variance]
        else:
            y = node.output[0]
            raw = onnx.NodeProto()
            raw.CopyFrom(node)
            raw.output[0] = f"{tag}_raw"
            new_nodes.append(raw)
            centred = op("Sub", [raw.output[0], op("ReduceMean", [raw.output[0]], f"{tag}_mean", keepdims=1)],
                         f"{tag}_centred")
            power = op("ReduceMean", [op("Mul", [centred, centred], f"{tag}_sq")], f"{tag}_power", keepdims=1)
            std = op("Sqrt", [op("Add", [power, "__cal_tiny"], f"{tag}_power_eps")], f"{tag}_std")
            op("Div", [raw.output[0], std], y)
            stats[index] = [std]
    del graph.node[:]
    graph.node.extend(new_nodes)
    del graph.output[:]
    graph.output.extend(helper.make_tensor_value_info(n, TensorProto.FLOAT, None)
                        for names in stats.values() for n in names)
    return stats


def _calibrated_params(node: onnx.NodeProto) -> list[str]:
    """BatchNorm: mean and variance; conv or Gemm: weight and bias."""
    return list(node.input[3:5]) if node.op_type == "BatchNormalization" else list(node.input[1:3])


def _weight_source(model: onnx.ModelProto, weights: dict[str, np.ndarray]) -> Callable[[str], str]:
    """The weight a parameter is a reshaped view of (Inception's classifier weight is a Reshape)."""
    producers = {o: n for n in model.graph.node for o in n.output}

    def source(name: str) -> str:
        while name not in weights:
            node = producers.get(name)
            if node is None or node.op_type not in ("Reshape", "Unsqueeze", "Flatten"):
                raise ValueError(f"calibration: '{name}' is not a weight")
            name = node.input[0]
        return name

    return source


SAMPLES: dict[str, Callable[[], onnx.ModelProto]] = {
    "mlp": mlp,
    "cnn": cnn,
    "dwsep": dwsep,
    "attention": attention,
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
