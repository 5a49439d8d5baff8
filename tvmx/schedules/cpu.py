"""A default CPU schedule for convolution- and matmul-like kernels (one reduction block).

dlight's CPU Reduction rule computes each output element as a scalar sum over the reduction axes,
which leaves nothing for clang to vectorize. This rule puts the innermost output axis *inside* the
reduction loops, so the hot loop is `out[.., w] += in[.., w*stride + ..] * weight` over contiguous
memory: clang turns it into RVV code, and scalar cores save the reduction's loop overhead.
"""

from __future__ import annotations

import contextlib
from typing import Any

from tvm import s_tir, tirx
from tvm.s_tir.dlight.analysis import normalize_prim_func
from tvm.s_tir.dlight.base import ScheduleRule

MIN_INNER_EXTENT = 4  # shorter innermost output axes are not worth it
# A pool's row of outputs up to this long stays in registers when clang unrolls it (Inception v1's
# 16-wide LRN window sum: 15 instructions an output that way, 26 with the taps innermost); a longer
# one is loaded and stored per tap (ZFNet's 29-wide: 61 against 33).
REGISTER_ROW = 16


def _unit(extent: Any) -> bool:
    return isinstance(extent, tirx.IntImm) and extent.value == 1


def _reduction(sch: s_tir.Schedule) -> tuple[Any, list[Any], list[Any]] | None:
    """The single reduction block of a kernel, with its spatial and reduction loops (S... R... order)."""
    infos = normalize_prim_func(sch)
    if infos is None:
        return None
    reductions = [b for b in infos if not b.is_injective()]
    if len(reductions) != 1:
        return None
    info = reductions[0]
    kinds = info.dom_kind()
    n_spatial = len(kinds) - len(kinds.lstrip("S"))
    loops = sch.get_loops(info.block_rv)
    if n_spatial == 0 or set(kinds[n_spatial:]) != {"R"} or len(loops) != len(kinds):
        return None
    return info.block_rv, list(loops[:n_spatial]), list(loops[n_spatial:])


def _matmul_like(sch: s_tir.Schedule, spatial: list[Any], reduce: list[Any]) -> bool:
    """One reduction axis and at most two output axes wider than 1: a GEMV or GEMM."""
    wide = [lp for lp in spatial if not _unit(sch.get(lp).extent)]
    deep = [lp for lp in reduce if not _unit(sch.get(lp).extent)]
    return len(deep) == 1 and len(wide) <= 2


def _pool_like(sch: s_tir.Schedule, block: Any) -> bool:
    """A reduction that takes the max or the sum of loads, with no product (a pool)."""
    import tvm

    body = sch.get(block).body
    if not isinstance(body, tirx.BufferStore) or not isinstance(body.value, (tirx.Max, tirx.Add)):
        return False
    return any(isinstance(operand, tvm.ir.TensorLoad) and not operand.source.same_as(body.buffer)
               for operand in (body.value.a, body.value.b))


class InnerSpatialReduction(ScheduleRule):  # type: ignore[misc]
    def __init__(self, vector: bool) -> None:
        # Without vectors a matmul gains nothing from the reorder (a load and store of the output per
        # multiply instead of a register accumulator: measured 121k -> 173k instructions on the MLP),
        # and a pool with rows longer than REGISTER_ROW loses (a load, a max or add and a store of the
        # output per tap: SqueezeNet's int8 3x3 max pools over 64-256 channels took 88 instructions an
        # output, ZFNet's LRN window sum 61).
        self.vector = vector

    def apply(self, func: tirx.PrimFunc, target: Any, tunable: bool) -> s_tir.Schedule | None:
        if not isinstance(func, tirx.PrimFunc):
            return None
        sch = s_tir.Schedule(func)
        found = _reduction(sch)
        if found is None:
            return None
        block, spatial, reduce = found
        extent = sch.get(spatial[-1]).extent
        if not isinstance(extent, tirx.IntImm) or extent.value < MIN_INNER_EXTENT:
            return None
        if not self.vector and (_matmul_like(sch, spatial, reduce)
                                or (_pool_like(sch, block) and extent.value > REGISTER_ROW)):
            return None  # scalar: the plain loop nest (or SingleReduction's) accumulates in a register
        sch.reorder(*spatial[:-1], *reduce, spatial[-1])
        sch.decompose_reduction(block, reduce[0])
        # Epilogues (bias, activation) run per row right after it is reduced: row-sized temporaries.
        if len(spatial) >= 2:
            for consumer in sch.get_consumers(block):
                with contextlib.suppress(s_tir.ScheduleError):
                    sch.reverse_compute_at(consumer, spatial[-2])
        return sch


class SingleReduction(ScheduleRule):  # type: ignore[misc]
    """dlight's CPU Reduction rule, for matmuls only.

    On kernels with several (softmax: max, then sum) it computes each output element's whole row
    again under the parallel axis, which on one core is quadratic: 108 M of the 126 M instructions
    of a SqueezeNet run went to its 1000-way softmax.
    """

    def __init__(self) -> None:
        from tvm.s_tir.dlight import cpu

        self.inner = cpu.Reduction()

    def apply(self, func: tirx.PrimFunc, target: Any, tunable: bool) -> Any:
        if not isinstance(func, tirx.PrimFunc):
            return None
        sch = s_tir.Schedule(func)
        found = _reduction(sch)
        # Only matmuls: on small convolutions the rule loses to the plain loop nest.
        if found is None or not _matmul_like(sch, found[1], found[2]):
            return None
        return self.inner.apply(func, target, tunable)


