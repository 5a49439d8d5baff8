"""Stage 1, import: ONNX file -> Relax IRModule, with every way the input can be bad caught up front."""

from __future__ import annotations

import contextlib
import io
import math
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from google.protobuf.message import DecodeError, Message
from onnx import external_data_helper

from tvmx.build.builddir import atomic_write
from tvmx.errors import InputError, UnsupportedError, one_line
from tvmx.stages.artifacts import ImportedModel, TensorSpec
from tvmx.stages.context import StageContext
from tvmx.stages.provenance import labelled, name_bindings, named_bindings, node_label


def load_onnx(path: Path) -> onnx.ModelProto:
    """Read and check a model; every way the file can be bad is an InputError naming it."""
    if not path.is_file():
        raise InputError(f"model file not found: {path}", hint="check the path")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except (DecodeError, ValueError, OSError, RuntimeError) as exc:
        raise InputError(f"{path}: not an ONNX model ({exc.__class__.__name__})",
                         hint="pass a .onnx file saved by onnx.save or a framework exporter") from exc
    where = _non_utf8_string(model)
    if where is not None:
        raise InputError(f"{path}: not a valid ONNX model: {where} is not UTF-8",
                         hint="the file is corrupt: export the model again")
    if not model.graph.node:
        raise InputError(f"{path}: not an ONNX model (empty graph)", hint="pass a .onnx file with a graph")
    _load_external_data(model, path)
    try:
        # By path: the checker reads the file in C++, rather than being handed the model serialized
        # again from Python (0.3 s of ResNet-50's 100 MB); the external data was checked just above.
        onnx.checker.check_model(str(path))
    except (onnx.checker.ValidationError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: invalid ONNX model: {one_line(str(exc).strip().splitlines()[0])}",
                         hint="run onnx.checker on the file") from exc
    _check_opsets(model, path)
    return model


def _non_utf8_string(msg: Message, where: str = "") -> str | None:
    """The first string field that did not decode as UTF-8 (protobuf then hands back bytes), as a
    field path like `graph.node[0].name`; None if every string is text."""
    for fd, value in msg.ListFields():
        if fd.type not in (fd.TYPE_STRING, fd.TYPE_MESSAGE):
            continue  # numbers and raw bytes (the bulk of a model) need no look
        items = list(value) if fd.is_repeated else [value]
        name = f"{where}.{fd.name}" if where else fd.name
        if fd.type == fd.TYPE_STRING:
            for i, item in enumerate(items):
                if isinstance(item, bytes):
                    return f"{name}[{i}]" if fd.is_repeated else name
        elif fd.type == fd.TYPE_MESSAGE:
            for i, item in enumerate(items):
                found = _non_utf8_string(item, f"{name}[{i}]" if fd.is_repeated else name)
                if found is not None:
                    return found
    return None


def _load_external_data(model: onnx.ModelProto, path: Path) -> None:
    """Initializers stored beside the model: each file must lie in the model's folder and exist."""
    folder = path.resolve().parent
    for tensor in _tensors(model.graph):
        if not external_data_helper.uses_external_data(tensor):
            continue
        location = next((e.value for e in tensor.external_data if e.key == "location"), "")
        data = (folder / location).resolve()
        if not location or Path(location).is_absolute() or folder not in data.parents:
            raise InputError(f"{path}: tensor '{tensor.name}' names external data '{location}' outside the "
                             f"model's folder", hint="keep the model's data files next to it")
        if not data.is_file():
            raise InputError(f"{path}: tensor '{tensor.name}': external data file '{location}' not found "
                             f"in {folder}", hint="copy the model's data files next to it")
        try:
            external_data_helper.load_external_data_for_tensor(tensor, str(folder))
        except (onnx.checker.ValidationError, ValueError, OSError) as exc:
            raise InputError(f"{path}: tensor '{tensor.name}': cannot read external data '{location}': "
                             f"{one_line(str(exc))}", hint="the data file does not match the model") from exc


