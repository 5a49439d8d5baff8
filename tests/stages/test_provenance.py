"""02-relax/kernels.json: every ONNX node lands in the kernel that computes it, through TVM's
fusion (also where FuseOps calls one function for two alike groups), with the kernel's MACs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from tvmx import samples
from tvmx.options import make_options
from tvmx.pipeline import compile_model
from tvmx.quantize import quantize_model
from tvmx.stages.import_onnx import graph_macs
from tvmx.stages.provenance import binding_hint, node_index
from tvmx.stages.registry import find_stage
from tvmx.target import load_target

tvm = pytest.importorskip("tvm")


def _kernels(tmp_path: Path, model: onnx.ModelProto | Path, target: str = "rv64gc") -> dict[str, dict]:
    if isinstance(model, onnx.ModelProto):
        onnx.save(model, str(tmp_path / "m.onnx"))
    path = model if isinstance(model, Path) else tmp_path / "m.onnx"
    compile_model(path, load_target(target), make_options(), tmp_path / "b", compile_to=find_stage("relax"))
    record = json.loads((tmp_path / "b" / "02-relax" / "kernels.json").read_text())
    assert record["format"] == 1
    return record["kernels"]


def test_a_binding_name_gives_back_its_node_index() -> None:
    assert node_index(binding_hint(12, "conv/3:x")) == 12 and binding_hint(12, "conv/3:x") == "n12__conv_3_x"
    assert node_index(binding_hint(3, "conv_7") + "_1") == 3  # a second binding of the node
    assert node_index("lv12") is None and node_index("n12_conv") is None


def test_every_node_of_the_sample_cnn_is_in_one_kernel_and_the_macs_are_the_graphs(tmp_path: Path) -> None:
    """The sample CNN (Conv -> BatchNormalization -> Relu, Sigmoid, Clip, Concat, Sum, pools, Gemm,
    Softmax): BatchNorm decomposed and fused into its conv, repeated conv blocks sharing one fused
    function, still every node named by exactly the kernel that computes it."""
    model = samples.cnn(softmax=True)
    kernels = _kernels(tmp_path, model)
    placed = [n for k in kernels.values() for n in k["nodes"]]
    assert sorted(placed) == sorted(n.name for n in model.graph.node)
    by_node = {n: name for name, k in kernels.items() for n in k["nodes"]}
    for node in model.graph.node:
        if node.op_type == "BatchNormalization":  # (folded into the conv that feeds it)
            conv = next(n for n in model.graph.node if n.output[0] == node.input[0])
            assert by_node[node.name] == by_node[conv.name], (node.name, kernels)
    assert sum(k["macs"] for k in kernels.values()) == graph_macs(model)
    assert all(k["macs"] == 0 for k in kernels.values() if not any(n.startswith(("conv", "gemm")) for n in k["nodes"]))


def _twin_blocks(named: bool) -> onnx.ModelProto:
    """Two alike Conv -> Relu blocks (one fused function for both) and a MatMul; `named`: no node
    has a name, so each is labelled Op#index."""
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.standard_normal((4, 4, 3, 3)).astype(np.float32), f"w{i}")
             for i in range(2)] + [numpy_helper.from_array(rng.standard_normal((8, 5)).astype(np.float32), "m")]
    nodes = [helper.make_node("Conv", ["x", "w0"], ["c0"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c0"], ["r0"]),
             helper.make_node("Conv", ["r0", "w1"], ["c1"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c1"], ["r1"]),
             helper.make_node("Reshape", ["r1", "shape"], ["flat"]),
             helper.make_node("MatMul", ["flat", "m"], ["y"])]
    if named:
        for i, node in enumerate(nodes):
            node.name = f"{node.op_type.lower()}_{i}"
    inits.append(numpy_helper.from_array(np.array([8, 8], np.int64), "shape"))
    graph = helper.make_graph(nodes, "twins", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 4, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [8, 5])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


@pytest.mark.parametrize("named", [True, False])
def test_alike_blocks_in_one_fused_function_each_name_their_nodes(tmp_path: Path, named: bool) -> None:
    model = _twin_blocks(named)
    kernels = _kernels(tmp_path, model)
    labels = [n.name or f"{n.op_type}#{i}" for i, n in enumerate(model.graph.node)]
    conv_relu = [k for k in kernels.values() if labels[0] in k["nodes"]]
    assert len(conv_relu) == 1 and conv_relu[0]["nodes"] == labels[:4], kernels  # both blocks, one kernel
    assert conv_relu[0]["macs"] == 2 * 4 * 4 * 4 * 4 * 3 * 3
    matmul = next(k for k in kernels.values() if labels[5] in k["nodes"])
    assert matmul["macs"] == 8 * 8 * 5
    assert sorted(n for k in kernels.values() for n in k["nodes"]) == sorted(labels)


# What a CPU kernel that names a node of this op type computes (TVM's op in the kernel's name).
OP_IN_KERNEL = {"AveragePool": "avg_pool2d", "GlobalAveragePool": "mean", "Softmax": "softmax", "Sum": "add",
                "Concat": "concatenate"}


@pytest.mark.parametrize("pre_process", [True, False])
def test_on_an_accelerator_the_cpu_kernels_name_only_the_nodes_they_compute(tmp_path: Path,
                                                                            pre_process: bool) -> None:
    """The int8 sample CNN on gemmini, through every offload rewrite (composites, layout sinking,
    residual adds, lookups; without onnxruntime's pre-processing, BatchNorm's per-channel tables):
    the accelerator kernels are the offload report's, each also naming the quantizes, dequantizes
    and activation its layer absorbed; a CPU kernel that names a node computes that node's op; no
    offloaded node is also on the CPU."""
    onnx.save(samples.cnn(softmax=True), str(tmp_path / "cnn.onnx"))
    quantize_model(tmp_path / "cnn.onnx", tmp_path / "cnn.int8.onnx", load_target("gemmini"), random_n=4,
                   pre_process=pre_process)
    model = onnx.load(str(tmp_path / "cnn.int8.onnx"))
    kernels = _kernels(tmp_path, tmp_path / "cnn.int8.onnx", "gemmini")
    report = json.loads((tmp_path / "b" / "02-relax" / "offload.json").read_text())
    offloaded = {e["node"] for e in report["nodes"] if e["where"] == "accelerator"}
    on_accelerator = {n for k, v in kernels.items() if k.startswith("accel_") for n in v["nodes"]}
    assert offloaded and offloaded <= on_accelerator
    op_type = {n.name: n.op_type for n in model.graph.node}
    absorbed = {op_type[n] for n in on_accelerator - offloaded}
    assert {"QuantizeLinear", "DequantizeLinear"} <= absorbed <= {"QuantizeLinear", "DequantizeLinear", "Relu",
                                                                 "Clip"}, absorbed
    cpu = {k: v for k, v in kernels.items() if not k.startswith("accel_")}
    assert sum(len(v["nodes"]) for v in cpu.values()) >= 10, cpu
    lookups = [w for k, w in cpu.items() if "channel_lookup" in k]  # (or fused into its consumer)
    assert bool(lookups) == (not pre_process) and all(w["nodes"] for w in lookups), cpu
    for kernel, work in cpu.items():
        assert not offloaded & set(work["nodes"]), (kernel, work)
        for node in work["nodes"]:
            op = OP_IN_KERNEL.get(op_type[node])
            assert op is None or op in kernel, (kernel, node)


def test_keys_stay_small_through_results_used_twice() -> None:
    """DenseNet concatenates each block's output with what is computed from it: a key made of its
    arguments' keys doubled at every such step (2^60 leaves to hash here); one small key per
    distinct expression stays flat."""
    from tvm import relax

    from tvmx.stages.provenance import _evaluate

    bb = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType((1, 4), "float32"))
    with bb.function("main", [x]):
        with bb.dataflow():
            v = x
            for _ in range(60):
                v = bb.emit(relax.op.add(v, v))
            out = bb.emit_output(v)
        bb.emit_func_output(out)
    bindings = [b for block in bb.get()["main"].body.blocks for b in block.bindings]
    env: dict = {}
    assert _evaluate({("var", "nothing"): "n0__y"}, bindings, env) == []
    assert len(repr(env[bindings[-1].var])) < 40
