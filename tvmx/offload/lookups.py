"""Table lookups of 8-bit tensors as one small loop each.

int8_tables and channel_tables write their lookups as Relax ops the layout passes can move:
`take(table, x, mode="wrap")` and `take(table, astype(x, int32) + offset[channel])`. Legalized as
they are, `take` is an opaque kernel (TVM fuses nothing into it), the index is a tensor of its own
and every lookup clamps or wraps it in 64 bits: about 18 instructions per element. Here each
becomes one TE kernel, `out[i] = table[(x[i] & 255)]` or `out[i] = table[256 * c + x[i] - min]`
with c the element's channel, a handful of instructions per element. Both index the same entry as
the ops they replace (x & 255 is x mod 256; the offsets keep every index inside the table, so the
clamp never acts), so the values are the same.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tvmx.offload.rewrite import bound_value, constant_array, mark_injective, op_name, rewrite_main, use_counts
from tvmx.stages.provenance import node_index

EIGHT_BIT = {"int8": -128, "uint8": 0}  # dtype -> its smallest value
LOOKUP_KERNELS = ("int8_lookup", "channel_lookup")


def _affine_offsets(offsets: np.ndarray, x_rank: int) -> tuple[int, int, int] | None:
    """(axis, stride, base) if offsets broadcasts along one axis as base + stride * index, else None."""
    full = offsets.reshape((1,) * (x_rank - offsets.ndim) + offsets.shape)
    axes = [k for k, d in enumerate(full.shape) if d > 1]
    if len(axes) != 1:
        return None
    flat = full.reshape(-1).astype(np.int64)
    stride = int(flat[1] - flat[0])
    if not np.array_equal(flat, flat[0] + stride * np.arange(flat.size)):
        return None
    return axes[0], stride, int(flat[0])


def _wrapped_table(call: Any) -> np.ndarray | None:
    """The table of `take(table, x, mode="wrap")` on an 8-bit x with 256 entries, else None."""
    if op_name(call) != "relax.take" or call.attrs.axis is None or int(call.attrs.axis) != 0 \
            or str(call.attrs.mode) != "wrap" or str(call.args[1].ty.dtype) not in EIGHT_BIT:
        return None
    values = constant_array(call.args[0])
    return values if values is not None and values.shape == (256,) else None


def compose_lookups(mod: Any) -> Any:
    """A lookup of a lookup (a sigmoid's table, then a concat's requantization) as one: entry i of
    the composed table is outer[inner[i] mod 256], the entry the two lookups reach in turn. Where
    the outer lookup is tvmx's own (named after no node) and the inner is used only there, the
    composed one takes the inner's name: it computes the inner's nodes (stages/provenance.py)."""
    from tvm import relax

    uses = use_counts(mod["main"])

    @relax.expr_functor.mutator
    class Compose(relax.PyExprMutator):  # type: ignore[misc]
        def visit_var_binding_(self, binding: Any) -> None:
            value = binding.value
            inner = value.args[1] if _wrapped_table(value) is not None else None
            if not (isinstance(inner, relax.Var) and node_index(binding.var.name) is None and uses[inner] == 1
                    and node_index(inner.name) is not None and _wrapped_table(self.lookup_binding(inner)) is not None):
                super().visit_var_binding_(binding)
                return
            cls = relax.DataflowVar if isinstance(binding.var, relax.DataflowVar) else relax.Var
            named = cls(inner.name, binding.var.ty)
            self.set_var_remap(binding.var, named)
            self.builder_.emit_normalized(relax.VarBinding(named, self.visit_expr(value)))

        def visit_call_(self, call: Any) -> Any:
            call = super().visit_call_(call)
            outer = _wrapped_table(call)
            if outer is None or not isinstance(call.args[1], relax.Var):
                return call
            inner_call = self.lookup_binding(call.args[1])  # (the index is 8-bit: _wrapped_table)
            inner = _wrapped_table(inner_call) if inner_call is not None else None
            if inner is None:
                return call
            composed = outer[inner.astype(np.int64) & 255]
            return relax.op.take(relax.const(composed), inner_call.args[1], axis=0, mode="wrap")

    return rewrite_main(Compose(mod), mod)


def lower_lookups(mod: Any) -> Any:
    from tvm import relax, te, tirx

    mod = compose_lookups(mod)

    @relax.expr_functor.mutator
    class Lower(relax.PyExprMutator):  # type: ignore[misc]
        def visit_call_(self, call: Any) -> Any:
            call = super().visit_call_(call)
            if op_name(call) != "relax.take" or call.attrs.axis is None or int(call.attrs.axis) != 0:
                return call
            table, index = call.args
            values = constant_array(table)
            if values is None or values.ndim != 1:
                return call
            size = values.shape[0]
            if str(index.ty.dtype) in EIGHT_BIT and size == 256 and str(call.attrs.mode) == "wrap":
                return self.builder_.call_te(
                    lambda t, x: te.compute(x.shape, lambda *i: t[tirx.bitwise_and(x(*i).astype("int64"), 255)],
                                            name="lookup"), table, index, primfunc_name_hint=LOOKUP_KERNELS[0])
            add = bound_value(self, index)
            if op_name(add) != "relax.add":
                return call
            cast, offsets = bound_value(self, add.args[0]), constant_array(add.args[1])
            if op_name(cast) != "relax.astype" or offsets is None or str(cast.attrs.dtype) != "int32":
                return call
            x = cast.args[0]
            dtype = str(x.ty.dtype)
            rank = len(x.ty.shape)
            affine = _affine_offsets(offsets, rank) if dtype in EIGHT_BIT and offsets.ndim <= rank else None
            if affine is None:
                return call
            axis, stride, base = affine
            low = EIGHT_BIT[dtype]
            channels = int(x.ty.shape[axis])
            if base + low < 0 or base + stride * (channels - 1) + low + 255 >= size:
                return call  # the clamp of mode="clip" could act: keep the op as it is

            def compute(t: Any, xs: Any) -> Any:
                return te.compute(xs.shape, lambda *i: t[i[axis].astype("int64") * stride + base
                                                         + xs(*i).astype("int64")], name="lookup")

            return self.builder_.call_te(compute, table, x, primfunc_name_hint=LOOKUP_KERNELS[1])

    # Injective, so FuseOps may fuse a lookup into its consumer (a concatenation) and the schedule
    # inline it: one pass, not two.
    return mark_injective(rewrite_main(Lower(mod), mod), LOOKUP_KERNELS)
