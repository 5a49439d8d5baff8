"""Which ONNX operators tvmx compiles, runs and gets right: every op TVM 0.27's ONNX importer has a
converter for, each in a small generated model, compiled for a CPU target, run once on Spike and
compared with onnxruntime. Writes a markdown table (op, compiles, runs, matches, or the one-line
reason) and prints the counts.

    python benchmarks/coverage.py [-o docs/onnx_coverage.md] [--target rv64gc] [--only Abs,Conv]
"""

from __future__ import annotations

import argparse
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto as TP
from onnx import helper, numpy_helper

from tvmx.errors import GuestError, MismatchError, TvmxError
from tvmx.options import make_options
from tvmx.pipeline import compile_model
from tvmx.target import load_target
from tvmx.verify.flow import verify_model

IR_VERSION = 10  # opsets up to 21; onnxruntime 1.31 reads IR versions up to 13
MS = "com.microsoft"
RNG = np.random.default_rng(0)

Input = tuple[str, list[int], int]  # graph input: name, shape, ONNX element type


@dataclass
class Case:
    """A one-op (or a few-op) model: graph inputs, initializers, nodes, outputs, opset."""

    nodes: list[onnx.NodeProto]
    inputs: list[Input]
    outputs: list[str]
    inits: dict[str, np.ndarray]
    opset: int = 17
    domain: str = ""
    out_type: int = TP.FLOAT  # for onnxruntime's look at outputs shape inference cannot type

    def model(self) -> onnx.ModelProto:
        graph = helper.make_graph(
            self.nodes, "coverage",
            [helper.make_tensor_value_info(n, t, s) for n, s, t in self.inputs],
            [helper.make_tensor_value_info(o, TP.UNDEFINED, None) for o in self.outputs],
            [numpy_helper.from_array(a, n) for n, a in self.inits.items()])
        opsets = [helper.make_opsetid("", self.opset)] + ([helper.make_opsetid(self.domain, 1)] if self.domain else [])
        model = helper.make_model(graph, opset_imports=opsets, producer_name="tvmx coverage")
        model.ir_version = IR_VERSION
        model = onnx.shape_inference.infer_shapes(model, strict_mode=False)
        _type_outputs(model, self.out_type)
        return model


def _type_outputs(model: onnx.ModelProto, out_type: int) -> None:
    """Declare the graph outputs with their types (the checker wants one): as shape inference found
    them, else (contrib and function ops) as onnxruntime computes them."""
    def typed(v: onnx.ValueInfoProto) -> bool:
        return v.type.tensor_type.elem_type != TP.UNDEFINED and v.type.tensor_type.HasField("shape")

    known = {v.name: v for v in [*model.graph.value_info, *model.graph.output] if typed(v)}
    for out in model.graph.output:
        if out.name in known:
            out.CopyFrom(known[out.name])
    untyped = [o for o in model.graph.output if not typed(o)]
    if not untyped:
        return
    import onnxruntime as ort

    for out in untyped:
        out.type.tensor_type.elem_type = out_type
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    feeds = {i.name: _random(i.shape, i.type) for i in session.get_inputs()}
    values = dict(zip([o.name for o in session.get_outputs()], session.run(None, feeds), strict=True))
    for out in untyped:
        value = np.asarray(values[out.name])
        out.CopyFrom(helper.make_tensor_value_info(out.name, helper.np_dtype_to_tensor_dtype(value.dtype),
                                                   list(value.shape)))


def _random(shape: list[Any], type_name: str) -> np.ndarray:
    dtype = {"tensor(float)": np.float32, "tensor(int32)": np.int32, "tensor(int64)": np.int64,
             "tensor(bool)": np.bool_, "tensor(uint8)": np.uint8, "tensor(int16)": np.int16}[type_name]
    return np.zeros([int(d) for d in shape], dtype)


def op(op_type: str, inputs: list[str], n_out: int = 1, *, domain: str = "", **attrs: Any) -> onnx.NodeProto:
    outs = ["y"] if n_out == 1 else [f"y{i}" for i in range(n_out)]
    return helper.make_node(op_type, inputs, outs, name=f"node_{op_type.lower()}", domain=domain, **attrs)


