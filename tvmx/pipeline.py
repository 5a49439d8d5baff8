"""The Python API behind `tvmx compile`: run the stages in order over one build directory."""

from __future__ import annotations

import hashlib
import json
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


# Shipped data that is part of tvmx itself; the shipped targets and configs are not: a build keys the
# target and the files it names, and the config's values, that it uses (an edit of another shipped
# target rebuilds nothing).
COMPILER_DATA = ("runtime",)


def _compiler_roots() -> tuple[Path, dict[str, Path]]:
    """The package's folder and its runtime's (which a checkout keeps elsewhere than a wheel)."""
    return Path(str(resources.files("tvmx"))), {name: shipped_dir(name) for name in COMPILER_DATA}


@cache
def compiler_digest() -> str:
    """A digest of tvmx itself: every file of the package and of its runtime, named relative to where
    it ships, so a checkout and a wheel of the same code agree."""
    return digest_of(*_compiler_roots())


def compiler_files() -> dict[str, Path]:
    """tvmx's own files: the package and its runtime, by the name they ship under."""
    return shipped_files(*_compiler_roots())


def shipped_files(package: Path, shipped: dict[str, Path]) -> dict[str, Path]:
    """The package's files and the `shipped` folders', without the data that is not tvmx itself
    (a wheel carries the targets and configs inside the package)."""
    other = set(SHIPPED) - set(COMPILER_DATA)
    files = {rel: p for p in _files_under(package) if (rel := p.relative_to(package).as_posix()).split("/")[0]
             not in other}
    for name, root in shipped.items():
        files.update({f"{name}/{p.relative_to(root).as_posix()}": p for p in _files_under(root)})
    return files


def digest_of(package: Path, shipped: dict[str, Path]) -> str:
    files = shipped_files(package, shipped)
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


def build_inputs(model: Path, target: Target, options: Options) -> list[Path]:
    """Every file a build reads, for a depfile: the model, the target and the files it names, the
    config, this target's tuning records, and tvmx's own files."""
    from tvmx.tune.records import TUNING_RECORDS, WORKLOADS, records_folder

    records = records_folder(options.records, target)
    files = [*input_files(model, target).values(), *([options.config] if options.config else []),
             *(f for f in (records / WORKLOADS, records / TUNING_RECORDS) if f.is_file())]
    own = compiler_files()
    return files + [own[rel] for rel in sorted(own)]


def records_digest(options: Options, target: Target) -> str | None:
    """The tuning records compile would read (the tune stage applies them), by content."""
    from tvmx.tune.records import records_digest as digest
    from tvmx.tune.records import records_folder

    return digest(records_folder(options.records, target))


def inputs_record(model: Path, target: Target) -> dict[str, dict[str, str]]:
    """For manifest.json: where each keyed file was read from, with its digest."""
    return {role: {"path": str(path.resolve()), "sha256": sha256_file(path)}
            for role, path in input_files(model, target).items()}


def stage_keys(key: dict[str, Any]) -> list[str]:
    """One digest per stage: its predecessor's, then the key parts it reads (Stage.reads)."""
    parts = {f"{name}.{sub}" if isinstance(value, dict) else name: v
             for name, value in key.items() for sub, v in (value.items() if isinstance(value, dict) else [("", value)])}
    owner = {part: next((s.name for s in STAGES if any(part.startswith(p) for p in s.reads)), STAGES[0].name)
             for part in parts}
    keys, previous = [], ""
    for stage in STAGES:
        mine = {part: parts[part] for part in sorted(parts) if owner[part] == stage.name}
        previous = hashlib.sha256((previous + json.dumps(mine, sort_keys=True)).encode()).hexdigest()
        keys.append(previous)
    return keys


