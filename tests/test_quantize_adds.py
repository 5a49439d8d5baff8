"""Scales at which int8 residual adds run exactly on the accelerator: an add that would differ from
the QDQ graph on some inputs gets commensurate scales, moved little; one already exact, or a scale
an earlier add has fixed, is kept; `tvmx quantize` applies them through onnxruntime, which keeps
the convs' bias scales consistent."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from tvmx import samples
from tvmx.quantize import quantize_model
from tvmx.quantize_adds import count_exact, exact_add_scales, int8_adds, with_scales
from tvmx.target import load_target

# The sample CNN's Sum of three as onnxruntime calibrated it: 118 of the 16.7M inputs round otherwise
# on the accelerator.
CNN_SUM = {"a": 0.04724409431219101, "b": 0.075617372989654541, "c": 0.10756837576627731}
CNN_SUM_OUT = 0.15223471820354462


def qdq_adds(inputs: dict[str, float], adds: list[tuple[str, list[str], float]], relu: bool = False) -> onnx.ModelProto:
    """A QDQ graph in onnxruntime's naming: every tensor t is quantized with the initializer t_scale
    and dequantized; each add (its name, its operands, its result's scale) adds dequantized tensors,
    then [a Relu]."""
    nodes, inits = [], []

    def qdq(name: str, scale: float) -> None:
        inits.extend([numpy_helper.from_array(np.array(scale, np.float32), f"{name}_scale"),
                      numpy_helper.from_array(np.array(0, np.int8), f"{name}_zero_point")])
        nodes.extend([helper.make_node("QuantizeLinear", [name, f"{name}_scale", f"{name}_zero_point"], [f"{name}_q"]),
                      helper.make_node("DequantizeLinear", [f"{name}_q", f"{name}_scale", f"{name}_zero_point"],
                                       [f"{name}_dq"])])

    for name, scale in inputs.items():
        qdq(name, scale)
    for name, operands, scale in adds:
        nodes.append(helper.make_node("Add" if len(operands) == 2 else "Sum", [f"{o}_dq" for o in operands],
                                      [f"{name}_sum" if relu else name], name=name))
        if relu:
            nodes.append(helper.make_node("Relu", [f"{name}_sum"], [name]))
        qdq(name, scale)
    shape = [1, 4]
    graph = helper.make_graph(nodes, "adds", [helper.make_tensor_value_info(n, TensorProto.FLOAT, shape)
                                              for n in inputs],
                              [helper.make_tensor_value_info(f"{adds[-1][0]}_dq", TensorProto.FLOAT, shape)], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


@pytest.mark.parametrize("relu", [False, True])
def test_the_cnns_sum_is_made_exact_by_a_small_move(relu: bool) -> None:
    model = qdq_adds(CNN_SUM, [("y", ["a", "b", "c"], CNN_SUM_OUT)], relu)
    assert count_exact(model, {2, 3}) == (0, 1)
    moved, made = exact_add_scales(model, {2, 3})
    assert made == 1 and set(moved) == {"a_scale", "b_scale", "c_scale", "y_scale"}
    old = {**{f"{k}_scale": v for k, v in CNN_SUM.items()}, "y_scale": CNN_SUM_OUT}
    unit = 2.0 ** (math.floor(math.log2(min(CNN_SUM.values()))) - 11)
    for name, value in moved.items():
        multiple = value / unit
        assert multiple == int(multiple) < 2**15  # commensurate: integer multiples of one power of two
        assert abs(value - old[name]) <= (unit if name == "y_scale" else unit / 2)
        assert abs(value / old[name] - 1) <= 2**-11
    assert int(moved["y_scale"] / unit) % 2 == 1  # an odd output multiple: no quotient is ever a tie
    assert count_exact(with_scales(model, moved), {2, 3}) == (1, 1)


def test_an_exact_add_and_the_scales_it_fixes_are_kept() -> None:
    """The first add is exact as calibrated (powers of two); the second reads its result, so that
    scale stays and only the second add's other scales move."""
    model = qdq_adds({"a": 2**-4, "b": 2**-5, "c": 0.05}, [("y", ["a", "b"], 2**-3), ("z", ["y", "c"], 0.1)])
    assert count_exact(model, {2}) == (1, 2)
    moved, made = exact_add_scales(model, {2})
    assert made == 1 and set(moved) == {"c_scale", "z_scale"}
    assert count_exact(with_scales(model, moved), {2}) == (2, 2)


def test_scales_equal_before_stay_equal() -> None:
    """d shares a's scale (as a Concat shares that of its widest input), so it moves with a."""
    model = qdq_adds({**CNN_SUM, "d": CNN_SUM["a"]}, [("y", ["a", "b", "c"], CNN_SUM_OUT)])
    moved, made = exact_add_scales(model, {3})
    assert made == 1 and moved["d_scale"] == moved["a_scale"] != CNN_SUM["a"]


def test_scales_too_far_apart_to_move_little_are_left() -> None:
    model = qdq_adds({"a": 0.001, "b": 0.5}, [("y", ["a", "b"], 0.3)])
    assert count_exact(model, {2}) == (0, 1) and exact_add_scales(model, {2}) == ({}, 0)


def test_only_the_arities_the_accelerator_adds() -> None:
    model = qdq_adds(CNN_SUM, [("y", ["a", "b", "c"], CNN_SUM_OUT)])
    assert int8_adds(model, {2}) == [] and exact_add_scales(model, {2}) == ({}, 0)


@pytest.fixture(scope="module")
def cnn(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cnn") / "cnn.onnx"
    onnx.save(samples.cnn(softmax=False), str(path))
    return path


def test_quantize_makes_the_cnns_adds_exact_and_keeps_bias_scales_consistent(cnn: Path, tmp_path: Path) -> None:
    out = tmp_path / "cnn.int8.onnx"
    info = quantize_model(cnn, out, load_target("gemmini"), random_n=4, seed=1)
    assert (info["int8_adds"], info["exact_adds"], info["rescaled_adds"]) == (2, 2, 1)
    model = onnx.load(str(out))
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    producer = {o: n for n in model.graph.node for o in n.output}
    convs = [n for n in model.graph.node if n.op_type == "Conv"]
    for conv in convs:  # the int32 bias still seeds the accumulator: its scale is input scale x weight scale
        x, w, b = (producer[name] for name in conv.input)
        assert inits[b.input[1]] == np.float32(inits[x.input[1]] * inits[w.input[1]]), conv.name
    assert len(convs) == 8


def test_quantize_moves_nothing_for_a_cpu(cnn: Path, tmp_path: Path) -> None:
    info = quantize_model(cnn, tmp_path / "cnn.int8.onnx", load_target("rv64gc"), random_n=4, seed=1)
    assert (info["int8_adds"], info["rescaled_adds"]) == (0, 0)
