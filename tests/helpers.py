"""Small ONNX models for error-path tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx
from click.testing import CliRunner, Result
from onnx import TensorProto, helper, numpy_helper

from tvmx.cli import cli

DATA = Path(__file__).resolve().parent / "data"


def save(model: onnx.ModelProto, path: Path) -> Path:
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def single_op_model(op: str, shape: list[int | str] | None = None, domain: str = "",
                    **attrs: object) -> onnx.ModelProto:
    shape = shape or [1, 4]
    node = helper.make_node(op, ["x"], ["y"], name=f"my_{op.lower()}", domain=domain, **attrs)
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)])
    opsets = [helper.make_opsetid("", 17)] + ([helper.make_opsetid(domain, 1)] if domain else [])
    return helper.make_model(graph, opset_imports=opsets)


def relu_add_model(shape: list[int | str]) -> onnx.ModelProto:
    """y = relu(x) + c, with a dynamic-capable input shape."""
    c = numpy_helper.from_array(np.full([1, 4], 0.5, np.float32), "c")
    nodes = [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Add", ["r", "c"], ["y"])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)], [c])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def tvmx(*args: str) -> Result:
    """The command line, in-process (click's CliRunner)."""
    return CliRunner().invoke(cli, list(args))


def assert_error(result: Result, code: int, *fragments: str) -> None:
    """Exactly one `tvmx: error:` line (holding every fragment) plus a hint, the exit code, no traceback."""
    assert result.exit_code == code, result.output
    lines = result.stderr.splitlines()
    errors = [ln for ln in lines if ln.startswith("tvmx: error: ")]
    assert len(errors) == 1, result.stderr
    assert any(ln.startswith("  hint: ") for ln in lines), result.stderr
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in errors[0], errors[0]


def relax_main(make: Any, shape: tuple[int, ...], dtype: str = "int8") -> Any:
    """A Relax module whose main(x) returns make(block_builder, x), for an x of this shape and dtype."""
    from tvm import relax

    bb = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType(shape, dtype))
    with bb.function("main", [x]):
        with bb.dataflow():
            out = bb.emit_output(make(bb, x))
        bb.emit_func_output(out)
    return bb.get()


def run_relax(mod: Any, x: np.ndarray) -> np.ndarray:
    """main(x) of a Relax module, legalized and run on the host."""
    import tvm
    from tvm import relax

    vm = relax.VirtualMachine(tvm.compile(relax.transform.LegalizeOps()(mod), target="llvm"), tvm.cpu())
    return vm["main"](tvm.runtime.tensor(x)).numpy()  # type: ignore[no-any-return]
