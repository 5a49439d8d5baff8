"""Fuzzing the three readers of user files with hypothesis: whatever the bytes, the ONNX loader (and
the import stage), the target loader and the .npz input reader end in a result or a TvmxError, never
in another exception.

`make test` runs 60 examples per test, derandomized (the same ones every run: CI is deterministic);
`make fuzz` runs TVMX_FUZZ_EXAMPLES per test (default 5000), randomized (TVMX_FUZZ_RANDOM=1): a
failure prints the example and how to reproduce it.
"""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
import yaml
from helpers import relu_add_model
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from onnx import TensorProto, helper, numpy_helper

from tvmx.build.builddir import BuildDir
from tvmx.errors import TvmxError
from tvmx.options import Options
from tvmx.run.runner import load_inputs
from tvmx.stages import import_onnx
from tvmx.stages.context import StageContext
from tvmx.target import load_target
from tvmx.target.data import targets_dir
from tvmx.target.loader import read_target_data
from tvmx.toolchain.command import Executor

FUZZ_EXAMPLES = int(os.environ.get("TVMX_FUZZ_EXAMPLES", "60"))
FUZZ = settings(max_examples=FUZZ_EXAMPLES, derandomize=os.environ.get("TVMX_FUZZ_RANDOM") != "1", database=None,
                deadline=None, print_blob=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
COUNTS: dict[str, dict[str, int]] = {}


def counted(name: str, outcome: str = "run") -> None:
    """Tally per fuzz test: the cases run and how far they got (printed at the end of the module)."""
    tally = COUNTS.setdefault(name, {})
    tally[outcome] = tally.get(outcome, 0) + 1


def survives(call: Callable[[], Any]) -> bool:
    """True on success, False on a TvmxError; any other exception fails the test."""
    try:
        call()
    except TvmxError as exc:
        assert exc.message and "\n" not in exc.message.strip(), repr(exc.message)
        return False
    return True


# --- byte mutations ---------------------------------------------------------------------------

@st.composite
def mutated(draw: st.DrawFn, seeds: list[bytes]) -> bytes:
    """One of `seeds` after 1..8 edits: bytes replaced, bit flips, insertions, deletions, a cut, a
    repeated slice. Small seeds keep most edits in the structure rather than in weight data."""
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, 8))):
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        op = draw(st.sampled_from(["set", "flip", "insert", "delete", "cut", "repeat"]))
        if op == "set" and data:
            data[at] = draw(st.integers(0, 255))
        elif op == "flip" and data:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif op == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif op == "delete":
            del data[at:at + draw(st.integers(1, 8))]
        elif op == "cut":
            del data[at:]
        elif op == "repeat":
            data[at:at] = data[at:at + draw(st.integers(1, 16))]
    return bytes(data)


# --- ONNX ---------------------------------------------------------------------------------------

def conv_gemm_model() -> onnx.ModelProto:
    """Conv -> Relu -> Flatten -> Gemm on a 1x2x4x4 input, with tiny weights."""
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.standard_normal(s).astype(np.float32), n)
             for n, s in (("w", (2, 2, 3, 3)), ("b", (2,)), ("g", (3, 32)), ("gb", (3,)))]
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], name="conv", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"], name="relu"),
             helper.make_node("Flatten", ["r"], ["f"], name="flat"),
             helper.make_node("Gemm", ["f", "g", "gb"], ["y"], name="gemm", transB=1)]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 4, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def onnx_seeds() -> list[bytes]:
    relu_add = relu_add_model([1, 4])
    relu_add.ir_version = 8
    return [relu_add.SerializeToString(), conv_gemm_model().SerializeToString()]


ONNX_SEEDS = onnx_seeds()


def import_stage(path: Path, build: Path) -> None:
    """Stage 1 as `tvmx compile` runs it: load, check, TVM's importer, module.py."""
    folder = BuildDir(build)
    folder.start({}, {})
    ctx = StageContext(path, load_target("rv64gc"), Options(), folder, Executor(folder.commands_log))
    import_onnx.run(ctx, None)


def test_seeds_import() -> None:
    """The unmutated seeds import: the fuzzing starts from models that get past every check."""
    with tempfile.TemporaryDirectory() as tmp:
        for i, data in enumerate(ONNX_SEEDS):
            path = Path(tmp) / f"{i}.onnx"
            path.write_bytes(data)
            import_stage(path, Path(tmp) / f"b{i}")


def load_and_import(name: str, data: bytes) -> None:
    counted(name)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "m.onnx"
        path.write_bytes(data)
        if survives(lambda: import_onnx.load_onnx(path)):
            counted(name, "loaded")
            if survives(lambda: import_stage(path, Path(tmp) / "b")):
                counted(name, "imported")


