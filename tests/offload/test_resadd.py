"""Residual Sums of three int8 tensors on the accelerator (tiled_resadd3_auto), end to end: a QDQ
Sum whose power-of-two scales make the accelerator's arithmetic agree with the QDQ graph's for every
input runs as one accelerator call and is bit-exact against onnxruntime on both Gemmini sizes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from tvmx.options import make_options
from tvmx.target import load_target
from tvmx.verify.flow import verify_model

pytestmark = [pytest.mark.toolchain, pytest.mark.spike]

SHAPE = [1, 16, 8, 8]


def sum_of_three(path: Path, scales: tuple[float, float, float], out_scale: float, relu: bool) -> Path:
    nodes, inits, inputs = [], [], []
    for i, s in enumerate(scales):
        inits += [numpy_helper.from_array(np.array(s, np.float32), f"s{i}"),
                  numpy_helper.from_array(np.array(0, np.int8), f"z{i}")]
        inputs.append(helper.make_tensor_value_info(f"x{i}", TensorProto.FLOAT, SHAPE))
        nodes += [helper.make_node("QuantizeLinear", [f"x{i}", f"s{i}", f"z{i}"], [f"q{i}"], name=f"quant_{i}"),
                  helper.make_node("DequantizeLinear", [f"q{i}", f"s{i}", f"z{i}"], [f"d{i}"], name=f"dequant_{i}")]
    inits += [numpy_helper.from_array(np.array(out_scale, np.float32), "sy"),
              numpy_helper.from_array(np.array(0, np.int8), "zy")]
    nodes.append(helper.make_node("Sum", ["d0", "d1", "d2"], ["sum"], name="residual_sum"))
    last = "sum"
    if relu:
        nodes.append(helper.make_node("Relu", ["sum"], ["relu"], name="relu"))
        last = "relu"
    nodes += [helper.make_node("QuantizeLinear", [last, "sy", "zy"], ["qy"], name="quant_y"),
              helper.make_node("DequantizeLinear", ["qy", "sy", "zy"], ["y"], name="dequant_y")]
    graph = helper.make_graph(nodes, "sum3", inputs, [helper.make_tensor_value_info("y", TensorProto.FLOAT, SHAPE)],
                              inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


@pytest.mark.parametrize("target_name", ["gemmini", "gemmini-8"])
@pytest.mark.parametrize("relu", [False, True])
def test_sum_of_three_runs_on_the_accelerator_bit_exact(tmp_path: Path, target_name: str, relu: bool) -> None:
    model = sum_of_three(tmp_path / "sum3.onnx", (2**-4, 2**-5, 2**-3), 2**-2, relu)
    report = verify_model(model, load_target(target_name), make_options(), tmp_path / "build", seed=3)
    assert report.comparison.ok, report.comparison.summary()
    assert report.comparison.outputs[0].max_lsb == 0  # bit-exact, not only within the target's tolerance
    offload = json.loads((report.build_dir / "02-relax" / "offload.json").read_text())
    (entry,) = [e for e in offload["nodes"] if e["op_type"] == "Sum"]
    assert entry["where"] == "accelerator" and entry["reason"] == "int8 Sum of 3 tensors" + (" + relu" * relu)
    kernels = (report.build_dir / "05-codegen" / "kernels.c").read_text()
    assert "tvmx_tiled_resadd3_auto(" in kernels  # the kernel is one call of the header's three-operand add
    assert report.stats["accelerator_commands"] > 0 and report.stats["macs"] == 0
