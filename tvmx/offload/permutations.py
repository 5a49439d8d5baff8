"""Chains of reshapes and transposes that only permute the innermost axis, as one gather.

ShuffleNet's channel shuffle (reshape into groups, swap the group axes, reshape back) reaches the
graph between the layout transforms around it (NHWC -> NCHW, shuffle, NCHW -> NHWC): five passes of
index arithmetic, about 30 instructions an element. Composed, such a chain sends element [..., c] to
[..., perm[c]] of a tensor of the same shape: one TE kernel, out[..., c] = x[..., perm[c]] with perm a
constant table, reads each element once. The composition is computed on an index array, so the
gather moves exactly the elements the chain moves.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tvmx.offload.rewrite import bindings, mark_injective, op_name, rewrite_main, static_shape, use_counts

MOVES = ("relax.permute_dims", "relax.reshape")
PERMUTATION_KERNEL = "channel_permutation"


def _move(call: Any, index: np.ndarray) -> np.ndarray | None:
    """The index array after this reshape or transpose (None where the shape is not static)."""
    if op_name(call) == "relax.reshape":
        shape = static_shape(call)
        return None if shape is None else index.reshape(shape)
    axes = call.attrs.axes
    return index.transpose(None if axes is None else [int(a) for a in axes])


def last_axis_permutation(source: np.ndarray) -> np.ndarray | None:
    """perm if `source` (each output element's flat index in the input, of the same shape) is
    input[..., perm[c]] at every [..., c], else None."""
    rows = source.reshape(-1, source.shape[-1])
    base = np.arange(rows.shape[0])[:, None] * rows.shape[1]
    perm = rows[0] - base[0]
    return perm if np.array_equal(rows, base + perm[None, :]) else None


def channel_permutations(mod: Any) -> Any:
    from tvm import relax, te

    values = bindings(mod["main"])
    uses = use_counts(mod["main"])

    def chain(var: Any) -> tuple[Any, list[Any]]:
        """The source and the moves (first to last) of the chain that ends in `var`'s value."""
        moves = [values[var]]
        while isinstance(moves[0].args[0], relax.Var) and uses[moves[0].args[0]] == 1 \
                and op_name(values.get(moves[0].args[0])) in MOVES:
            moves.insert(0, values[moves[0].args[0]])
        return moves[0].args[0], moves

    @relax.expr_functor.mutator
    class Rewrite(relax.PyExprMutator):  # type: ignore[misc]
        def visit_var_binding_(self, binding: Any) -> None:
            value = binding.value
            found = chain(binding.var) if op_name(value) in MOVES else None
            shape = static_shape(value)
            if found is None or len(found[1]) < 2 or shape is None or static_shape(found[0]) != shape \
                    or not shape or shape[-1] < 2:
                super().visit_var_binding_(binding)
                return
            source, moves = found
            index: np.ndarray | None = np.arange(int(np.prod(shape))).reshape(shape)
            for move in moves:
                index = _move(move, index) if index is not None else None
            perm = last_axis_permutation(index) if index is not None and list(index.shape) == shape else None
            if perm is None or np.array_equal(perm, np.arange(perm.size)):
                super().visit_var_binding_(binding)
                return
            table = relax.const(perm.astype(np.int32))

            def gather(t: Any, x: Any) -> Any:
                return te.compute(x.shape, lambda *i: x(*i[:-1], t[i[-1]].astype("int64")), name="permute")

            new = self.builder_.call_te(gather, table, self.visit_expr(source), primfunc_name_hint=PERMUTATION_KERNEL)
            cls = relax.DataflowVar if isinstance(binding.var, relax.DataflowVar) else relax.Var
            named = cls(binding.var.name, binding.var.ty)
            self.set_var_remap(binding.var, named)
            self.builder_.emit_normalized(relax.VarBinding(named, self.builder_.normalize(new)))

    return mark_injective(rewrite_main(Rewrite(mod), mod), (PERMUTATION_KERNEL,))