@FUZZ
@given(data=mutated(ONNX_SEEDS))
def test_fuzz_onnx_bytes(data: bytes) -> None:
    load_and_import("onnx bytes", data)


OPS = ["Relu", "Add", "Conv", "MatMul", "Gemm", "Flatten", "Reshape", "Softmax", "Transpose", "Identity",
       "MaxPool", "Concat", "If", "Loop", "Frobnicate"]
ATTRS = ["kernel_shape", "pads", "strides", "axis", "transB", "group", "perm", "then_branch"]
names = st.sampled_from(["x", "y", "r", "c", "w", "b", "f", "g", "", "\u00e9"])


def _edit_value(draw: st.DrawFn, value: onnx.ValueInfoProto) -> None:
    ttype = value.type.tensor_type
    if draw(st.booleans()):
        ttype.elem_type = draw(st.integers(0, 26))
    elif ttype.shape.dim:
        dim = ttype.shape.dim[draw(st.integers(0, len(ttype.shape.dim) - 1))]
        if draw(st.booleans()):
            dim.dim_value = draw(st.integers(-2, 6))
        else:
            dim.dim_param = draw(st.sampled_from(["n", "", "batch"]))
    else:
        ttype.shape.dim.add().dim_value = draw(st.integers(-1, 4))


def _edit_node(draw: st.DrawFn, node: onnx.NodeProto) -> None:
    what = draw(st.sampled_from(["op", "input", "output", "attr", "domain"]))
    if what == "op":
        node.op_type = draw(st.sampled_from(OPS))
    elif what == "input" and node.input:
        node.input[draw(st.integers(0, len(node.input) - 1))] = draw(names)
    elif what == "output" and node.output:
        node.output[0] = draw(names)
    elif what == "domain":
        node.domain = draw(st.sampled_from(["", "ai.onnx", "com.microsoft", "ai.onnx.ml"]))
    else:
        value = draw(st.integers(-3, 5) | st.lists(st.integers(-2, 5), min_size=1, max_size=5) | st.floats()
                     | st.text(max_size=4))
        del node.attribute[:]
        node.attribute.append(helper.make_attribute(draw(st.sampled_from(ATTRS)), value))


@st.composite
def edited_model(draw: st.DrawFn) -> bytes:
    """A seed model with 1..3 structural edits (shapes, dtypes, ops, wiring, attributes, opsets,
    initializers): valid protobuf, so the edits reach the checker, the shape rules and TVM's importer."""
    model = onnx.ModelProto.FromString(draw(st.sampled_from(ONNX_SEEDS)))
    graph = model.graph
    for _ in range(draw(st.integers(1, 3))):
        what = draw(st.sampled_from(["input", "output", "node", "node", "drop_node", "drop_init", "opset", "ir"]))
        if what in ("input", "output"):
            values = graph.input if what == "input" else graph.output
            _edit_value(draw, values[draw(st.integers(0, len(values) - 1))])
        elif what == "node" and graph.node:
            _edit_node(draw, graph.node[draw(st.integers(0, len(graph.node) - 1))])
        elif what == "drop_node" and graph.node:
            del graph.node[draw(st.integers(0, len(graph.node) - 1))]
        elif what == "drop_init" and graph.initializer:
            del graph.initializer[draw(st.integers(0, len(graph.initializer) - 1))]
        elif what == "opset":
            model.opset_import[0].version = draw(st.integers(0, 40))
        elif what == "ir":
            model.ir_version = draw(st.integers(0, 15))
    return model.SerializeToString()


@FUZZ
@given(data=edited_model())
def test_fuzz_onnx_structure(data: bytes) -> None:
    load_and_import("onnx structure", data)


# --- targets ------------------------------------------------------------------------------------

TARGET_TEXTS = [(targets_dir() / f"{name}.yaml").read_text() for name in ("rv64gc", "gemmini")]
TARGET_DATA = [yaml.safe_load(text) for text in TARGET_TEXTS]


def load_target_text(name: str, text: str | bytes) -> None:
    counted(name)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "t.yaml"
        path.write_bytes(text.encode() if isinstance(text, str) else text)
        if survives(lambda: read_target_data(path)) and survives(lambda: load_target(path)):
            counted(name, "valid")


@FUZZ
@given(data=mutated([t.encode() for t in TARGET_TEXTS]))
def test_fuzz_target_yaml_bytes(data: bytes) -> None:
    load_target_text("target bytes", data)


