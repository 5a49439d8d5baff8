"""Seeded random stacks of the layers Gemmini takes (dense, depthwise and grouped convs of any kernel,
stride and padding, ReLU, max pools of any window, stride and padding, residual adds), quantized,
compiled and run on both Gemmini sizes: every layer offloaded, outputs bit-exact with onnxruntime."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from tvmx.options import make_options
from tvmx.quantize import quantize_model
from tvmx.target import load_target
from tvmx.verify.flow import verify_model

pytestmark = [pytest.mark.toolchain, pytest.mark.spike, pytest.mark.slow]


class _Stack:
    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []

    def choice(self, options: list[int]) -> int:
        return int(self.rng.choice(options))

    def conv(self, x: str, cin: int, cout: int, k: int, s: int, p: int, groups: int) -> str:
        name = f"conv{len(self.nodes)}"
        w = (self.rng.standard_normal((cout, cin // groups, k, k)) * 0.3).astype(np.float32)
        b = (self.rng.standard_normal(cout) * 0.1).astype(np.float32)
        self.inits += [numpy_helper.from_array(w, f"{name}_w"), numpy_helper.from_array(b, f"{name}_b")]
        self.nodes.append(helper.make_node("Conv", [x, f"{name}_w", f"{name}_b"], [name], kernel_shape=[k, k],
                                           strides=[s, s], pads=[p] * 4, group=groups))
        return name

    def node(self, op: str, inputs: list[str], **attrs: object) -> str:
        name = f"{op.lower()}{len(self.nodes)}"
        self.nodes.append(helper.make_node(op, inputs, [name], **attrs))
        return name


def random_stack(seed: int) -> tuple[onnx.ModelProto, str]:
    g = _Stack(seed)
    c, h = g.choice([3, 8, 16, 24]), g.choice([9, 12, 16, 21])
    x, shape_in, layers = "x", [1, c, h, h], [f"{c}x{h}x{h}"]
    for _ in range(3):
        k, s = g.choice([1, 3, 5]), g.choice([1, 2])
        p = int(g.rng.integers(0, k // 2 + 1))
        kind = ["dense", "depthwise", "grouped"][g.choice([0, 1, 2])]
        groups, cout = {"dense": (1, g.choice([4, 8, 20])), "depthwise": (c, c * g.choice([1, 2])),
                        "grouped": (2, 8) if c % 2 == 0 else (1, 8)}[kind]
        if (h + 2 * p - k) // s + 1 < 3:
            break
        y = g.conv(x, c, cout, k, s, p, groups)
        h, c = (h + 2 * p - k) // s + 1, cout
        layers.append(f"{kind} conv {k}x{k}/{s} pad {p} -> {cout}")
        if g.rng.random() < 0.7:
            y = g.node("Relu", [y])
        if g.rng.random() < 0.5 and h >= 4:
            pk, ps = g.choice([2, 3]), g.choice([1, 2])
            pp = int(g.rng.integers(0, pk))
            y = g.node("MaxPool", [y], kernel_shape=[pk, pk], strides=[ps, ps], pads=[pp] * 4)
            h = (h + 2 * pp - pk) // ps + 1
            layers.append(f"maxpool {pk}x{pk}/{ps} pad {pp}")
        if g.rng.random() < 0.5:
            y = g.node("Add", [y, g.conv(y, c, c, 3, 1, 1, 1)])
            layers.append("residual add")
        x = y
    graph = helper.make_graph(g.nodes, f"stack{seed}",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape_in)],
                              [helper.make_tensor_value_info(x, TensorProto.FLOAT, [1, c, h, h])], g.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model, ", ".join(layers)


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_random_layer_stack_offloads_and_is_bit_exact(tmp_path: Path, seed: int) -> None:
    model, layers = random_stack(seed)
    onnx.save(model, str(tmp_path / "stack.onnx"))
    quantize_model(tmp_path / "stack.onnx", tmp_path / "stack.int8.onnx", load_target("gemmini"), random_n=4,
                   seed=seed)
    for target in ("gemmini", "gemmini-8"):
        report = verify_model(tmp_path / "stack.int8.onnx", load_target(target), make_options(),
                              tmp_path / target, seed=seed)
        offload = json.loads((report.build_dir / "02-relax" / "offload.json").read_text())
        assert offload["offloaded"] == offload["candidates"], (layers, offload["nodes"])
        assert report.comparison.ok and all(d.max_lsb == 0 for d in report.comparison.outputs), \
            (target, layers, report.comparison.summary())
