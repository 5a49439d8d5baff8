"""Residual adds of two int8 tensors (or three: an ONNX Sum, where the target has an add3) onto the
accelerator:

    quantize( [relu] add( dequantize(a), dequantize(b) ) )        [add(add(dq(a), dq(b)), dq(c))]
        [ -> quantize(relu(dequantize(.))) with the same scale ]

Runs after transpose sinking, so both operands are the NHWC tensors the accelerator layers wrote;
the add is elementwise, so the layout does not matter to it. Each match becomes a call_tir of a
reference kernel tensorized into one call of the header's residual-add function.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from tvmx.offload import kernels
from tvmx.offload.layers import QAdd, Rejected, analyze_add
from tvmx.offload.rewrite import bindings, op_name, rewrite_main, same_constant


@dataclass
class AddResult:
    """One add of two non-constant tensors, in graph order: offloaded (kernel) or why not (reason)."""

    kernel: str = ""
    reason: str = ""
    relu: bool = False
    absorbed: tuple[str, ...] = ()  # the binding names the offloaded add replaced (they name its ONNX nodes)


@dataclass(frozen=True)
class _Match:
    add: QAdd
    operands: tuple[Any, ...]  # the int8 operands (variables of the original main)
    add_vars: tuple[Any, ...]  # the float adds it replaces, which key their AddResults


def _var_args(value: Any) -> list[Any]:
    from tvm import relax

    args = value.fields if isinstance(value, relax.Tuple) else getattr(value, "args", [])
    return [a for a in args if isinstance(a, relax.Var)]


def _plan(main: Any, three: bool) -> tuple[dict[Any, _Match], dict[Any, AddResult]]:
    """Which quantize binding becomes which accelerator add (root var -> match), and a result for
    every add of two tensors (add var -> result)."""
    from tvm import relax

    values = bindings(main)
    uses = Counter(a for v in values.values() for a in _var_args(v))
    if isinstance(main.body.body, relax.Var):
        uses[main.body.body] += 1
    users: dict[Any, list[Any]] = {}
    for var, value in values.items():
        for a in _var_args(value):
            users.setdefault(a, []).append(var)

    def only_user(var: Any, op: str) -> Any:
        found = users.get(var, [])
        return found[0] if uses[var] == 1 and len(found) == 1 and op_name(values[found[0]]) == op else None

    def computed(var: Any) -> bool:  # not a constant, nor a dequantized one (a bias)
        value: Any = values.get(var)
        return not (op_name(value) == "relax.dequantize" and not isinstance(value.args[0], relax.Var))

    roots: dict[Any, _Match] = {}
    results: dict[Any, AddResult] = {}
    for var, value in values.items():
        if op_name(value) != "relax.add" or len(_var_args(value)) != 2 or not all(map(computed, value.args)):
            continue
        results[var] = result = AddResult()
        adds: tuple[Any, ...] = (var,)
        operands = list(value.args)
        first = value.args[0]  # (a + b) + c, onnxruntime's order for a Sum of three
        if three and first in results and only_user(first, "relax.add") is var \
                and all(op_name(values.get(a)) == "relax.dequantize" for a in values[first].args):
            adds, operands = (first, var), [*values[first].args, value.args[1]]
        dqs: list[Any] = [values.get(a) for a in operands]
        # A float ReLU straight after the add commutes with the quantize (monotone, and 0 maps to
        # 0 with zero point 0, which analyze_add requires): quantize(relu(add)) is relu(quantize(add)).
        float_relu = only_user(var, "relax.nn.relu")
        q = only_user(float_relu, "relax.quantize") if float_relu is not None else only_user(var, "relax.quantize")
        if not all(op_name(d) == "relax.dequantize" for d in dqs) or q is None:
            result.reason = "not between dequantize and quantize (a float add)"
            continue
        # or a ReLU on the quantized sum: quantize -> dequantize -> relu -> quantize, one scale throughout
        root, relu, qv = q, float_relu is not None, values[q]
        dq2 = only_user(q, "relax.dequantize")
        r = only_user(dq2, "relax.nn.relu") if dq2 is not None else None
        q2 = only_user(r, "relax.quantize") if r is not None else None
        if q2 is not None and all(same_constant(values[dq2].args[i], qv.args[i])
                                  and same_constant(values[q2].args[i], qv.args[i]) for i in (1, 2)):
            root, relu = q2, True  # the add's own quantize is left dead
        try:
            add = analyze_add([d.args[0].ty for d in dqs], (*(d.args[1] for d in dqs), qv.args[1]),
                              (*(d.args[2] for d in dqs), qv.args[2]), str(qv.attrs.out_dtype), relu)
        except Rejected as exc:
            result.reason = str(exc)
            continue
        roots[root] = _Match(add, tuple(d.args[0] for d in dqs), adds)
        result.relu = relu
    return roots, results


def offload_residual_adds(mod: Any, functions: dict[str, str]) -> tuple[Any, list[AddResult]]:
    """The module with matched adds as accelerator calls (`functions`: the header functions of the
    target's add and add3 intrinsics), and one result per add of two tensors."""
    from tvm import relax

    roots, results = _plan(mod["main"], "add3" in functions)
    values = bindings(mod["main"])

    def replaced(root: Any, operands: tuple[Any, ...]) -> tuple[str, ...]:
        """The bindings from the int8 operands to the root: dequantizes, adds, activation, quantize."""
        names, seen, stack = [], set(operands), [root]
        while stack:
            var = stack.pop()
            if var in seen or var not in values:
                continue
            seen.add(var)
            names.append(var.name)
            stack += list(relax.analysis.free_vars(values[var]))
        return tuple(names)

    @relax.expr_functor.mutator
    class Rewriter(relax.PyExprMutator):  # type: ignore[misc]
        def visit_var_binding_(self, binding: Any) -> None:
            match = roots.get(binding.var)
            if match is None:
                super().visit_var_binding_(binding)
                return
            name = f"accel_add_{len({r.kernel for r in results.values() if r.kernel})}"
            absorbed = replaced(binding.var, match.operands)
            for var in match.add_vars:
                results[var].kernel, results[var].relu, results[var].absorbed = name, match.add.relu, absorbed
            source = kernels.add_source(match.add, functions[match.add.op])
            gv = self.builder_.add_func(kernels.accelerator_kernel(source, name, match.add.op), name)
            call = relax.call_tir(gv, [self.visit_expr(v) for v in match.operands],
                                  relax.TensorType(match.add.shape, "int8"))
            emit = self.builder_.emit if isinstance(binding.var, relax.DataflowVar) else self.builder_.emit_output
            self.set_var_remap(binding.var, emit(call))

    return rewrite_main(Rewriter(mod), mod), list(results.values())

