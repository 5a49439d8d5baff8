"""Stage 4: the flat call list over the static memory plan, for kernels with several outputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from tvmx.options import make_options
from tvmx.pipeline import compile_model
from tvmx.stages.lower import c_symbol
from tvmx.stages.registry import find_stage
from tvmx.target import load_target


def _save(nodes: list[onnx.NodeProto], outputs: list[str], path: Path, inits: list[onnx.TensorProto] = ()) -> Path:
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 6])],
                              [helper.make_tensor_value_info(o, TensorProto.UNDEFINED, None) for o in outputs],
                              list(inits))
    model = onnx.shape_inference.infer_shapes(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]))
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def _plan(model: Path, tmp_path: Path) -> tuple[object, list[str]]:
    result = compile_model(model, load_target("rv64gc"), make_options(), tmp_path / "b", compile_to=find_stage("lower"))
    lowered = result.artifact
    return lowered.plan, [gv.name_hint for gv in lowered.mod.functions]


def test_a_split_into_chunks_binds_each_output(tmp_path: Path) -> None:
    """Split's kernel writes a tuple of tensors; each model output is one of its fields."""
    split = numpy_helper.from_array(np.array([2, 4], np.int64), "split")
    nodes = [helper.make_node("Split", ["x", "split"], ["a", "b"], axis=1),
             helper.make_node("Relu", ["b"], ["r"])]
    plan, _ = _plan(_save(nodes, ["a", "r"], tmp_path / "split.onnx", [split]), tmp_path)
    assert [r.shape for r in plan.output_refs] == [(2, 2), (2, 4)]
    split_call = next(args for kernel, args in plan.calls if kernel.startswith("split"))
    assert [a.shape for a in split_call] == [(2, 6), (2, 2), (2, 4)]  # input, then both outputs


def test_dropout_and_its_mask_lower(tmp_path: Path) -> None:
    nodes = [helper.make_node("Dropout", ["x"], ["d"]), helper.make_node("Relu", ["d"], ["y"])]
    plan, _ = _plan(_save(nodes, ["y"], tmp_path / "dropout.onnx"), tmp_path)
    assert plan.output_refs[0].shape == (2, 6)


def test_kernels_named_like_a_libm_function_are_renamed(tmp_path: Path) -> None:
    """A kernel called `erf` would clash with math.h's erf."""
    plan, kernels = _plan(_save([helper.make_node("Erf", ["x"], ["y"])], ["y"], tmp_path / "erf.onnx"), tmp_path)
    assert "erf" not in kernels and "erf_kernel" in kernels
    assert [k for k, _ in plan.calls] == ["erf_kernel"]


@pytest.mark.parametrize(("name", "symbol"), [("erf", "erf_kernel"), ("expf", "expf_kernel"),
                                              ("fused_conv2d_add", "fused_conv2d_add")])
def test_c_symbol(name: str, symbol: str) -> None:
    assert c_symbol(name) == symbol
