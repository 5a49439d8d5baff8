"""One ordered table of stages (IREE's phase enum, clang's Types.def): it drives `tvmx stages`,
`--compile-to`, `dump-ir --stage` and the numbered build-directory layout."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tvmx.errors import InputError
from tvmx.stages import assemble, codegen, graph, import_onnx, lower, tune
from tvmx.stages.context import StageContext


@dataclass(frozen=True)
class Stage:
    index: int
    name: str
    description: str
    produces: str
    run: Callable[[StageContext, Any], Any]
    aliases: tuple[str, ...] = ()


STAGES: tuple[Stage, ...] = (
    Stage(1, "import", "ONNX -> Relax IRModule as imported", "01-import/module.py", import_onnx.run),
    Stage(2, "relax", "graph passes and operator fusion into TIR kernels", "02-relax/module.py", graph.run,
          aliases=("relay",)),
    Stage(3, "tune", "a schedule for every kernel (tuning records or default)", "03-tune/schedules.json", tune.run),
    Stage(4, "lower", "flat kernel call list on a static memory plan", "04-lower/plan.json", lower.run),
    Stage(5, "codegen", "plain C kernels, model.c, weights blob", "05-codegen/*.c", codegen.run),
    Stage(6, "assemble", "cross-compile and link with the bare-metal runtime", "06-assemble/model.elf",
          assemble.run),
)


def find_stage(name: str) -> Stage:
    for stage in STAGES:
        if name == stage.name or name in stage.aliases:
            return stage
    names = ", ".join(s.name for s in STAGES)
    raise InputError(f"unknown stage '{name}'", hint=f"stages: {names} (relay is an alias of relax)")


def stage_names() -> list[str]:
    return [n for s in STAGES for n in (s.name, *s.aliases)]
