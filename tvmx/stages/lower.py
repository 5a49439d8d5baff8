"""Stage 4, lower: Relax calls -> a flat list of kernel calls over a static memory plan.

TVM's memory planner (StaticPlanBlockMemory) decides storage sharing; this stage only reads the
result. Walking `main` after the passes below, each binding is one of: alloc_storage, alloc_tensor
into a storage, a kernel call in destination-passing style, an alias (reshape or plain rebinding),
or builtin.alloc_tensor for a model output.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from tvmx.build.builddir import atomic_write
from tvmx.errors import UnsupportedError
from tvmx.stages.artifacts import BufferRef, ExecutionPlan, LoweredModule, ScheduledModule
from tvmx.stages.context import StageContext


def lowering_passes() -> list[object]:
    from tvm import relax

    return [
        relax.transform.RewriteDataflowReshape(),
        relax.transform.ToNonDataflow(),
        relax.transform.RemovePurityChecking(),
        relax.transform.CallTIRRewrite(),
        relax.transform.StaticPlanBlockMemory(),
        relax.transform.DeadCodeElimination(),
        relax.transform.AttachGlobalSymbol(),
    ]


# Kernels are named after their ops ("erf", "exp"): a C library function of that name would clash.
C_LIBRARY_NAMES = frozenset(
    f"{base}{suffix}" for base in (
        "abs", "acos", "acosh", "asin", "asinh", "atan", "atan2", "atanh", "cbrt", "ceil", "copysign", "cos", "cosh",
        "erf", "erfc", "exp", "exp2", "expm1", "fabs", "fdim", "floor", "fma", "fmax", "fmin", "fmod", "frexp",
        "hypot", "ilogb", "ldexp", "lgamma", "llrint", "llround", "log", "log10", "log1p", "log2", "logb", "lrint",
        "lround", "modf", "nan", "nearbyint", "nextafter", "pow", "remainder", "remquo", "rint", "round",
        "scalbn", "sin", "sinh", "sqrt", "tan", "tanh", "tgamma", "trunc")
    for suffix in ("", "f", "l")) | {
    "main", "exit", "abort", "div", "labs", "free", "malloc", "calloc", "realloc", "memcpy", "memmove", "memset",
    "memcmp", "printf", "puts", "putchar", "signbit", "isnan", "isinf", "isfinite", "isnormal", "fpclassify"}


def c_symbol(name: str) -> str:
    """The C name of a kernel: its own, unless the C library has a function of that name."""
    return f"{name}_kernel" if name in C_LIBRARY_NAMES else name


def _shape_dtype(ty: Any) -> tuple[tuple[int, ...], str]:
    return tuple(int(d) for d in ty.shape), str(ty.dtype)


class _PlanBuilder:
    def __init__(self, scheduled: ScheduledModule) -> None:
        self.model = scheduled.model
        self.storages: list[int] = []
        self.storage_of: dict[Any, int] = {}
        self.refs: dict[Any, BufferRef] = {}
        self.tuples: dict[Any, list[Any]] = {}  # multi-output kernels (Dropout, Split) bind tuples
        self.constants: list[np.ndarray] = []
        self.const_index: dict[Any, int] = {}
        self.calls: list[tuple[str, list[BufferRef]]] = []
        self.n_outputs = 0

    def const_ref(self, const: Any) -> BufferRef:
        if const not in self.const_index:  # TVM objects hash by identity of the underlying node
            self.const_index[const] = len(self.constants)
            self.constants.append(np.ascontiguousarray(const.value.numpy()))
        index = self.const_index[const]
        arr = self.constants[index]
        return BufferRef("const", index, 0, str(arr.dtype), tuple(arr.shape))

    def arg_ref(self, arg: Any) -> BufferRef:
        import tvm

        if isinstance(arg, tvm.ir.Constant):
            return self.const_ref(arg)
        if arg in self.refs:
            return self.refs[arg]
        raise UnsupportedError(f"kernel argument '{arg}' is not a planned tensor",
                               hint="this model needs a construct the bare-metal lowering cannot place")

    def value_of(self, expr: Any) -> BufferRef | list[Any]:
        """A tensor's place, or a (nested) list of them for a tuple (multi-output kernels such as
        Dropout and Split bind their outputs as a tuple)."""
        from tvm import relax

        if isinstance(expr, relax.Tuple):
            return [self.value_of(f) for f in expr.fields]
        if isinstance(expr, relax.TupleGetItem):
            items = self.value_of(expr.tuple_value)
            assert isinstance(items, list), "TupleGetItem of a tensor"
            return items[int(expr.index)]  # type: ignore[no-any-return]
        if expr in self.tuples:
            return self.tuples[expr]
        return self.arg_ref(expr)

    def bind(self, var: Any, value: BufferRef | list[Any]) -> None:
        if isinstance(value, list):
            self.tuples[var] = value
        else:
            self.refs[var] = value

    def binding(self, var: Any, value: Any) -> None:
        import tvm
        from tvm import relax

        if isinstance(value, (relax.Var, relax.Tuple, relax.TupleGetItem)):
            self.bind(var, self.value_of(value))
            return
        if isinstance(value, tvm.ir.Constant):
            self.refs[var] = self.const_ref(value)
            return
        if not isinstance(value, relax.Call):
            raise UnsupportedError(f"cannot lower binding '{var.name}' ({type(value).__name__})",
                                   hint="the model needs the Relax VM, which bare-metal targets do not have")
        op = value.op
        if isinstance(op, relax.GlobalVar):
            self.calls.append((c_symbol(op.name_hint), [self.arg_ref(a) for a in value.args]))
            return
        name = str(op.name)
        if name == "relax.memory.alloc_storage":
            self.storage_of[var] = len(self.storages)
            self.storages.append(int(value.args[0].values[0]))
        elif name == "relax.memory.alloc_tensor":
            shape, dtype = _shape_dtype(var.ty)
            self.refs[var] = BufferRef("storage", self.storage_of[value.args[0]], int(value.args[1].value),
                                       dtype, shape)
        elif name == "relax.builtin.alloc_tensor":
            shape, dtype = _shape_dtype(var.ty)
            self.refs[var] = BufferRef("output", self.n_outputs, 0, dtype, shape)
            self.n_outputs += 1
        elif name == "relax.reshape":
            src = self.arg_ref(value.args[0])
            shape, dtype = _shape_dtype(var.ty)
            self.refs[var] = BufferRef(src.kind, src.index, src.offset, dtype, shape)
        elif name in ("relax.memory.kill_storage", "relax.memory.kill_tensor"):
            pass
        else:
            raise UnsupportedError(f"cannot lower '{name}' to bare metal",
                                   hint="this op has no TIR legalization; replace it in the model")

    def build(self, main: Any) -> ExecutionPlan:
        for param, spec in zip(main.params, self.model.inputs, strict=True):
            shape, dtype = _shape_dtype(param.ty)
            self.refs[param] = BufferRef("input", self.model.inputs.index(spec), 0, dtype, shape)
        body = main.body
        for block in body.blocks:
            for b in block.bindings:
                self.binding(b.var, b.value)
        output_refs = _flat(self.value_of(body.body))
        return ExecutionPlan(self.storages, self.constants, self.model.inputs, self.model.outputs,
                             self.calls, output_refs)


def check_argument_dtypes(kernels: Any, plan: ExecutionPlan) -> None:
    """Each kernel's buffers have the element types of the tensors planned for them: a legalization
    that computes in another type (TOPI's integer mean writes int64) would otherwise write past them."""
    from tvm.tirx.buffer import is_buffer_var

    funcs = {gv.name_hint: f for gv, f in kernels.functions.items()}
    for name, args in plan.calls:
        buffers = [p for p in funcs[name].params if is_buffer_var(p)] if name in funcs else []
        for param, arg in zip(buffers, args, strict=False):
            if str(param.dtype) != arg.dtype:
                raise UnsupportedError(f"kernel '{name}' takes {param.dtype} for its {arg.dtype} tensor "
                                       f"'{param.name}'", hint="TVM legalizes this op into another element "
                                       "type; cast the tensor to float32 in the model")


def _flat(value: BufferRef | list[Any]) -> list[BufferRef]:
    return [r for v in value for r in _flat(v)] if isinstance(value, list) else [value]


def run(ctx: StageContext, scheduled: ScheduledModule) -> LoweredModule:
    import tvm

    out_dir = ctx.stage_dir(4, "lower")
    mod = tvm.ir.transform.Sequential(lowering_passes())(scheduled.mod)
    plan = _PlanBuilder(scheduled).build(mod["main"])
    kernels = tvm.IRModule({tvm.ir.GlobalVar(name): f.with_attr("global_symbol", name)
                            for name, f in ((c_symbol(gv.name_hint), f) for gv, f in mod.functions.items()
                                            if isinstance(f, tvm.tirx.PrimFunc))})
    check_argument_dtypes(kernels, plan)
    tir = out_dir / "kernels_tir.py"
    atomic_write(tir, kernels.script(show_meta=False))
    relax_text = out_dir / "main_relax.py"
    atomic_write(relax_text, mod["main"].script(show_meta=False))
    plan_json = out_dir / "plan.json"
    atomic_write(plan_json, json.dumps(plan.to_json(), indent=1) + "\n")
    ctx.build.record_stage("lower", [], [tir, relax_text, plan_json],
                           {"kernel_calls": len(plan.calls), "storage_bytes": sum(plan.storages)})
    return LoweredModule(kernels, plan)
