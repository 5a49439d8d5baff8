"""Writes the binary half of the bad-input corpus (ONNX models and .npz inputs), each file with its
`.expect` sidecar (see tests/test_bad_inputs.py for the format). Deterministic: after changing a case,
run it again and commit what it writes:

    .venv/bin/python tests/data/bad/make_corpus.py
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = Path(__file__).resolve().parent
COMPILE = "compile {file} -t rv64gc -o {tmp}/b"
RUN = "run {build} --inputs {file}"


def relu_add(shape: list[int | str] | None = None, opset: int = 17, with_c: bool = True) -> onnx.ModelProto:
    """y = relu(x) + c: the valid model every ONNX case is a broken variant of."""
    shape = shape or [1, 4]
    c = numpy_helper.from_array(np.full([1, 4], 0.5, np.float32), "c")
    nodes = [helper.make_node("Relu", ["x"], ["r"], name="relu"),
             helper.make_node("Add", ["r", "c"], ["y"], name="add")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)], [c] if with_c else [])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model


def valid_bytes() -> bytes:
    return relu_add().SerializeToString()


def flipped(seed: int, count: int) -> bytes:
    """The valid model with `count` bytes at seeded places replaced by seeded values."""
    data = bytearray(valid_bytes())
    rng = np.random.default_rng(seed)
    for at in rng.choice(len(data), size=count, replace=False):
        data[int(at)] = int(rng.integers(0, 256))
    return bytes(data)


def non_utf8_name() -> bytes:
    """A node name that is not UTF-8 (protobuf strings must be): the bytes are patched after serialization."""
    model = relu_add()
    model.graph.node[0].name = "RELU"
    return model.SerializeToString().replace(b"RELU", b"\xff\xfe\xfd\xfc")


def unsupported_op() -> onnx.ModelProto:
    model = relu_add()
    model.graph.node[0].op_type = "Frobnicate"
    model.graph.node[0].domain = "com.example"
    model.opset_import.append(helper.make_opsetid("com.example", 1))
    return model


def cycle() -> onnx.ModelProto:
    """relu reads add's output, add reads relu's: no topological order exists."""
    model = relu_add()
    model.graph.node[0].input[0] = "y"
    model.graph.output[0].name = "r"
    return model


def external_data_missing() -> onnx.ModelProto:
    model = relu_add()
    c = model.graph.initializer[0]
    c.ClearField("raw_data")
    c.data_location = TensorProto.EXTERNAL
    c.external_data.add(key="location", value="missing_weights.bin")
    return model


def external_data_escapes() -> onnx.ModelProto:
    model = external_data_missing()
    model.graph.initializer[0].external_data[0].value = "../../../../../../etc/passwd"
    return model


def matmul_mismatch() -> onnx.ModelProto:
    """MatMul of [1,4] by [3,5]: the checker does not infer shapes, the importer must refuse it."""
    w = numpy_helper.from_array(np.ones([3, 5], np.float32), "w")
    node = helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 5])], [w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def zero_dim() -> onnx.ModelProto:
    return relu_add([0, 4])


def string_input() -> onnx.ModelProto:
    node = helper.make_node("Identity", ["x"], ["y"], name="id")
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.STRING, [1, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.STRING, [1, 4])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def ir_too_new() -> onnx.ModelProto:
    model = relu_add()
    model.ir_version = 99
    return model


def serialized(make: Callable[[], onnx.ModelProto]) -> Callable[[], bytes]:
    return lambda: make().SerializeToString()


# name -> (bytes, expected exit code, error fragments, why)
ONNX_CASES: dict[str, tuple[Callable[[], bytes], int, list[str], str]] = {
    "empty": (lambda: b"", 1, ["empty.onnx", "not an ONNX model"], "a file of zero bytes"),
    "not_onnx": (lambda: b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4, 1, ["not_onnx.onnx", "not an ONNX model"],
                 "a PNG header and binary noise"),
    "text": (lambda: b"graph { node: relu }\n", 1, ["text.onnx", "not an ONNX model"], "a text file"),
    "truncated": (lambda: valid_bytes()[:60], 1, ["truncated.onnx", "not an ONNX model"],
                  "the valid model cut in the middle of a field"),
    "corrupt_seed1": (lambda: flipped(1, 6), 1, ["corrupt_seed1.onnx"], "six bytes replaced (seed 1)"),
    "corrupt_seed2": (lambda: flipped(2, 6), 1, ["corrupt_seed2.onnx"], "six bytes replaced (seed 2)"),
    "corrupt_seed3": (lambda: flipped(3, 12), 1, ["corrupt_seed3.onnx"], "twelve bytes replaced (seed 3)"),
    "non_utf8_name": (non_utf8_name, 1, ["non_utf8_name.onnx", "not UTF-8"], "a node name that is not UTF-8"),
    "unsupported_op": (serialized(unsupported_op), 1, ["unsupported operator 'Frobnicate'", "node 'relu'"],
                       "an operator of an unknown domain"),
    "dynamic_shape": (serialized(lambda: relu_add(["batch", 4])), 1, ["input 'x' has a dynamic shape [batch,4]"],
                      "a symbolic batch dimension and no --input-shape"),
    "zero_dim": (serialized(zero_dim), 1, ["input 'x'", "0"], "an input dimension of size 0"),
    "missing_initializer": (serialized(lambda: relu_add(with_c=False)), 1,
                            ["missing_initializer.onnx", "'c'"], "Add reads 'c', which nothing defines"),
    "cycle": (serialized(cycle), 1, ["cycle.onnx", "invalid ONNX model"], "two nodes that read each other"),
    "opset_too_new": (serialized(lambda: relu_add(opset=99)), 1, ["opset_too_new.onnx", "opset 99"],
                      "default-domain opset 99"),
    "ir_too_new": (serialized(ir_too_new), 1, ["ir_too_new.onnx", "ir_version 99"], "ir_version 99"),
    "external_data_missing": (serialized(external_data_missing), 1, ["missing_weights.bin"],
                              "an initializer whose external data file does not exist"),
    "external_data_escapes": (serialized(external_data_escapes), 1, ["external_data_escapes.onnx", "etc/passwd"],
                              "external data outside the model's folder"),
    "matmul_mismatch": (serialized(matmul_mismatch), 1, ["rejected the model at operator MatMul", "reduction length"],
                        "MatMul of [1,4] by [3,5]"),
    "string_input": (serialized(string_input), 1, ["input 'x'", "string"], "a tensor of strings as input"),
}


def npz_bytes(**arrays: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)  # type: ignore[arg-type]
    return buf.getvalue()


def npy_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr)
    return buf.getvalue()


def bad_crc_npz() -> bytes:
    """A stored (uncompressed) zip whose member's data no longer matches its CRC."""
    data = bytearray(npz_bytes(x=np.full((1, 4), 3.0, np.float32)))
    at = data.rindex(b"\x00\x00\x40\x40")  # the last element (3.0f, little-endian)
    data[at + 3] ^= 0xFF
    return bytes(data)


