"""Stage 2: numpy constant folding, and TVM's errors on a model as one error naming the node."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from tvmx.errors import UnsupportedError
from tvmx.options import make_options
from tvmx.pipeline import compile_model
from tvmx.stages.registry import find_stage
from tvmx.target import load_target

tvm = pytest.importorskip("tvm")
from tvm import relax  # noqa: E402

from tvmx.stages.graph import fold_constants  # noqa: E402


def _batch_norm_module() -> object:
    rng = np.random.default_rng(0)
    bb = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType((1, 8, 4, 4), "float32"))
    params = [relax.const(rng.standard_normal(8).astype(np.float32)) for _ in range(3)]
    var = relax.const(rng.uniform(0.1, 2.0, 8).astype(np.float32))
    with bb.function("main", [x]):
        with bb.dataflow():
            y = bb.emit(relax.op.nn.batch_norm(x, params[0], params[1], params[2], var, axis=1, epsilon=1e-5))
            out = bb.emit_output(relax.TupleGetItem(y, 0))
        bb.emit_func_output(out)
    return relax.transform.DecomposeOpsForInference()(bb.get())


def _constants(mod: object) -> list[np.ndarray]:
    found: list[np.ndarray] = []

    def visit(expr: object) -> None:
        if isinstance(expr, tvm.ir.Constant) and hasattr(expr.value, "numpy"):
            found.append(expr.value.numpy())

    relax.analysis.post_order_visit(mod["main"], visit)  # type: ignore[index]
    return sorted(found, key=lambda a: (a.shape, a.tobytes()))


def test_numpy_folding_is_bit_identical_to_tvms_fold_constant() -> None:
    """BatchNorm's statistics (expand_dims, add eps, sqrt) folded in numpy, as FoldConstant would."""
    mod = _batch_norm_module()
    ours = fold_constants(mod)
    theirs = relax.transform.FoldConstant()(relax.transform.LegalizeOps()(mod))
    ours_constants = [c for c in _constants(ours) if c.shape == (1, 8, 1, 1)]
    assert len(ours_constants) == 4  # mean, sqrt(var + eps), gamma, beta: all folded
    theirs_constants = [c for c in _constants(theirs) if c.shape == (1, 8, 1, 1)]
    assert len(ours_constants) == len(theirs_constants)
    for a, b in zip(ours_constants, theirs_constants, strict=True):
        assert a.dtype == b.dtype and np.array_equal(a.view(np.uint32), b.view(np.uint32))


def _model(path: Path, node: onnx.NodeProto, x_shape: list[int], out_type: int = TensorProto.FLOAT,
           inits: tuple[onnx.TensorProto, ...] = ()) -> Path:
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
                              [helper.make_tensor_value_info("y", out_type, x_shape)], list(inits))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def _relax_stage(model: Path, tmp_path: Path) -> None:
    compile_model(model, load_target("rv64gc"), make_options(), tmp_path / "b", compile_to=find_stage("relax"))


def test_a_legalization_assertion_names_the_node(tmp_path: Path) -> None:
    """A slope of shape [3] does not broadcast against [1, 3, 4, 4] (onnxruntime refuses it too);
    TVM's PReLU asserts: one error naming the node, no internal error."""
    slope = numpy_helper.from_array(np.array([0.1, 0.2, 0.3], np.float32), "slope")
    path = _model(tmp_path / "prelu.onnx", helper.make_node("PRelu", ["x", "slope"], ["y"], name="bad_prelu"),
                  [1, 3, 4, 4], inits=(slope,))
    with pytest.raises(UnsupportedError, match=r"cannot lower this model \(nn_prelu in node 'bad_prelu' \(PRelu\)"):
        _relax_stage(path, tmp_path)


def test_half_precision_is_refused_naming_the_node(tmp_path: Path) -> None:
    cast = helper.make_node("Cast", ["x"], ["y"], name="to_half", to=TensorProto.FLOAT16)
    path = _model(tmp_path / "half.onnx", cast, [2, 3], TensorProto.FLOAT16)
    with pytest.raises(UnsupportedError, match=r"float16 in node 'to_half' \(Cast\)") as info:
        _relax_stage(path, tmp_path)
    assert info.value.hint and "float32" in info.value.hint


def test_an_op_without_lowering_names_its_node(tmp_path: Path) -> None:
    axis = numpy_helper.from_array(np.array(1, np.int64), "axis")
    node = helper.make_node("CumSum", ["x", "axis"], ["y"], name="running_total")
    with pytest.raises(UnsupportedError, match=r"relax.cumsum in node 'running_total' \(CumSum\)"):
        _relax_stage(_model(tmp_path / "cumsum.onnx", node, [2, 5], inits=(axis,)), tmp_path)