def _tensors(graph: onnx.GraphProto) -> Iterator[onnx.TensorProto]:
    """Every tensor a graph holds: initializers and node attributes, subgraphs included."""
    yield from graph.initializer
    for sparse in graph.sparse_initializer:
        yield from (sparse.values, sparse.indices)
    for node in graph.node:
        for attr in node.attribute:
            if attr.HasField("t"):
                yield attr.t
            yield from attr.tensors
            for sub in [*([attr.g] if attr.HasField("g") else []), *attr.graphs]:
                yield from _tensors(sub)


def _check_opsets(model: onnx.ModelProto, path: Path) -> None:
    """An opset newer than the installed onnx knows has operators of unknown meaning."""
    newest = onnx.defs.onnx_opset_version()
    for entry in model.opset_import:
        if entry.domain in ("", "ai.onnx") and entry.version > newest:
            raise UnsupportedError(f"{path}: opset {entry.version} of the ONNX domain is newer than this tvmx "
                                   f"knows (up to {newest})", hint="export the model with an older opset, e.g. 17")


SUPPORTED_INPUT_DTYPES = ("float32", "float64", "int8", "uint8", "int16", "int32", "int64", "bool")


def _elem_dtype(name: str, elem_type: int) -> str:
    """The numpy dtype of an input, refused here (before TVM's importer) unless tvmx can feed it."""
    try:
        dtype = str(onnx.helper.tensor_dtype_to_np_dtype(elem_type))
    except (KeyError, ValueError):
        dtype = "object"
    if dtype not in SUPPORTED_INPUT_DTYPES:
        raise UnsupportedError(f"input '{name}' has dtype {_dtype_label(elem_type) if dtype == 'object' else dtype}",
                               hint=f"tvmx feeds inputs of {', '.join(SUPPORTED_INPUT_DTYPES)}")
    return dtype


def _dtype_label(elem_type: int) -> str:
    """ONNX's name of a type numpy has no dtype for (string), or the raw number of an unknown one."""
    try:
        return str(onnx.TensorProto.DataType.Name(elem_type)).lower()
    except ValueError:
        return f"elem_type {elem_type}"


def graph_inputs(model: onnx.ModelProto, overrides: dict[str, tuple[int, ...]]) -> list[TensorSpec]:
    """The real inputs (older exporters also list initializers as inputs), with static shapes."""
    initializers = {t.name for t in model.graph.initializer}
    specs = []
    names = [i.name for i in model.graph.input if i.name not in initializers]
    for unknown in set(overrides) - set(names):
        raise InputError(f"--input-shape names '{unknown}', which is not a model input",
                         hint=f"model inputs: {', '.join(names)}")
    for value in model.graph.input:
        if value.name in initializers:
            continue
        ttype = value.type.tensor_type
        if value.name in overrides:
            shape = overrides[value.name]
            if ttype.shape.dim and len(shape) != len(ttype.shape.dim):
                raise InputError(f"--input-shape {value.name}: rank {len(shape)} does not match the model's "
                                 f"rank {len(ttype.shape.dim)}")
        else:
            shape = _static_input_shape(value)
        specs.append(TensorSpec(value.name, shape, _elem_dtype(value.name, ttype.elem_type)))
    return specs


def _static_input_shape(value: onnx.ValueInfoProto) -> tuple[int, ...]:
    ttype = value.type.tensor_type
    dims = [d.dim_value if d.HasField("dim_value") else None for d in ttype.shape.dim]
    shown = ",".join(str(d) if d is not None else (dim.dim_param or "?")
                     for d, dim in zip(dims, ttype.shape.dim, strict=True))
    if not ttype.HasField("shape") or None in dims:
        raise UnsupportedError(
            f"input '{value.name}' has a dynamic shape [{shown}]",
            hint=f"give a static shape, e.g. --input-shape {value.name}=" + ",".join(str(d or 1) for d in dims),
        )
    if any(d is not None and d <= 0 for d in dims):
        raise UnsupportedError(f"input '{value.name}' has an empty dimension: shape [{shown}]",
                               hint="every input must hold at least one element: check the exporter")
    return tuple(d for d in dims if d is not None)


