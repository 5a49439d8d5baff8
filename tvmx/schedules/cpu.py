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


class InnerSpatialReduction(ScheduleRule):  # type: ignore[misc]
    def apply(self, func: tirx.PrimFunc, target: Any, tunable: bool) -> s_tir.Schedule | None:
        if not isinstance(func, tirx.PrimFunc):
            return None
        sch = s_tir.Schedule(func)
        infos = normalize_prim_func(sch)
        if infos is None:
            return None
        reductions = [b for b in infos if not b.is_injective()]
        if len(reductions) != 1:
            return None
        info = reductions[0]
        kinds = info.dom_kind()
        n_spatial = len(kinds) - len(kinds.lstrip("S"))
        if n_spatial == 0 or set(kinds[n_spatial:]) != {"R"}:
            return None
        loops = sch.get_loops(info.block_rv)
        if len(loops) != len(kinds):
            return None
        spatial, reduce = loops[:n_spatial], loops[n_spatial:]
        extent = sch.get(spatial[-1]).extent
        if not isinstance(extent, tirx.IntImm) or extent.value < MIN_INNER_EXTENT:
            return None
        sch.reorder(*spatial[:-1], *reduce, spatial[-1])
        sch.decompose_reduction(info.block_rv, reduce[0])
        # Epilogues (bias, activation) run per row right after it is reduced: row-sized temporaries.
        if len(spatial) >= 2:
            for consumer in sch.get_consumers(info.block_rv):
                with contextlib.suppress(s_tir.ScheduleError):
                    sch.reverse_compute_at(consumer, spatial[-2])
        return sch
