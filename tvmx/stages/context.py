"""What every stage receives. Stages never see the command line."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from tvmx.accelerators import Accelerator, accelerator_for
from tvmx.build.builddir import BuildDir
from tvmx.options import Options
from tvmx.target.model import Target
from tvmx.toolchain.command import Executor
from tvmx.toolchain.riscv import Toolchain, find_toolchain

if TYPE_CHECKING:
    from tvmx.tune.records import Records


@dataclass
class StageContext:
    model_path: Path
    target: Target
    options: Options
    build: BuildDir
    executor: Executor
    log: Callable[[str], None] = field(default=lambda _msg: None)

    @cached_property
    def toolchain(self) -> Toolchain:
        return find_toolchain(self.target.cpu, self.target.toolchain)

    @cached_property
    def accelerator(self) -> Accelerator | None:
        return accelerator_for(self.target)

    @cached_property
    def offload_functions(self) -> dict[str, str]:
        """op -> header function, from the target's declared intrinsics (empty for CPU targets)."""
        accel = self.target.accelerator or {}
        return {i["op"]: i["function"] for i in accel.get("intrinsics", [])}

    @cached_property
    def records(self) -> Records | None:
        """This target's tuning records (`--records DIR`, else the per-user cache), if any exist."""
        from tvmx.tune.records import open_existing

        return open_existing(self.options.records, self.target)

    def stage_dir(self, index: int, name: str) -> Path:
        return self.build.stage_dir(index, name)
