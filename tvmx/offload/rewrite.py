"""Running a Relax PyExprMutator over `main` and putting the result back in the module."""

from __future__ import annotations

from typing import Any


def rewrite_main(mutator: Any, mod: Any) -> Any:
    """`mutator` is an instance built on `mod`; functions it added stay, dead code goes."""
    from tvm import relax

    main = mutator.visit_expr(mod["main"])
    out = mutator.builder_.get()
    out["main"] = main
    return relax.transform.DeadCodeElimination(["main"])(out)


def op_name(expr: Any) -> str:
    """The operator name of a Relax call ('' for anything else)."""
    return str(getattr(getattr(expr, "op", None), "name", ""))
