"""Stage 1, import: ONNX file -> Relax IRModule, with every way the input can be bad caught up front."""

from __future__ import annotations

from pathlib import Path

import onnx
from google.protobuf.message import DecodeError

from tvmx.build.builddir import atomic_write
from tvmx.errors import InputError, UnsupportedError
from tvmx.stages.artifacts import ImportedModel, TensorSpec
from tvmx.stages.context import StageContext


def load_onnx(path: Path) -> onnx.ModelProto:
    if not path.is_file():
        raise InputError(f"model file not found: {path}", hint="check the path")
    try:
        model = onnx.load(str(path))
    except (DecodeError, ValueError, OSError) as exc:
        raise InputError(f"{path}: not an ONNX model ({exc.__class__.__name__})",
                         hint="pass a .onnx file saved by onnx.save or a framework exporter") from exc
    if not model.graph.node:
        raise InputError(f"{path}: not an ONNX model (empty graph)", hint="pass a .onnx file with a graph")
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as exc:
        first = str(exc).strip().splitlines()[0]
        raise InputError(f"{path}: invalid ONNX model: {first}", hint="run onnx.checker on the file") from exc
    return model


def _elem_dtype(elem_type: int) -> str:
    return str(onnx.helper.tensor_dtype_to_np_dtype(elem_type))


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
            dims = [d.dim_value if d.HasField("dim_value") else None for d in ttype.shape.dim]
            if not ttype.HasField("shape") or any(d is None or d <= 0 for d in dims):
                shown = ",".join(d.dim_param or "?" if not d.HasField("dim_value") else str(d.dim_value)
                                 for d in ttype.shape.dim)
                raise UnsupportedError(
                    f"input '{value.name}' has a dynamic shape [{shown}]",
                    hint=f"give a static shape, e.g. --input-shape {value.name}="
                    + ",".join(str(d) if d else "1" for d in dims),
                )
            shape = tuple(int(d) for d in dims if d is not None)
        specs.append(TensorSpec(value.name, shape, _elem_dtype(ttype.elem_type)))
    return specs


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


def _output_specs(mod: object, model: onnx.ModelProto) -> list[TensorSpec]:
    from tvm import relax

    ret = mod["main"].ret_ty  # type: ignore[index]
    types = list(ret.fields) if isinstance(ret, relax.TupleType) else [ret]
    specs = []
    for value, ty in zip(model.graph.output, types, strict=True):
        shape = getattr(ty, "shape", None)
        if shape is None or not all(isinstance(int(d), int) for d in shape):
            raise UnsupportedError(f"output '{value.name}' has a dynamic shape", hint="use --input-shape")
        specs.append(TensorSpec(value.name, tuple(int(d) for d in shape), str(ty.dtype)))
    return specs


def run(ctx: StageContext, _: None) -> ImportedModel:
    out_dir = ctx.stage_dir(1, "import")
    model = load_onnx(ctx.model_path)
    inputs = graph_inputs(model, ctx.options.input_shapes)
    check_ops(model)
    from tvm.relax.frontend.onnx import from_onnx

    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    try:
        mod = from_onnx(model, shape_dict={t.name: list(t.shape) for t in inputs}, opset=opset,
                        keep_params_in_input=False)
    except (ValueError, NotImplementedError, TypeError, KeyError) as exc:
        raise UnsupportedError(f"TVM's ONNX importer rejected the model: {exc}",
                               hint="simplify the model (e.g. onnxsim) or replace the unsupported construct") from exc
    for spec in inputs:
        if spec.dtype not in ("float32", "int8", "uint8", "int32", "int64", "bool"):
            raise UnsupportedError(f"input '{spec.name}' has dtype {spec.dtype}", hint="use float32 or int8 inputs")
    outputs = _output_specs(mod, model)
    text = out_dir / "module.py"
    atomic_write(text, mod.script(show_meta=False))
    ctx.build.record_stage("import", [ctx.model_path], [text], {"inputs": [t.to_json() for t in inputs]})
    return ImportedModel(mod, inputs, outputs)