class InlineElementwise(ScheduleRule):  # type: ignore[misc]
    """Elementwise producers (dequantize, casts, adds, transposes) inlined into their consumers, for
    kernels no other rule schedules.

    As legalized, a fused chain like dequantize, dequantize, add, dequantize, add, quantize is one
    loop nest per op, each writing a float temporary the next reads back: about 39 instructions per
    element for a three-input Sum. Inlined it is one loop computing the same expressions in the same
    order per element, so the values do not change (the C path compiles with contraction off: no
    product and sum fused into one rounding where TVM wrote two).

    A concatenation then picks each element from one of its inputs with `if_then_else(c <= v, ..)`
    on the concatenated axis: a branch per element (about 10 instructions per byte of an int8
    concat). Its loop over that axis is partitioned at the inputs' offsets, one loop per input,
    which the simplifier leaves branch-free: the same elements copied.

    A per-channel lookup (channel_tables: `table[256 * c + x]`, c the innermost NHWC axis) has its
    innermost loop unrolled where it is short, so that each channel's row offset is a constant
    (about 12 instructions per element -> 5)."""

    def apply(self, func: tirx.PrimFunc, target: Any, tunable: bool) -> s_tir.Schedule | None:
        if not isinstance(func, tirx.PrimFunc):
            return None
        sch = s_tir.Schedule(func)
        infos = normalize_prim_func(sch)
        if infos is None:
            return None
        inlined = 0
        for info in infos[:-1]:  # the last block writes the kernel's output
            # One consumer only: inlined into two (softmax's exp into its sum and its division) it
            # would be computed twice.
            if not info.is_injective() or len(sch.get_consumers(info.block_rv)) != 1:
                continue
            try:
                sch.compute_inline(info.block_rv)
                inlined += 1
            except s_tir.ScheduleError:
                continue  # read through a non-injective pattern, or by a reduction's init: left as it is
        partitioned = _partition_at_offsets(sch)
        unrolled = _unroll_table_rows(sch)
        return sch if inlined or partitioned or unrolled else None


MAX_UNROLLED_ROWS = 32  # table rows (channels) per unrolled innermost loop


def _unroll_table_rows(sch: s_tir.Schedule) -> bool:
    """Unrolls the output block's innermost loop if it is short and picks the row of a gather: a
    load whose index holds both another load (the looked-up value) and that loop's variable."""
    import tvm
    import tvm_ffi

    output = _output_store(sch)
    if output is None or not output[0].iters:
        return False
    info, store = output
    inner = info.iters[-1]
    if not isinstance(inner.dom, int) or not 1 < inner.dom <= MAX_UNROLLED_ROWS:
        return False

    def outside_loads(expr: Any) -> Any:  # the index with every load in it replaced by 0
        return tvm_ffi.structural_map(expr, (tvm.ir.TensorLoad, lambda e: tirx.const(0, e.ty)))

    def picks_row(load: Any) -> bool:
        return any(_collect(i, tvm.ir.TensorLoad) for i in load.indices) and any(
            v.same_as(inner.var) for i in load.indices for v in _collect(outside_loads(i), tirx.Var))

    if not any(picks_row(load) for load in _collect(store.value, tvm.ir.TensorLoad)):
        return False
    sch.unroll(inner.loop_rv)
    return True


def _output_store(sch: s_tir.Schedule) -> tuple[Any, Any] | None:
    """The output block's info (normalize_prim_func) and its store, if its body is one store."""
    infos = normalize_prim_func(sch)
    if not infos or not isinstance(store := sch.get(infos[-1].block_rv).body, tirx.BufferStore):
        return None
    return infos[-1], store


def _collect(expr: Any, kind: Any) -> list[Any]:
    """The nodes of type `kind` in `expr`."""
    import tvm_ffi

    seen: list[Any] = []

    def keep(node: Any) -> Any:
        seen.append(node)
        return node

    tvm_ffi.structural_map(expr, (kind, keep))
    return seen


def _partition_at_offsets(sch: s_tir.Schedule) -> bool:
    """Partitions the output block's loop over the first axis its value selects on with
    `if_then_else(c <= v, ...)` (constant c, a concatenation's offsets) at those offsets."""
    import tvm

    output = _output_store(sch)
    if output is None:
        return False
    info, store = output
    offsets: dict[Any, set[int]] = {}
    select = tvm.ir.Op.get("prim.if_then_else")
    for call in _collect(store.value, tvm.ir.Call):
        cond = call.args[0] if call.op.same_as(select) else None
        if isinstance(cond, tirx.LE) and isinstance(cond.a, tirx.IntImm) and isinstance(cond.b, tirx.Var):
            offsets.setdefault(cond.b, set()).add(int(cond.a.value))
    for it in info.iters:
        cuts = sorted(c for c in offsets.get(it.var, ()) if isinstance(it.dom, int) and 0 < c < it.dom)
        if cuts:
            sch.loop_partition(it.loop_rv, [b - a for a, b in zip([0, *cuts], cuts, strict=False)] + [None])
            return True
    return False
