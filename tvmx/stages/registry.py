"""One ordered table of stages (IREE's phase enum, clang's Types.def): it drives `tvmx stages`,
`--compile-to`, `dump-ir --stage` and the numbered build-directory layout."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib import import_module
from typing import Any

from tvmx.errors import InputError
from tvmx.stages.context import StageContext


def _lazy(module: str, function: str = "run") -> Callable[..., Any]:
    """A stage's function, imported on first call: listing the stages, or finding a build up to
    date, then loads neither ONNX nor TVM (most of a no-op compile's time otherwise)."""
    def call(*args: Any) -> Any:
        return getattr(import_module(f"tvmx.stages.{module}"), function)(*args)

    call.__qualname__ = f"{module}.{function}"
    return call


@dataclass(frozen=True)
class Stage:
    index: int
    name: str
    description: str
    produces: str
    run: Callable[[StageContext, Any], Any]
    # The parts of the build key this stage reads besides its predecessor's output (by prefix of the
    # part's name: see pipeline.build_key). A stage's own key chains its predecessor's, so a change
    # reruns the stage that reads it and every stage after; a part no stage names goes to the first.
    reads: tuple[str, ...] = ()
    # Rebuilds the stage's artifact from its files on disk, where that is cheaper than recomputing it:
    # a build can resume after such a stage. Stages 1-4 pass IR with the weights in memory (saving
    # and loading ResNet-50's takes longer than importing it again), so they have none.
    reload: Callable[[StageContext], Any] | None = None
    aliases: tuple[str, ...] = ()


STAGES: tuple[Stage, ...] = (
    Stage(1, "import", "ONNX -> Relax IRModule as imported", "01-import/module.py", _lazy("import_onnx"),
          reads=("compiler", "files.model", "options.input_shapes")),
    Stage(2, "relax", "graph passes and operator fusion into TIR kernels", "02-relax/module.py", _lazy("graph"),
          reads=("files.",), aliases=("relay",)),
    Stage(3, "tune", "a schedule for every kernel (tuning records or default)", "03-tune/schedules.json", _lazy("tune"),
          reads=("records", "tools.host c++")),
    Stage(4, "lower", "flat kernel call list on a static memory plan", "04-lower/plan.json", _lazy("lower")),
    Stage(5, "codegen", "plain C kernels, model.c, weights blob", "05-codegen/*.c", _lazy("codegen"),
          reload=_lazy("codegen", "reload")),
    Stage(6, "assemble", "cross-compile and link with the bare-metal runtime", "06-assemble/model.elf",
          _lazy("assemble"), reads=("options.", "tools.")),
)


def find_stage(name: str) -> Stage:
    for stage in STAGES:
        if name == stage.name or name in stage.aliases:
            return stage
    names = ", ".join(s.name for s in STAGES)
    raise InputError(f"unknown stage '{name}'", hint=f"stages: {names} (relay is an alias of relax)")


def stage_names() -> list[str]:
    return [n for s in STAGES for n in (s.name, *s.aliases)]