def unary(op_type: str, shape: list[int] | None = None, opset: int = 17, dtype: int = TP.FLOAT,
          **attrs: Any) -> Callable[[], Case]:
    return lambda: Case([op(op_type, ["x"], **attrs)], [("x", shape or [2, 3, 4], dtype)], ["y"], {}, opset)


def binary(op_type: str, shape_b: list[int] | None = None, dtype: int = TP.FLOAT, opset: int = 17,
           **attrs: Any) -> Callable[[], Case]:
    return lambda: Case([op(op_type, ["a", "b"], **attrs)],
                        [("a", [2, 3, 4], dtype), ("b", shape_b or [2, 3, 4], dtype)], ["y"], {}, opset)


def with_consts(op_type: str, x_shape: list[int], consts: dict[str, np.ndarray], n_out: int = 1, opset: int = 17,
                dtype: int = TP.FLOAT, domain: str = "", **attrs: Any) -> Callable[[], Case]:
    """x as the first input, then the named constants (an empty name skips an optional input)."""
    def build() -> Case:
        names = ["x", *consts]
        inits = {k: v for k, v in consts.items() if k}
        outs = ["y"] if n_out == 1 else [f"y{i}" for i in range(n_out)]
        return Case([op(op_type, names, n_out, domain=domain, **attrs)], [("x", x_shape, dtype)], outs, inits, opset,
                    domain)
    return build


def f32(*shape: int) -> np.ndarray:
    return RNG.standard_normal(shape).astype(np.float32)


def i64(*values: int) -> np.ndarray:
    return np.array(values, np.int64)


def chain(nodes: list[onnx.NodeProto], inputs: list[Input], inits: dict[str, np.ndarray] | None = None,
          opset: int = 17, outputs: list[str] | None = None) -> Callable[[], Case]:
    return lambda: Case(nodes, inputs, outputs or ["y"], inits or {}, opset)


X4 = [1, 3, 6, 6]  # NCHW
QUNARY = [
    "Abs", "Acos", "Acosh", "Asin", "Asinh", "Atan", "Atanh", "Ceil", "Cos", "Cosh", "Erf", "Exp", "Floor", "Log",
    "Neg", "Reciprocal", "Relu", "Round", "Sigmoid", "Sign", "Sin", "Sinh", "Softplus", "Softsign", "Sqrt", "Tan",
    "Tanh", "Elu", "Selu", "HardSwish", "Identity", "IsInf", "IsNaN"
]