scalars = (st.none() | st.booleans() | st.integers(-2**40, 2**40) | st.floats(allow_nan=True)
           | st.text(max_size=12) | st.sampled_from(["rv64gc", "lp64d", "gemmini", "int8", "ws", "../x", "/etc"]))
structures = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                          | st.dictionaries(st.text(max_size=8) | st.integers(0, 3), inner, max_size=4), max_leaves=12)


@FUZZ
@given(data=structures)
def test_fuzz_target_random_structure(data: object) -> None:
    load_target_text("target structure", yaml.safe_dump(data))


def paths_of(value: object, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key path into a parsed target (the places a mutation may hit)."""
    out = [prefix] if prefix else []
    if isinstance(value, dict):
        for k, v in value.items():
            out += paths_of(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += paths_of(v, (*prefix, i))
    return out


@st.composite
def mutated_target(draw: st.DrawFn) -> dict[str, Any]:
    """A shipped target with 1..3 values replaced by random structures or deleted: mostly past the
    schema, so the semantic checks and the typed model get the odd values."""
    data = yaml.safe_load(yaml.safe_dump(draw(st.sampled_from(TARGET_DATA))))
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(paths_of(data)))
        parent: Any = data
        for key in path[:-1]:
            parent = parent[key]
        try:
            if draw(st.booleans()) and isinstance(parent, dict):
                del parent[path[-1]]
            else:
                parent[path[-1]] = draw(structures)
        except (KeyError, IndexError, TypeError):  # an earlier edit removed or replaced this place
            pass
    return data  # type: ignore[no-any-return]


@FUZZ
@given(data=mutated_target())
def test_fuzz_target_mutated_values(data: dict[str, Any]) -> None:
    load_target_text("target values", yaml.safe_dump(data))


# --- .npz inputs --------------------------------------------------------------------------------

IO = {"inputs": [{"name": "x", "shape": [1, 4], "dtype": "float32", "symbol": "in_x"},
                 {"name": "q", "shape": [2], "dtype": "int8", "symbol": "in_q"}]}
dtypes = hnp.scalar_dtypes() | hnp.byte_string_dtypes() | hnp.unicode_string_dtypes()
arrays = hnp.arrays(dtypes, hnp.array_shapes(min_dims=0, max_dims=3, max_side=4))
numeric = hnp.integer_dtypes() | hnp.unsigned_integer_dtypes() | hnp.floating_dtypes() | hnp.boolean_dtypes()
named_arrays = st.dictionaries(st.sampled_from(["x", "q", "y", "x.npy", "arr_0"]), arrays, max_size=3) | \
    st.fixed_dictionaries(  # the model's names, often its shapes, any numeric dtype: the accepting path too
        {"x": hnp.arrays(numeric, st.just((1, 4)) | hnp.array_shapes(max_dims=3, max_side=4)),
         "q": hnp.arrays(numeric, st.just((2,)) | hnp.array_shapes(max_dims=2, max_side=3))},
        optional={"y": arrays})


def npz_bytes(values: dict[str, np.ndarray], compressed: bool) -> bytes:
    buf = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(buf, **values)  # type: ignore[operator]
    return buf.getvalue()


NPZ_SEEDS = [npz_bytes({"x": np.ones((1, 4), np.float32), "q": np.arange(2, dtype=np.int8)}, c) for c in (False, True)]


def load_npz_bytes(name: str, data: bytes) -> None:
    counted(name)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "in.npz"
        path.write_bytes(data)
        if survives(lambda: load_inputs(IO, path, None)):
            counted(name, "accepted")
            arrays = load_inputs(IO, path, None)
            assert {k: (list(v.shape), str(v.dtype)) for k, v in arrays.items()} == {
                s["name"]: (s["shape"], s["dtype"]) for s in IO["inputs"]}


@FUZZ
@given(values=named_arrays, compressed=st.booleans())
def test_fuzz_npz_arrays(values: dict[str, np.ndarray], compressed: bool) -> None:
    load_npz_bytes("npz arrays", npz_bytes(values, compressed))


@FUZZ
@given(data=mutated(NPZ_SEEDS))
def test_fuzz_npz_bytes(data: bytes) -> None:
    load_npz_bytes("npz bytes", data)


@pytest.fixture(scope="module", autouse=True)
def report_counts() -> Any:
    yield
    if COUNTS:
        total = sum(t["run"] for t in COUNTS.values())
        print(f"\nfuzz cases run: {total}")
        for name, tally in COUNTS.items():
            print(f"  {name}: " + ", ".join(f"{k} {v}" for k, v in tally.items()))
