from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from tvmx.options import make_options
from tvmx.quantize import quantize_model
from tvmx.target import load_target
from tvmx.tune.tasks import ACCELERATOR, CPU, model_tasks, select_kernels, structural_key


def test_tasks_are_the_distinct_kernels_with_their_calls(int8_models: dict[str, Path]) -> None:
    tasks = model_tasks(int8_models["cnn"], load_target("gemmini"), make_options())
    kinds = {t.kind for t in tasks}
    assert kinds == {ACCELERATOR, CPU}
    names = [k for t in tasks for k in t.kernels]
    assert len(names) == len(set(names))  # every kernel in exactly one task
    assert len({structural_key(t.workload) for t in tasks}) == len(tasks)
    # the CNN has two identical 3x3 convs (other scales): one workload, called twice
    shared = [t for t in tasks if len(t.kernels) > 1 and t.kind == ACCELERATOR]
    assert shared and all(t.calls == len(t.kernels) for t in shared)
    for t in tasks:
        assert 0 < t.n_inputs < len(t.args)
        if t.kind == ACCELERATOR:
            assert t.op in ("matmul", "conv2d", "add", "add3") and t.sizes


def _dense(scale: float, path: Path) -> Path:
    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.standard_normal((32, 16)).astype(np.float32) * scale, "w")
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, 32])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4, 16])], [w])
    src = path.with_suffix(".f32.onnx")
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(src))
    quantize_model(src, path, load_target("gemmini"), random_n=4, seed=int(scale))
    return path


def test_the_same_layer_in_another_model_is_the_same_workload(tmp_path: Path) -> None:
    """Other weights and scales change the numbers, not the cycles: the records are shared."""
    target = load_target("gemmini")
    a = [t for t in model_tasks(_dense(1.0, tmp_path / "a.onnx"), target, make_options()) if t.kind == ACCELERATOR]
    b = [t for t in model_tasks(_dense(3.0, tmp_path / "b.onnx"), target, make_options()) if t.kind == ACCELERATOR]
    assert len(a) == len(b) == 1
    assert structural_key(a[0].workload) == structural_key(b[0].workload)


def test_select_kernels_by_glob(int8_models: dict[str, Path]) -> None:
    import pytest

    from tvmx.errors import InputError

    tasks = model_tasks(int8_models["mlp"], load_target("gemmini"), make_options())
    chosen = select_kernels(tasks, "accel_*")
    assert chosen and all(t.kind == ACCELERATOR for t in chosen)
    with pytest.raises(InputError, match="matches no kernel"):
        select_kernels(tasks, "no_such_kernel*")