CASES: dict[str, Callable[[], Case]] = {name: unary(name) for name in QUNARY}
CASES |= {
    "LeakyRelu": unary("LeakyRelu", alpha=0.1),
    "HardSigmoid": unary("HardSigmoid", alpha=0.2, beta=0.5),
    "ThresholdedRelu": unary("ThresholdedRelu", alpha=0.5),
    "Shrink": unary("Shrink", bias=0.1, lambd=0.5),
    "Gelu": unary("Gelu", opset=20),
    "Mish": unary("Mish", opset=18),
    "Softmax": unary("Softmax", axis=-1),
    "LogSoftmax": unary("LogSoftmax", axis=-1),
    "Hardmax": unary("Hardmax", axis=-1),
    "Not": unary("Not", dtype=TP.BOOL),
    "BitwiseNot": unary("BitwiseNot", dtype=TP.INT32, opset=18),
    "Dropout": unary("Dropout"),
    "Flatten": unary("Flatten", axis=1),
    "Transpose": unary("Transpose", perm=[2, 0, 1]),
    "Shape": unary("Shape"),
    "Size": unary("Size"),
    "NonZero": unary("NonZero"),
    "Unique": unary("Unique", shape=[8]),
    "ArgMax": unary("ArgMax", axis=1, keepdims=0),
    "ArgMin": unary("ArgMin", axis=2),
    "Cast": unary("Cast", to=TP.INT32),
    "EyeLike": unary("EyeLike", shape=[4, 5]),
    "LRN": unary("LRN", shape=X4, size=3, alpha=1e-3, beta=0.75, bias=1.0),
    "GlobalAveragePool": unary("GlobalAveragePool", shape=X4),
    "GlobalMaxPool": unary("GlobalMaxPool", shape=X4),
    "GlobalLpPool": unary("GlobalLpPool", shape=X4, p=2),
    "MaxPool": unary("MaxPool", shape=X4, kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
    "AveragePool": unary("AveragePool", shape=X4, kernel_shape=[3, 3], strides=[1, 1], pads=[1, 1, 1, 1]),
    "LpPool": unary("LpPool", shape=X4, kernel_shape=[2, 2], strides=[2, 2], p=2),
    "MeanVarianceNormalization": unary("MeanVarianceNormalization", shape=X4),
    "DepthToSpace": unary("DepthToSpace", shape=[1, 4, 3, 3], blocksize=2, mode="DCR"),
    "SpaceToDepth": unary("SpaceToDepth", shape=[1, 2, 4, 4], blocksize=2),
    "Trilu": unary("Trilu", shape=[4, 5], upper=1),
    "Add": binary("Add", [3, 4]), "Sub": binary("Sub"), "Mul": binary("Mul", [4]), "Div": binary("Div"),
    "Pow": binary("Pow", [1]), "Max": binary("Max"), "Min": binary("Min"), "Mean": binary("Mean"),
    "Sum": binary("Sum"), "Mod": binary("Mod", fmod=1),
    "Equal": binary("Equal", dtype=TP.INT32), "Greater": binary("Greater"), "GreaterOrEqual": binary("GreaterOrEqual"),
    "Less": binary("Less"), "LessOrEqual": binary("LessOrEqual"),
    "And": binary("And", dtype=TP.BOOL), "Or": binary("Or", dtype=TP.BOOL), "Xor": binary("Xor", dtype=TP.BOOL),
    "BitwiseAnd": binary("BitwiseAnd", dtype=TP.INT32, opset=18),
    "BitwiseOr": binary("BitwiseOr", dtype=TP.INT32, opset=18),
    "BitwiseXor": binary("BitwiseXor", dtype=TP.INT32, opset=18),
    "BitShift": lambda: Case([op("BitShift", ["x", "n"], direction="LEFT")], [("x", [2, 3, 4], TP.UINT8)], ["y"],
                             {"n": RNG.integers(0, 8, (2, 3, 4)).astype(np.uint8)}),  # shifts past 7 are undefined
    "PRelu": with_consts("PRelu", X4, {"slope": np.array([0.1, 0.2, 0.3], np.float32).reshape(3, 1, 1)}),
    "MatMul": with_consts("MatMul", [2, 3, 4], {"w": f32(4, 5)}),
    "Gemm": with_consts("Gemm", [2, 4], {"w": f32(5, 4), "c": f32(5)}, transB=1, alpha=0.5),
    "Einsum": with_consts("Einsum", [2, 3], {"w": f32(3, 4)}, equation="ij,jk->ik"),
    "Conv": with_consts("Conv", X4, {"w": f32(4, 3, 3, 3), "b": f32(4)}, pads=[1, 1, 1, 1]),
    "ConvTranspose": with_consts("ConvTranspose", X4, {"w": f32(3, 2, 3, 3)}, strides=[2, 2]),
    "BatchNormalization": with_consts("BatchNormalization", X4, {"s": f32(3), "bias": f32(3), "m": f32(3),
                                                                 "v": np.abs(f32(3)) + 0.5}),
    "InstanceNormalization": with_consts("InstanceNormalization", X4, {"s": f32(3), "b": f32(3)}),
    "LayerNormalization": with_consts("LayerNormalization", [2, 3, 4], {"s": f32(4), "b": f32(4)}, axis=-1),
    "GroupNormalization": with_consts("GroupNormalization", [1, 4, 3, 3], {"s": f32(4), "b": f32(4)}, num_groups=2,
                                      opset=21),
    "RMSNormalization": with_consts("RMSNormalization", [2, 3, 4], {"s": f32(4)}, axis=-1, opset=23),
    "Clip": with_consts("Clip", [2, 3, 4], {"lo": np.array(-0.5, np.float32), "hi": np.array(0.5, np.float32)}),
    "CastLike": with_consts("CastLike", [2, 3], {"like": np.zeros(1, np.float64)}),
    "Reshape": with_consts("Reshape", [2, 3, 4], {"shape": i64(4, -1)}),
    "Squeeze": with_consts("Squeeze", [2, 1, 4], {"axes": i64(1)}),
    "Unsqueeze": with_consts("Unsqueeze", [2, 4], {"axes": i64(0, 2)}),
    "Expand": with_consts("Expand", [3, 1], {"shape": i64(2, 3, 4)}),
    "Tile": with_consts("Tile", [2, 3], {"repeats": i64(2, 2)}),
    "Pad": with_consts("Pad", X4, {"pads": i64(0, 0, 1, 2, 0, 0, 2, 1)}, mode="reflect"),
    "Slice": with_consts("Slice", [4, 6], {"starts": i64(1, 0), "ends": i64(3, 6), "axes": i64(0, 1),
                                           "steps": i64(1, 2)}),
    "Split": with_consts("Split", [2, 6], {"split": i64(2, 4)}, n_out=2, axis=1),
    "Gather": with_consts("Gather", [5, 3], {"idx": i64(4, 0, 2)}, axis=0),
    "GatherElements": with_consts("GatherElements", [3, 4], {"idx": np.array([[0, 3], [1, 2], [2, 0]], np.int64)},
                                  axis=1),
    "GatherND": with_consts("GatherND", [3, 4], {"idx": np.array([[0, 1], [2, 3]], np.int64)}),
    "ScatterElements": with_consts("ScatterElements", [3, 4], {"idx": np.array([[0], [2], [1]], np.int64),
                                                               "upd": f32(3, 1)}, axis=1),
    "Scatter": with_consts("Scatter", [3, 4], {"idx": np.array([[0], [2], [1]], np.int64), "upd": f32(3, 1)},
                           axis=1, opset=10),
    "ScatterND": with_consts("ScatterND", [4, 3], {"idx": np.array([[1], [3]], np.int64), "upd": f32(2, 3)}),
    "Compress": with_consts("Compress", [4, 3], {"cond": np.array([True, False, True, True])}, axis=0),
    "CumSum": with_consts("CumSum", [2, 5], {"axis": np.array(1, np.int64)}),
    "TopK": with_consts("TopK", [3, 6], {"k": i64(2)}, n_out=2, axis=1),
    "OneHot": with_consts("OneHot", [3], {"depth": np.array(4, np.int64), "values": np.array([0, 1], np.float32)},
                          dtype=TP.INT64),
    "Where": lambda: Case([op("Where", ["c", "a", "b"])], [("a", [2, 3], TP.FLOAT), ("b", [2, 3], TP.FLOAT)], ["y"],
                          {"c": np.array([[True, False, True], [False, True, False]])}),
    "Resize": with_consts("Resize", X4, {"": np.zeros(0, np.float32), "scales": np.array([1, 1, 2, 2], np.float32)},
                          mode="linear"),
    "Upsample": with_consts("Upsample", X4, {"scales": np.array([1, 1, 2, 2], np.float32)}, mode="nearest", opset=9),
    "GridSample": with_consts("GridSample", [1, 2, 4, 4], {"grid": np.clip(f32(1, 3, 3, 2), -1, 1)}, opset=16),
    "AffineGrid": lambda: Case([op("AffineGrid", ["theta", "size"], align_corners=0)], [("theta", [1, 2, 3], TP.FLOAT)],
                               ["y"], {"size": i64(1, 1, 3, 4)}, opset=20),
    "RoiAlign": with_consts("RoiAlign", [1, 2, 6, 6], {"rois": np.array([[0, 0, 4, 4], [1, 1, 5, 5]], np.float32),
                                                     "bi": i64(0, 0)}, output_height=2, output_width=2),
    "MaxRoiPool": with_consts("MaxRoiPool", [1, 2, 6, 6], {"rois": np.array([[0, 0, 0, 4, 4]], np.float32)},
                              pooled_shape=[2, 2]),
    "MaxUnpool": lambda: Case([op("MaxPool", ["x"], 2, kernel_shape=[2, 2], strides=[2, 2]),
                               helper.make_node("MaxUnpool", ["y0", "y1"], ["y"], kernel_shape=[2, 2], strides=[2, 2])],
                              [("x", [1, 1, 4, 4], TP.FLOAT)], ["y"], {}),
    "NonMaxSuppression": lambda: Case(
        [op("NonMaxSuppression", ["boxes", "scores", "k", "iou", "th"])], [("scores", [1, 1, 4], TP.FLOAT)], ["y"],
        {"boxes": np.array([[[0, 0, 1, 1], [0, 0.1, 1, 1.1], [0, 2, 1, 3], [0, 5, 1, 6]]], np.float32),
         "k": i64(2), "iou": np.array([0.5], np.float32), "th": np.array([-10.0], np.float32)}),
    "Concat": lambda: Case([op("Concat", ["a", "b"], axis=1)], [("a", [2, 3], TP.FLOAT), ("b", [2, 2], TP.FLOAT)],
                           ["y"], {}),
    "Range": lambda: Case([op("Range", ["s", "l", "d"])], [], ["y"],
                          {"s": np.array(1.0, np.float32), "l": np.array(7.0, np.float32),
                           "d": np.array(1.5, np.float32)}),
    "Constant": lambda: Case([helper.make_node("Constant", [], ["c"], value=numpy_helper.from_array(f32(2, 3))),
                              helper.make_node("Add", ["x", "c"], ["y"])], [("x", [2, 3], TP.FLOAT)], ["y"], {}),
    "ConstantOfShape": lambda: Case([helper.make_node("ConstantOfShape", ["s"], ["c"],
                                                      value=numpy_helper.from_array(np.array([2.5], np.float32))),
                                     helper.make_node("Add", ["x", "c"], ["y"])], [("x", [2, 3], TP.FLOAT)], ["y"],
                                    {"s": i64(2, 3)}),
    "ReduceSum": with_consts("ReduceSum", [2, 3, 4], {"axes": i64(1)}, keepdims=0),
    "QuantizeLinear": with_consts("QuantizeLinear", [2, 3], {"s": np.array(0.05, np.float32),
                                                            "z": np.array(3, np.int8)}),
    "DequantizeLinear": lambda: Case([op("DequantizeLinear", ["x", "s", "z"])], [("x", [2, 3], TP.INT8)], ["y"],
                                     {"s": np.array(0.05, np.float32), "z": np.array(-2, np.int8)}),
    "DynamicQuantizeLinear": lambda: Case([op("DynamicQuantizeLinear", ["x"], 3)], [("x", [2, 3], TP.FLOAT)],
                                          ["y0", "y1", "y2"], {}),
    "MatMulInteger": lambda: Case([op("MatMulInteger", ["a", "b"])], [("a", [2, 4], TP.UINT8)], ["y"],
                                  {"b": RNG.integers(0, 255, (4, 3)).astype(np.uint8)}),
    "SequenceConstruct": chain([helper.make_node("SequenceConstruct", ["a", "b"], ["s"]),
                                helper.make_node("SequenceAt", ["s", "i"], ["y"])],
                               [("a", [2, 3], TP.FLOAT), ("b", [2, 3], TP.FLOAT)], {"i": np.array(1, np.int64)}),
    "SplitToSequence": chain([helper.make_node("SplitToSequence", ["x"], ["s"], axis=1),
                              helper.make_node("ConcatFromSequence", ["s"], ["y"], axis=0)],
                             [("x", [2, 3], TP.FLOAT)]),
    "SequenceEmpty": chain([helper.make_node("SequenceEmpty", [], ["e"], dtype=TP.FLOAT),
                            helper.make_node("SequenceInsert", ["e", "x"], ["s"]),
                            helper.make_node("SequenceAt", ["s", "i"], ["y"])],
                           [("x", [2, 3], TP.FLOAT)], {"i": np.array(0, np.int64)}),
    "SequenceErase": chain([helper.make_node("SequenceConstruct", ["a", "b"], ["s"]),
                            helper.make_node("SequenceErase", ["s", "i"], ["t"]),
                            helper.make_node("SequenceAt", ["t", "i"], ["y"])],
                           [("a", [2, 3], TP.FLOAT), ("b", [2, 3], TP.FLOAT)], {"i": np.array(0, np.int64)}),
    "SequenceLength": chain([helper.make_node("SequenceConstruct", ["a", "b"], ["s"]),
                             helper.make_node("SequenceLength", ["s"], ["y"])],
                            [("a", [2, 3], TP.FLOAT), ("b", [2, 3], TP.FLOAT)]),
    "Optional": chain([helper.make_node("Optional", ["x"], ["o"]),
                       helper.make_node("OptionalGetElement", ["o"], ["y"])], [("x", [2, 3], TP.FLOAT)], opset=18),
    "OptionalHasElement": chain([helper.make_node("Optional", ["x"], ["o"]),
                                 helper.make_node("OptionalHasElement", ["o"], ["y"])], [("x", [2, 3], TP.FLOAT)],
                                opset=18),
    # onnxruntime's contrib ops (com.microsoft domain)
    "FastGelu": with_consts("FastGelu", [2, 4], {"bias": f32(4)}, domain=MS),
    "BiasGelu": with_consts("BiasGelu", [2, 4], {"bias": f32(4)}, domain=MS),
    "SkipLayerNormalization": with_consts("SkipLayerNormalization", [1, 2, 4], {"skip": f32(1, 2, 4),
                                                                               "g": f32(4), "b": f32(4)}, domain=MS),
    "Attention": with_consts("Attention", [1, 2, 4], {"w": f32(4, 12), "b": f32(12)}, domain=MS, num_heads=2),
    "EmbedLayerNormalization": lambda: Case(
        [helper.make_node("EmbedLayerNormalization", ["ids", "", "we", "pe", "", "g", "b"], ["y", "mask"],
                          domain=MS)],
        [("ids", [1, 3], TP.INT32)], ["y"], {"we": f32(8, 4), "pe": f32(3, 4), "g": f32(4), "b": f32(4)}, domain=MS),
    "MatMulInteger16": lambda: Case([op("MatMulInteger16", ["a", "b"], domain=MS)], [("a", [2, 4], TP.INT16)], ["y"],
                                    {"b": RNG.integers(-100, 100, (4, 3)).astype(np.int16)}, domain=MS,
                                    out_type=TP.INT32),
}
for _name in ("ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceMax", "ReduceMean", "ReduceMin",
              "ReduceProd", "ReduceSumSquare"):
    CASES[_name] = unary(_name, axes=[1], keepdims=1)
CASES["OptionalGetElement"] = CASES["Optional"]
CASES["SequenceAt"] = CASES["SequenceConstruct"]
CASES["SequenceInsert"] = CASES["SequenceEmpty"]
CASES["ConcatFromSequence"] = CASES["SplitToSequence"]


# In TVM's converter table but neither an ONNX nor an onnxruntime operator: no model to compare.
NOT_ONNX = {"AllClassNMS": "not an ONNX or onnxruntime operator (TVM's importer only): nothing to compare with"}


@dataclass
class Row:
    op: str
    compiles: bool
    runs: bool
    matches: bool
    reason: str


def one_line(text: str, limit: int = 160) -> str:
    line = " ".join(text.strip().split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def check(name: str, target_name: str, folder: Path) -> Row:
    """Compile, run and compare one op; a failure is the row's reason, never a crash of the script."""
    if name in NOT_ONNX:
        return Row(name, False, False, False, NOT_ONNX[name])
    target = load_target(target_name)
    path = folder / f"{name}.onnx"
    try:
        model = CASES[name]().model()
        onnx.save(model, str(path))
    except Exception as exc:  # the generated model itself is invalid: a bug in this table
        return Row(name, False, False, False, f"test model invalid: {one_line(str(exc))}")
    build = folder / f"{name}-build"
    try:
        compile_model(path, target, make_options(), build)
    except TvmxError as exc:
        return Row(name, False, False, False, one_line(exc.message))
    except Exception as exc:  # tvmx's own bug: the table says so; a run with -v gives the traceback
        return Row(name, False, False, False, f"INTERNAL ERROR {type(exc).__name__}: {one_line(str(exc))}")
    try:
        report = verify_model(path, target, make_options(), build, seed=1)
    except GuestError as exc:
        return Row(name, True, False, False, one_line(exc.message))
    except MismatchError as exc:
        return Row(name, True, True, False, one_line(exc.message))
    except TvmxError as exc:
        ran = (build / "run" / "stats.json").is_file()
        return Row(name, True, ran, False, one_line(exc.message))
    except Exception as exc:
        return Row(name, True, False, False, f"INTERNAL ERROR {type(exc).__name__}: {one_line(str(exc))}")
    ok = report.comparison.ok
    return Row(name, True, True, ok, "" if ok else one_line(report.comparison.summary()))


def converter_ops() -> list[str]:
    from tvm.relax.frontend.onnx.onnx_frontend import _get_convert_map

    return sorted(_get_convert_map())


def markdown(rows: list[Row], target: str, seconds: float) -> str:
    def mark(ok: bool) -> str:
        return "yes" if ok else "no"

    counts = (sum(r.compiles for r in rows), sum(r.runs for r in rows), sum(r.matches for r in rows))
    lines = [
        "# ONNX operator coverage",
        "",
        f"Every operator TVM 0.27's ONNX importer has a converter for ({len(rows)}), each in a small model "
        f"generated by `benchmarks/coverage.py` (`make coverage`), compiled by tvmx for `{target}`, run once on "
        "Spike and compared with onnxruntime (the target's tolerances: rtol 1e-4, atol 1e-5).",
        "",
        f"**{counts[0]} compile, {counts[1]} run, {counts[2]} match onnxruntime** (of {len(rows)}; "
        f"{seconds / 60:.1f} minutes on this machine).",
        "",
        "| op | compiles | runs | matches | reason |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        reason = r.reason.replace("|", "\\|")
        lines.append(f"| {r.op} | {mark(r.compiles)} | {mark(r.runs)} | {mark(r.matches)} | {reason} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", type=Path, default=Path("docs/onnx_coverage.md"))
    parser.add_argument("--target", default="rv64gc")
    parser.add_argument("--only", help="comma-separated ops (default: all the importer knows)")
    args = parser.parse_args()
    ops = args.only.split(",") if args.only else converter_ops()
    missing = [o for o in ops if o not in CASES and o not in NOT_ONNX]
    if missing:
        raise SystemExit(f"no test model for: {', '.join(missing)}")
    rows = []
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="tvmx-coverage-") as tmp:
        for name in ops:
            t0 = time.perf_counter()
            try:
                row = check(name, args.target, Path(tmp))
            except Exception:  # keep going; the traceback goes to the console
                traceback.print_exc()
                row = Row(name, False, False, False, "INTERNAL ERROR in the coverage script")
            rows.append(row)
            print(f"{name:<26} {'C' if row.compiles else '-'}{'R' if row.runs else '-'}{'M' if row.matches else '-'} "
                  f"{time.perf_counter() - t0:5.1f} s  {row.reason}", flush=True)
    seconds = time.perf_counter() - start
    if not args.only:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(markdown(rows, args.target, seconds))
        print(f"wrote {args.output}")
    print(f"{sum(r.compiles for r in rows)} compile, {sum(r.runs for r in rows)} run, "
          f"{sum(r.matches for r in rows)} match, of {len(rows)} ops ({seconds:.0f} s)")


if __name__ == "__main__":
    main()
