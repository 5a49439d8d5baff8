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
