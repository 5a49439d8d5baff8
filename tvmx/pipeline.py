"""The Python API behind `tvmx compile`: run the stages in order over one build directory."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from tvmx import __version__
from tvmx.build.builddir import BuildDir, sha256_file
from tvmx.errors import InputError
from tvmx.options import Options
from tvmx.stages.context import StageContext
from tvmx.stages.registry import STAGES, Stage
from tvmx.target.model import Target
from tvmx.toolchain.command import Executor


def default_build_dir(model: Path, target: Target) -> Path:
    return Path("build") / f"{model.stem}-{target.name}"


@cache
def _compiler_digest() -> str:
    """A digest of tvmx's own code and runtime: a changed compiler invalidates earlier builds."""
    h = hashlib.sha256(__version__.encode())
    package = Path(__file__).resolve().parent
    for path in sorted(package.rglob("*")):
        if path.suffix in (".py", ".c", ".h", ".S", ".ld", ".json") and "__pycache__" not in path.parts:
            h.update(path.relative_to(package).as_posix().encode())
            h.update(path.read_bytes())
    return h.hexdigest()


def build_key(model: Path, target: Target, options: Options) -> dict[str, Any]:
    """Everything whose change invalidates a finished build."""
    return {"compiler": _compiler_digest(), "model": sha256_file(model), "target": sha256_file(target.path),
            "options": options.key()}


@dataclass
class CompileResult:
    build_dir: Path
    last_stage: Stage
    artifact: Any
    seconds: float
    reused: bool = False


def compile_model(
    model: Path,
    target: Target,
    options: Options,
    build_dir: Path | None = None,
    *,
    compile_to: Stage | None = None,
    reuse: bool = False,
    dry_run: bool = False,
    force: bool = False,
    log: Callable[[str], None] = lambda _m: None,
) -> CompileResult:
    """`force`: build into a folder that holds files tvmx did not create (deleting none of them)."""
    if not model.is_file():  # refused before the build folder is touched
        raise InputError(f"model file not found: {model}", hint="check the path")
    build = BuildDir(build_dir or default_build_dir(model, target))
    last = compile_to or STAGES[-1]
    start = time.perf_counter()
    key = build_key(model, target, options)
    if reuse and last is STAGES[-1] and build.is_up_to_date(key):
        log(f"{build.root}: up to date")
        return CompileResult(build.root, last, None, 0.0, reused=True)
    build.start(key, {"model": str(model.resolve()), "target_name": target.name,
                      "target_path": str(target.path.resolve())}, force=force)
    ctx = StageContext(model, target, options, build, Executor(build.commands_log, dry_run=dry_run), log)
    artifact: Any = None
    for stage in STAGES[: last.index]:
        t0 = time.perf_counter()
        artifact = stage.run(ctx, artifact)
        log(f"  {stage.index:02d}-{stage.name:<9} {time.perf_counter() - t0:6.2f} s")
    seconds = time.perf_counter() - start
    if last is STAGES[-1] and not dry_run:
        build.finish({"compile_seconds": round(seconds, 3)})
    return CompileResult(build.root, last, artifact, seconds)