def graph_macs(model: onnx.ModelProto) -> int:
    """Multiply-accumulates of every Conv, Gemm and MatMul, from the graph's inferred shapes: what the
    benchmarks' end-to-end utilisation divides by, and what the profile's MACs (counted in the
    kernels) must add up to."""
    inferred = onnx.shape_inference.infer_shapes(model)
    shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
              for v in [*inferred.graph.value_info, *inferred.graph.input, *inferred.graph.output]}
    shapes.update({t.name: list(t.dims) for t in model.graph.initializer})
    total = 0
    for node in inferred.graph.node:
        out = shapes.get(node.output[0], [])
        if node.op_type == "Conv":
            total += math.prod(out) * math.prod(shapes[node.input[1]][1:])  # each output: C_in/groups x kh x kw
        elif node.op_type in ("Gemm", "MatMul"):
            a = shapes[node.input[0]]
            trans_a = any(at.name == "transA" and at.i for at in node.attribute)
            total += math.prod(out) * (a[-2] if trans_a else a[-1])
    return total


def check_ops(model: onnx.ModelProto) -> None:
    from tvm.relax.frontend.onnx.onnx_frontend import _get_convert_map

    known = _get_convert_map()
    for index, node in enumerate(model.graph.node):
        if node.domain not in ("", "ai.onnx") or node.op_type not in known:
            label = node.name or f"#{index}"
            domain = f" (domain '{node.domain}')" if node.domain not in ("", "ai.onnx") else ""
            raise UnsupportedError(
                f"unsupported operator '{node.op_type}'{domain} in node '{label}'",
                hint="replace it in the exporter, or decompose it into supported ONNX ops",
            )


