"""Small Relax helpers the offload passes share: running a PyExprMutator over `main`, reading its
bindings and its constants."""

from __future__ import annotations

from typing import Any

import numpy as np

from tvmx.stages.provenance import restore_names


def rewrite_main(mutator: Any, mod: Any) -> Any:
    """`mutator` is an instance built on `mod`; functions it added stay, dead code goes, and the
    new bindings that replace ones named after ONNX nodes take their names (stages/provenance.py)."""
    from tvm import relax

    main = mutator.visit_expr(mod["main"])
    out = mutator.builder_.get()
    out["main"] = main
    return restore_names(mod["main"], relax.transform.DeadCodeElimination(["main"])(out))


def op_name(expr: Any) -> str:
    """The operator name of a Relax call ('' for anything else)."""
    return str(getattr(getattr(expr, "op", None), "name", ""))


def bindings(func: Any) -> dict[Any, Any]:
    """The value bound to each variable of the function's binding blocks."""
    return {b.var: b.value for block in func.body.blocks for b in block.bindings}


def use_counts(func: Any) -> Any:
    """How many times each variable is read in the function's bindings and its result."""
    from collections import Counter

    from tvm import relax

    return Counter(v for value in [*bindings(func).values(), func.body.body] for v in relax.analysis.free_vars(value))


def mark_injective(mod: Any, prefixes: tuple[str, ...]) -> Any:
    """The PrimFuncs named with these prefixes, gathers that read one input element per output
    element at a constant or data-dependent index, marked injective for FuseOps (AnnotateTIROpPattern
    calls a gather opaque), so that it may fuse them into their consumers."""
    from tvm import tirx

    for gv, func in list(mod.functions.items()):
        if isinstance(func, tirx.PrimFunc) and gv.name_hint.startswith(prefixes):
            mod[gv] = func.with_attr("op_pattern", 2)  # kInjective
    return mod


def bound_value(mutator: Any, expr: Any) -> Any:
    """The value `expr` is bound to in the mutator's function, through variable-to-variable
    bindings (an ONNX Flatten or Identity that imports as an alias); None for a non-variable."""
    from tvm import relax

    if not isinstance(expr, relax.Var):
        return None
    while isinstance(expr, relax.Var):
        expr = mutator.lookup_binding(expr)
    return expr


def static_shape(expr: Any) -> list[int] | None:
    """The shape of a tensor-typed expression, None if it has none or a symbolic one."""
    shape = getattr(getattr(expr, "ty", None), "shape", None)
    try:
        return None if shape is None else [int(d) for d in shape]
    except TypeError:  # a symbolic shape
        return None


def same_shape(a: Any, b: Any) -> bool:
    """Both have the same static shape."""
    return static_shape(a) is not None and static_shape(a) == static_shape(b)


def scalar_value(expr: Any, values: dict[Any, Any]) -> float | None:
    """A scalar constant, also through a variable bound in `values` and through the importer's
    where(isnan(c), ±inf, c) for Clip bounds; None for anything else."""
    from tvm import relax

    if isinstance(expr, relax.Var):
        expr = values.get(expr)
    if op_name(expr) == "relax.where":
        cond, _, other = (values.get(a, a) if isinstance(a, relax.Var) else a for a in expr.args)
        if op_name(cond) != "relax.isnan" or not hasattr(cond.args[0], "value"):
            return None
        expr = other
    if not hasattr(expr, "value") or expr.value.numpy().size != 1:
        return None
    return float(expr.value.numpy().reshape(()))


def same_constant(a: Any, b: Any) -> bool:
    """Both are constants with equal values."""
    try:
        return bool(np.array_equal(a.value.numpy(), b.value.numpy()))
    except AttributeError:
        return False


def constant_array(expr: Any) -> np.ndarray | None:
    """The value of a constant (tvm.ir.Constant or the importer's GenericConst), else None."""
    value = getattr(expr, "value", None)
    if value is None or not hasattr(value, "numpy") or not hasattr(expr, "ty"):
        return None
    out: np.ndarray = value.numpy()
    return out
