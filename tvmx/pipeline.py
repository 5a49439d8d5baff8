"""The Python API behind `tvmx compile`: run the stages in order over one build directory."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from tvmx import __version__
from tvmx.build.builddir import BuildDir, sha256_file
from tvmx.errors import InputError, TvmxError
from tvmx.options import Options
from tvmx.simulator.extension import find_gxx
from tvmx.simulator.spike import spike_version
from tvmx.stages.context import StageContext
from tvmx.stages.registry import STAGES, Stage
from tvmx.target.data import SHIPPED, shipped_dir
from tvmx.target.files import referenced_files
from tvmx.target.model import Target
from tvmx.toolchain.command import Executor, version_line
from tvmx.toolchain.riscv import find_toolchain


def default_build_dir(model: Path, target: Target) -> Path:
    return Path("build") / f"{model.stem}-{target.name}"


@cache
def compiler_digest() -> str:
    """A digest of tvmx itself: every file of the package and of its shipped data (targets, configs,
    runtime), named relative to where it ships, so a checkout and a wheel of the same code agree."""
    return digest_of(Path(str(resources.files("tvmx"))), {name: shipped_dir(name) for name in SHIPPED})


def digest_of(package: Path, shipped: dict[str, Path]) -> str:
    files = {p.relative_to(package).as_posix(): p for p in _files_under(package)}
    for name, root in shipped.items():
        files.update({f"{name}/{p.relative_to(root).as_posix()}": p for p in _files_under(root)})
    h = hashlib.sha256(__version__.encode())
    for rel in sorted(files):
        h.update(rel.encode() + b"\0" + hashlib.sha256(files[rel].read_bytes()).digest())
    return h.hexdigest()


def _files_under(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"]


def input_files(model: Path, target: Target) -> dict[str, Path]:
    """Role -> every file a build reads besides tvmx's own: the model, the target and what it names."""
    return {"model": model, "target": target.path, **referenced_files(target)}


def tool_versions(target: Target) -> dict[str, str]:
    """The external tools whose version can change the build (`--version` first lines, cached per
    process). A tool that is missing is recorded as such: the stage that needs it fails with its own error."""
    def version(get: Callable[[], str]) -> str:
        try:
            return get()
        except TvmxError as exc:
            return f"unavailable: {exc.message}"

    def cc() -> str:
        tc = find_toolchain(target.cpu, target.toolchain)
        return f"{tc.describe()}: {tc.version()}"

    tools = {"cc": version(cc), "spike": version(spike_version)}
    if target.accelerator is not None:  # its header's tiling heuristics run on the host at compile time
        tools["host c++"] = version(lambda: version_line(find_gxx()))
    return tools


def build_key(model: Path, target: Target, options: Options) -> dict[str, Any]:
    """Everything whose change invalidates a finished build: files by content (not by path: a moved
    model is the same model), the tools' versions, tvmx itself and the options."""
    return {"compiler": compiler_digest(),
            "files": {role: sha256_file(path) for role, path in input_files(model, target).items()},
            "tools": tool_versions(target), "options": options.key(), "records": records_digest(options, target)}


def records_digest(options: Options, target: Target) -> str | None:
    """The tuning records compile would read (the tune stage applies them), by content."""
    from tvmx.tune.records import records_digest as digest
    from tvmx.tune.records import records_folder

    return digest(records_folder(options.records, target))


def inputs_record(model: Path, target: Target) -> dict[str, dict[str, str]]:
    """For manifest.json: where each keyed file was read from, with its digest."""
    return {role: {"path": str(path.resolve()), "sha256": sha256_file(path)}
            for role, path in input_files(model, target).items()}


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
                      "target_path": str(target.path.resolve()), "inputs": inputs_record(model, target)},
                force=force)
    ctx = StageContext(model, target, options, build, Executor(build.commands_log, dry_run=dry_run), log)
    artifact: Any = None
    with build.writing():  # a build killed at any moment has listed in its manifest every file it wrote
        for stage in STAGES[: last.index]:
            t0 = time.perf_counter()
            artifact = stage.run(ctx, artifact)
            log(f"  {stage.index:02d}-{stage.name:<9} {time.perf_counter() - t0:6.2f} s")
        seconds = time.perf_counter() - start
        if last is STAGES[-1] and not dry_run:
            build.finish({"compile_seconds": round(seconds, 3)}, [build.root / "model.elf", build.root / "io.json"])
    return CompileResult(build.root, last, artifact, seconds)