def resume_point(build: BuildDir, keys: list[str], last: Stage, compile_from: Stage | None) -> int:
    """How many stages of the earlier build in `build` this one reuses: those whose keys are unchanged
    and whose outputs are intact, up to the last stage that can reload its artifact, and never `last`
    itself. With `compile_from`, exactly the stages before it, or an error that says why not."""
    reusable = build.reusable_stages([s.name for s in STAGES], keys)
    reloadable = [s.index for s in STAGES[:min(reusable, last.index - 1)] if s.reload is not None]
    if compile_from is None:
        return max(reloadable, default=0)
    wanted = compile_from.index - 1
    if wanted == 0:
        return 0
    if STAGES[wanted - 1].reload is None:
        can = ", ".join(["import", *(STAGES[i + 1].name for i, s in enumerate(STAGES[:-1]) if s.reload)])
        raise InputError(f"cannot resume at {compile_from.name}: {STAGES[wanted - 1].name} keeps its output "
                         "in memory only (reloading its IR with the weights costs more than recomputing it)",
                         hint=f"--compile-from takes: {can}")
    if reusable < wanted:
        stage = STAGES[reusable]
        why = ("its inputs or outputs changed since the earlier build" if build.has_previous_stage(stage.name)
               else "no earlier build of it is in the folder")
        raise InputError(f"cannot resume at {compile_from.name}: stage {stage.name} must run again ({why})",
                         hint="compile without --compile-from (tvmx resumes by itself where it can)")
    return wanted


@dataclass
class CompileResult:
    build_dir: Path
    last_stage: Stage
    artifact: Any
    seconds: float
    reused: bool = False  # the whole build was up to date: nothing was touched
    resumed_at: Stage | None = None  # the first stage that ran, after reused ones


def compile_model(
    model: Path,
    target: Target,
    options: Options,
    build_dir: Path | None = None,
    *,
    compile_to: Stage | None = None,
    compile_from: Stage | None = None,
    reuse: bool = False,
    dry_run: bool = False,
    force: bool = False,
    log: Callable[[str], None] = lambda _m: None,
) -> CompileResult:
    """`reuse`: leave an up-to-date build untouched and resume a changed one at the first stage whose
    inputs changed (where the stage before can be reloaded); `compile_from`: resume exactly there.
    `force`: build into a folder that holds files tvmx did not create (deleting none of them)."""
    if not model.is_file():  # refused before the build folder is touched
        raise InputError(f"model file not found: {model}", hint="check the path")
    build = BuildDir(build_dir or default_build_dir(model, target))
    last = compile_to or STAGES[-1]
    if compile_from is not None and compile_from.index > last.index:
        raise InputError(f"--compile-from {compile_from.name} comes after --compile-to {last.name}",
                         hint="stages run in this order: " + ", ".join(s.name for s in STAGES))
    start = time.perf_counter()
    key = build_key(model, target, options)
    if reuse and compile_from is None and last is STAGES[-1] and build.is_up_to_date(key):
        log(f"{build.root}: up to date")
        return CompileResult(build.root, last, None, 0.0, reused=True)
    keys = stage_keys(key)
    skip = resume_point(build, keys, last, compile_from) if reuse or compile_from else 0
    build.start(key, {"model": str(model.resolve()), "target_name": target.name,
                      "target_path": str(target.path.resolve()), "inputs": inputs_record(model, target)},
                force=force, keep_stages=[s.name for s in STAGES[:skip]])
    ctx = StageContext(model, target, options, build, Executor(build.commands_log, dry_run=dry_run), log)
    artifact: Any = None
    with build.writing():  # a build killed at any moment has listed in its manifest every file it wrote
        if skip:
            log(f"  stages up to {STAGES[skip - 1].name} reused from the earlier build")
            artifact = STAGES[skip - 1].reload(ctx)  # type: ignore[misc]
        for stage in STAGES[skip: last.index]:
            t0 = time.perf_counter()
            artifact = stage.run(ctx, artifact)
            build.stage_done(stage.name, keys[stage.index - 1], time.perf_counter() - t0)
            log(f"  {stage.index:02d}-{stage.name:<9} {time.perf_counter() - t0:6.2f} s")
        seconds = time.perf_counter() - start
        if last is STAGES[-1] and not dry_run:
            build.finish({"compile_seconds": round(seconds, 3)}, [build.root / "model.elf", build.root / "io.json"])
    return CompileResult(build.root, last, artifact, seconds, resumed_at=STAGES[skip] if skip else None)