def constant_values(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    """The graph's values known before it runs: its initializers and its Constant nodes' tensors."""
    values = {t.name: onnx.numpy_helper.to_array(t) for t in model.graph.initializer}
    values.update({n.output[0]: onnx.numpy_helper.to_array(n.attribute[0].t) for n in model.graph.node
                   if n.op_type == "Constant" and len(n.attribute) == 1 and n.attribute[0].name == "value"})
    return values


def upsample_scales_as_attribute(model: onnx.ModelProto) -> onnx.ModelProto:
    """TVM 0.27's Upsample converter reads `scales` as an attribute (opset 7), also at opset 9, where
    the scales are an input: a constant one is copied into the attribute the converter reads (the
    model itself is left as it is); one computed at run time is refused, naming the node. So is mode
    "nearest": the converter rounds the source index where ONNX floors it, a wrong result."""
    upsamples = [i for i, n in enumerate(model.graph.node) if n.op_type == "Upsample" and len(n.input) > 1]
    if not upsamples:
        return model
    constants = constant_values(model)
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    for index in upsamples:
        node = copy.graph.node[index]
        label = node.name or f"#{index}"
        mode = next((a.s for a in node.attribute if a.name == "mode"), b"nearest")
        if mode == b"nearest":
            raise UnsupportedError(
                f"Upsample node '{label}' in mode nearest: TVM 0.27's converter rounds the source index "
                f"where ONNX floors it, which gives wrong results",
                hint="export with Resize (opset 10+) and nearest_mode floor, or use mode linear")
        if node.input[1] not in constants:
            raise UnsupportedError(
                f"Upsample node '{label}' takes its scales from a run-time value "
                f"('{node.input[1]}'): TVM's converter needs them constant",
                hint="make the scales an initializer, or export with Resize (opset 10+) and constant scales")
        scales = constants[node.input[1]].astype(float).ravel().tolist()
        node.attribute.append(onnx.helper.make_attribute("scales", scales))
    return copy


def _output_specs(mod: object, model: onnx.ModelProto) -> list[TensorSpec]:
    from tvm import relax

    ret = mod["main"].ret_ty  # type: ignore[index]
    types = list(ret.fields) if isinstance(ret, relax.TupleType) else [ret]
    if len(types) != len(model.graph.output):
        raise UnsupportedError(f"the model declares {len(model.graph.output)} outputs, TVM's import returns "
                               f"{len(types)}", hint="outputs must be plain tensors (no sequences or optionals)")
    specs = []
    for value, ty in zip(model.graph.output, types, strict=True):
        dims = _static_dims(getattr(ty, "shape", None))
        if dims is None or not hasattr(ty, "dtype"):
            raise UnsupportedError(f"output '{value.name}' has a dynamic shape", hint="use --input-shape")
        specs.append(TensorSpec(value.name, dims, str(ty.dtype)))
    return specs


def _static_dims(shape: object) -> tuple[int, ...] | None:
    """The dimensions of a Relax shape if all are constants (int() of a symbolic one raises)."""
    if shape is None:
        return None
    try:
        return tuple(int(d) for d in shape)  # type: ignore[attr-defined]
    except (TypeError, ValueError):
        return None


@contextlib.contextmanager
def _checked_already() -> Iterator[None]:
    """TVM's importer runs onnx.checker on the model again (only to print a warning), serializing
    it whole in Python: 0.5 s of ResNet-50. load_onnx has checked the same model, and refused it on
    an error, so the second check is skipped while the importer runs."""
    checker = onnx.checker.check_model
    onnx.checker.check_model = lambda *_args, **_kwargs: None
    try:
        yield
    finally:
        onnx.checker.check_model = checker


# TVM's importer prints this line (to stdout) before re-raising a converter's error.
_FAILED_OP = re.compile(r"^Error converting operator (\S+), with inputs", re.MULTILINE)


def _relax_from_onnx(model: onnx.ModelProto, inputs: list[TensorSpec]) -> Any:  # a tvm.IRModule
    """TVM's ONNX importer; its failure, whatever it raises on a model the ONNX checker accepted, is
    about the model: one error naming the operator (its own print of it is kept out of the output)."""
    from tvm.relax.frontend.onnx import from_onnx

    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    readable = labelled(upsample_scales_as_attribute(model))
    printed = io.StringIO()
    try:
        with contextlib.redirect_stdout(printed), _checked_already(), named_bindings(readable) as owner:
            mod = from_onnx(readable, shape_dict={t.name: list(t.shape) for t in inputs}, opset=opset,
                            keep_params_in_input=False)
    except Exception as exc:
        op = _FAILED_OP.search(printed.getvalue())
        where = f" at operator {op.group(1)}" if op else ""
        raise UnsupportedError(f"TVM's ONNX importer rejected the model{where}: "
                               f"{one_line(str(exc)) or exc.__class__.__name__}",
                               hint="simplify the model (e.g. onnxsim) or replace the unsupported construct") from exc
    sys.stdout.write(printed.getvalue())  # whatever else it said, as it would have
    return name_bindings(mod, owner)


def run(ctx: StageContext, _: None) -> ImportedModel:
    out_dir = ctx.stage_dir(1, "import")
    model = load_onnx(ctx.model_path)
    inputs = graph_inputs(model, ctx.options.input_shapes)
    check_ops(model)
    mod = _relax_from_onnx(model, inputs)
    outputs = _output_specs(mod, model)
    text = out_dir / "module.py"
    atomic_write(text, mod.script(show_meta=False))
    ctx.build.record_stage("import", [ctx.model_path], [text], {"inputs": [t.to_json() for t in inputs]})
    return ImportedModel(mod, inputs, outputs, [node_label(i, n) for i, n in enumerate(model.graph.node)])
