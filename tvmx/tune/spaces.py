"""The search spaces MetaSchedule explores, per kind of kernel.

- CPU kernels: MetaSchedule's rule-based space (post-order apply of multi-level tiling, inlining,
  rfactor, unrolling, compute location), passed explicitly: TVM has no default rules for the `c`
  target tvmx generates code with. Bare metal has one hart and no thread pool, so nothing is
  parallelised; loops are left for clang to vectorize where the CPU has `v` (tvmx's C pipeline
  turns TVM's vector loops into serial ones).
- Accelerator kernels: the schedules the accelerator offers (`Accelerator.tuning_space`), a short
  explicit list, measured in order without repeats (the default first). Each is a MetaSchedule
  schedule: a `sample_categorical` decision plus an annotation of the kernel's block with its call
  arguments; the trace (the record) holds the arguments themselves, so a record stays meaningful
  when the space changes.
"""

from __future__ import annotations

import sys
import types
from typing import Any

from tvmx.accelerators import KernelSchedule

ARGS_ANNOTATION = "tvmx.accelerator_args"


def quiet_tensor_intrin() -> None:
    """`TuneContext()` imports tvm.s_tir.tensor_intrin, which parses ~500 GPU/CPU intrinsics (about
    38 s); tvmx registers its own and needs none of them."""
    name = "tvm.s_tir.tensor_intrin"
    if name not in sys.modules:
        sys.modules[name] = types.ModuleType(name)


def cpu_rules(vector: bool) -> tuple[list[Any], list[Any], dict[Any, float]]:
    """Schedule rules, postprocessors and mutators (with probabilities) for CPU kernels."""
    from tvm.s_tir import meta_schedule as ms

    rules = [
        ms.schedule_rule.InlineConstantScalars(),
        ms.schedule_rule.AutoInline(into_producer=False, into_consumer=True, inline_const_tensor=True,
                                    disallow_if_then_else=True, require_injective=True, require_ordered=True,
                                    disallow_op=["tirx.exp"]),
        ms.schedule_rule.AddRFactor(max_jobs_per_core=1, max_innermost_factor=64),
        ms.schedule_rule.MultiLevelTiling(structure="SSRSRS", tile_binds=None, max_innermost_factor=64,
                                          vector_load_lens=None, reuse_read=None,
                                          reuse_write=ms.schedule_rule.ReuseType(req="may", levels=[1, 2],
                                                                                 scope="global")),
        # max_jobs_per_core=-1: no parallel loops; vectorize only where clang can use RVV
        ms.schedule_rule.ParallelizeVectorizeUnroll(max_jobs_per_core=-1, max_vectorize_extent=64 if vector else -1,
                                                    unroll_max_steps=[0, 16, 64, 512], unroll_explicit=True),
        ms.schedule_rule.RandomComputeLocation(),
    ]
    postprocs = [ms.postproc.DisallowDynamicLoop(), ms.postproc.RewriteParallelVectorizeUnroll(),
                 ms.postproc.RewriteReductionBlock()]
    mutators = {ms.mutator.MutateTileSize(): 0.9, ms.mutator.MutateComputeLocation(): 0.05,
                ms.mutator.MutateUnroll(): 0.03}
    return rules, postprocs, mutators


def cpu_space(vector: bool) -> Any:
    from tvm.s_tir import meta_schedule as ms

    rules, postprocs, mutators = cpu_rules(vector)
    return ms.space_generator.PostOrderApply(sch_rules=rules, postprocs=postprocs, mutator_probs=mutators)


def accelerator_block(sch: Any) -> Any:
    """The one block an accelerator kernel's tensorized call sits in."""
    func = sch.mod["main"]
    return sch.get_sblock(f"accel_{func.attrs['tvmx.offloaded']}_o")


def accelerator_candidate(workload: Any, candidates: list[KernelSchedule], index: int) -> Any:
    """Candidate `index` of the accelerator's space as a MetaSchedule schedule: the choice is a
    sample_categorical decision, the arguments an annotation of the kernel's block (both in its trace)."""
    from tvm import s_tir

    sch = s_tir.Schedule(workload)
    n = len(candidates)
    sch.sample_categorical(list(range(n)), [1.0 / n] * n, decision=index)
    sch.annotate(accelerator_block(sch), ARGS_ANNOTATION, ",".join(str(a) for a in candidates[index].args))
    return sch


def accelerator_args(sch: Any) -> tuple[int, ...] | None:
    """The call arguments a (replayed) accelerator schedule chose, or None if it chose none."""
    block = sch.get(accelerator_block(sch))
    value = block.annotations.get(ARGS_ANNOTATION)
    if value is None:
        return None
    text = str(value.value if hasattr(value, "value") else value)
    return tuple(int(a) for a in text.split(",")) if text else ()
