"""The graph stage's offload decisions, checked on real QDQ models without running them."""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest

from tvmx import samples
from tvmx.offload.channel_tables import channel_tables
from tvmx.offload.partition import partition
from tvmx.quantize import quantize_model
from tvmx.target import load_target

FUNCTIONS = {"matmul": "tiled_matmul_auto", "conv2d": "tiled_conv_grouped_auto", "add": "tiled_resadd_auto"}


def _partition(path: Path) -> tuple[object, object]:
    from tvm.relax.frontend.onnx import from_onnx

    model = onnx.load(str(path))
    mod = channel_tables(from_onnx(model, keep_params_in_input=False))  # as the graph stage runs it first
    return partition(mod, model, "gemmini", FUNCTIONS, 16)


@pytest.fixture(scope="module")
def quantized(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("qdq")
    out = {}
    for name, build in (("mlp", samples.mlp), ("dwsep", samples.dwsep), ("cnn", samples.cnn)):
        src = folder / f"{name}.onnx"
        onnx.save(build(softmax=False), str(src))
        out[name] = folder / f"{name}.int8.onnx"
        quantize_model(src, out[name], load_target("gemmini"), random_n=2)
        out[f"{name}-float"] = src
    src = folder / "mlp.onnx"
    out["mlp-per-channel"] = folder / "mlp.pc.onnx"
    quantize_model(src, out["mlp-per-channel"], None, random_n=2, per_channel=True)
    return out


def test_every_mlp_layer_is_offloaded_with_fused_relu(quantized: dict[str, Path]) -> None:
    mod, report = _partition(quantized["mlp"])
    entries = report.entries  # type: ignore[attr-defined]
    assert [e.where for e in entries] == ["accelerator"] * 3
    assert {e.op_type for e in entries} <= {"Gemm", "MatMul"}
    assert "relu" in entries[0].reason and "relu" not in entries[2].reason
    text = mod["main"].script()  # type: ignore[index]
    assert text.count("R.call_tir(accel_matmul_") == 3
    assert "R.nn.relu" not in text and "R.matmul" not in text  # fused into the accelerator calls


def test_depthwise_and_grouped_convs_are_offloaded(quantized: dict[str, Path]) -> None:
    _, report = _partition(quantized["dwsep"])
    convs = [e for e in report.entries if e.op_type == "Conv"]  # type: ignore[attr-defined]
    assert all(e.where == "accelerator" for e in convs), [(e.node, e.reason) for e in convs]
    kinds = [e.reason.split(" + ")[0] for e in convs]
    assert kinds.count("int8 depthwise conv2d") == 3 and kinds.count("int8 grouped conv2d (groups=4)") == 1
    (add,) = [e for e in report.entries if e.op_type == "Add"]  # type: ignore[attr-defined]
    assert add.where == "accelerator"


def test_float_model_offloads_nothing(quantized: dict[str, Path]) -> None:
    _, report = _partition(quantized["mlp-float"])
    assert report.offloaded == 0  # type: ignore[attr-defined]
    assert all("tvmx quantize" in e.reason for e in report.entries)  # type: ignore[attr-defined]


def test_per_channel_weights_are_refused_with_a_reason(quantized: dict[str, Path]) -> None:
    _, report = _partition(quantized["mlp-per-channel"])
    assert report.offloaded == 0  # type: ignore[attr-defined]
    assert all("per-channel weight" in e.reason for e in report.entries)  # type: ignore[attr-defined]


def test_layout_transforms_cancel(quantized: dict[str, Path]) -> None:
    mod, report = _partition(quantized["cnn"])
    text = mod["main"].script()  # type: ignore[index]
    convs = text.count("R.call_tir(accel_conv2d_")
    assert convs == 8
    # without sinking, every offloaded conv has two transposes around it
    assert report.layout_transforms == text.count("R.permute_dims(")  # type: ignore[attr-defined]
    assert report.layout_transforms < 2 * convs  # type: ignore[attr-defined]


def test_residual_add_with_relu_goes_to_the_accelerator(quantized: dict[str, Path]) -> None:
    mod, report = _partition(quantized["cnn"])
    adds = [e for e in report.entries if e.op_type == "Add"]  # type: ignore[attr-defined]
    assert [(e.where, e.reason, e.kernel) for e in adds] == [("accelerator", "int8 residual add + relu",
                                                              "accel_add_0")]
    text = mod["main"].script()  # type: ignore[index]
    call = next(line for line in text.splitlines() if "R.call_tir(accel_add_0" in line)
    assert "(1, 16, 16, 16)" in call  # NHWC operands, straight from the accelerator convs
    assert "R.nn.relu(" not in text
    (sum_entry,) = [e for e in report.entries if e.op_type == "Sum"]  # type: ignore[attr-defined]
    assert sum_entry.where == "cpu" and sum_entry.reason.startswith("Sum of 3 tensors: 2 float adds")
    sum_adds = [line for line in text.splitlines() if "R.add(" in line]  # the Sum's, left to right, in NHWC
    assert len(sum_adds) == 2 and all("(1, 16, 16, 16)" in line for line in sum_adds), sum_adds


def test_maxpool_after_a_conv_is_fused_into_its_mvout(quantized: dict[str, Path]) -> None:
    mod, report = _partition(quantized["cnn"])
    entries = report.entries  # type: ignore[attr-defined]
    (pool,) = [e for e in entries if e.op_type == "MaxPool"]
    conv = next(e for e in entries if e.kernel == pool.kernel and e.op_type == "Conv")
    assert pool.where == "accelerator" and conv.reason.endswith("+ maxpool 2x2/2")
    text = mod["main"].script()  # type: ignore[index]
    assert "max_pool2d" not in text


@pytest.mark.parametrize(("image", "where"), [(68, "cpu"), (64, "accelerator")])
def test_a_conv_no_tiling_fits_stays_on_the_cpu(tmp_path: Path, image: int, where: str) -> None:
    """A 64x64 kernel: the weights of one block for every tap overflow the scratchpad. At one output
    pixel its im2col input matrix (1 x 16384 bytes) fits the pack buffer, and it runs as a matmul;
    at 5 x 5 (25 x 16384) that does not fit either, and it stays on the CPU."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    from tvmx.accelerators.gemmini import Gemmini
    from tvmx.toolchain.command import Executor

    w = numpy_helper.from_array(np.random.default_rng(0).standard_normal((4, 4, 64, 64)).astype(np.float32), "w")
    out = image - 63
    graph = helper.make_graph([helper.make_node("Conv", ["x", "w"], ["y"], name="huge")], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, image, image])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, out, out])], [w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(tmp_path / "huge.onnx"))
    target = load_target("gemmini")
    quantize_model(tmp_path / "huge.onnx", tmp_path / "huge.int8.onnx", target, random_n=1)
    gemmini = Gemmini.from_target(target)

    def unsupported(op: str, sizes: dict[str, int]) -> str | None:
        return gemmini.unsupported_layer(op, sizes, Executor())

    from tvm.relax.frontend.onnx import from_onnx

    qdq = onnx.load(str(tmp_path / "huge.int8.onnx"))
    _, report = partition(from_onnx(qdq, keep_params_in_input=False), qdq, "gemmini", FUNCTIONS, 16, unsupported)
    (entry,) = report.entries  # type: ignore[attr-defined]
    assert entry.where == where
    if where == "cpu":
        assert entry.reason == "no tiling of this conv fits the scratchpad and accumulator"


@pytest.fixture(scope="module")
def as_is(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The attention block and the CNN quantized as quantize_static alone does (no pre-processing)."""
    folder = tmp_path_factory.mktemp("qdq-as-is")
    out = {}
    for name, build in (("attention", samples.attention), ("cnn", lambda: samples.cnn(softmax=False))):
        src = folder / f"{name}.onnx"
        onnx.save(build(), str(src))
        out[name] = folder / f"{name}.int8.onnx"
        quantize_model(src, out[name], load_target("gemmini"), random_n=2, pre_process=False)
    return out


def test_attention_matmuls_of_two_activations_go_to_the_accelerator(as_is: dict[str, Path]) -> None:
    mod, report = _partition(as_is["attention"])
    entries = report.entries  # type: ignore[attr-defined]
    activations = [e for e in entries if e.reason == "int8 matmul of two activations"]
    assert len(activations) == 2 and all(e.where == "accelerator" and e.macs == 32 * 32 * 64 for e in activations)
    assert all(e.where == "accelerator" for e in entries), [(e.node, e.reason) for e in entries]
    text = mod["main"].script()  # type: ignore[index]
    assert "R.matmul" not in text and text.count("R.call_tir(accel_amatmul_") == 2


def test_a_batched_matmul_of_two_activations_says_why_it_stays(tmp_path: Path) -> None:
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("MatMul", ["a", "b"], ["y"])], "g",
                              [helper.make_tensor_value_info("a", TensorProto.FLOAT, [2, 8, 16]),
                               helper.make_tensor_value_info("b", TensorProto.FLOAT, [2, 16, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 8, 8])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(tmp_path / "m.onnx"))
    quantize_model(tmp_path / "m.onnx", tmp_path / "m.int8.onnx", load_target("gemmini"), random_n=2)
    _, report = _partition(tmp_path / "m.int8.onnx")
    (entry,) = report.entries  # type: ignore[attr-defined]
    assert entry.where == "cpu" and entry.reason.startswith("matmul of two int8 activations: batched matmul")


def test_batch_norms_quantized_as_is_become_lookups_and_the_maxpool_joins_the_conv(as_is: dict[str, Path]) -> None:
    mod, report = _partition(as_is["cnn"])
    entries = report.entries  # type: ignore[attr-defined]
    assert all(e.where == "accelerator" for e in entries if e.op_type in ("Conv", "MaxPool", "Add", "Gemm")), \
        [(e.node, e.reason) for e in entries]
    assert report.layout_transforms <= 6  # type: ignore[attr-defined]
    text = mod["main"].script()  # type: ignore[index]
    assert "batch_norm" not in text and text.count("R.take(") == 5  # 5 BatchNorms, 3 with their ReLU