def pickled_npz() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        member = zipfile.ZipInfo("x.npy", date_time=(1980, 1, 1, 0, 0, 0))  # no clock: the same bytes each run
        zf.writestr(member, npy_bytes(np.array([{"a": 1}], dtype=object)))
    return buf.getvalue()


X = np.zeros((1, 4), np.float32)
NPZ_CASES: dict[str, tuple[Callable[[], bytes], int, list[str], str]] = {
    "wrong_name": (lambda: npz_bytes(z=X), 1, ["wrong_name.npz", "no array named 'x'"], "the array is named z"),
    "wrong_shape": (lambda: npz_bytes(x=np.zeros((2, 4), np.float32)), 1, ["wrong_shape.npz", "[2, 4]", "[1, 4]"],
                    "x is 2x4, the model takes 1x4"),
    "wrong_rank": (lambda: npz_bytes(x=np.zeros(4, np.float32)), 1, ["wrong_rank.npz", "[4]", "[1, 4]"],
                   "x has rank 1"),
    "complex_dtype": (lambda: npz_bytes(x=np.zeros((1, 4), np.complex64)), 1, ["complex_dtype.npz", "complex64",
                                                                                "float32"], "x is complex"),
    "string_dtype": (lambda: npz_bytes(x=np.array([["a", "b", "c", "d"]])), 1, ["string_dtype.npz", "<U1",
                                                                                 "float32"], "x holds strings"),
    "object_dtype": (pickled_npz, 1, ["object_dtype.npz", "'x'"], "x is a pickled object array"),
    "not_npz": (lambda: b"x = 1, 2, 3, 4\n", 1, ["not_npz.npz", "not an .npz"], "a text file"),
    "npy_not_npz": (lambda: npy_bytes(X), 1, ["npy_not_npz.npz", "a single .npy array"], "one .npy array"),
    "truncated": (lambda: npz_bytes(x=X)[:100], 1, ["truncated.npz", "not an .npz"], "the archive cut short"),
    "bad_crc": (bad_crc_npz, 1, ["bad_crc.npz", "'x'"], "a member whose data fails its CRC"),
    "empty": (lambda: b"", 1, ["empty.npz", "not an .npz"], "zero bytes"),
}


def expect_text(args: str, code: int, errors: list[str], why: str, needs: str | None = None) -> str:
    lines = [f"# {why}", f"args: {args}", f"exit: {code}", *(f"error: {e}" for e in errors)]
    return "\n".join([*lines, *([f"needs: {needs}"] if needs else [])]) + "\n"


def corpus() -> dict[str, bytes]:
    """Relative path -> content of every file this script writes."""
    files: dict[str, bytes] = {}
    for folder, suffix, cases, args, needs in (("onnx", ".onnx", ONNX_CASES, COMPILE, None),
                                               ("npz", ".npz", NPZ_CASES, RUN, "toolchain")):
        for name, (make, code, errors, why) in cases.items():
            files[f"{folder}/{name}{suffix}"] = make()
            files[f"{folder}/{name}.expect"] = expect_text(args, code, errors, why, needs).encode()
    return files


def main() -> None:
    for rel, data in corpus().items():
        (HERE / rel).parent.mkdir(parents=True, exist_ok=True)
        (HERE / rel).write_bytes(data)


if __name__ == "__main__":
    main()
