"""Kill and resume: `tvmx compile` killed (SIGKILL to its process group) at seeded random moments
never leaves a build folder in which a file looks finished but is not, and compiling again into
that folder gives an ELF byte-identical to a clean build's.

After each kill: the manifest, if any, parses; every output of each stage it records is there with
its recorded sha256 (and, if it says complete, the build's own outputs too); every other file
under its final name is whole (equal to the clean build's: builds are reproducible across folders);
every file is listed in the manifest as created (so the next build may delete it). After the
re-run: complete, intact, and the same ELF.

TVMX_KILL_RUNS sets the number of kills (default 20).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from helpers import relu_add_model, save

from tvmx.build.builddir import MANIFEST_TMP, BuildDir, atomic_write, sha256_file
from tvmx.options import make_options
from tvmx.pipeline import compile_model
from tvmx.stages.registry import STAGES
from tvmx.target import load_target

RUNS = int(os.environ.get("TVMX_KILL_RUNS", "20"))
LOGS = {"manifest.json", "commands.sh"}  # rewritten or appended as the build goes: not artifacts
# Paths of the compiler driver's temporary objects differ from run to run.
NOT_REPRODUCIBLE = {"06-assemble/model.map"}


@dataclass
class Clean:
    files: dict[str, bytes]
    marks: list[float]  # seconds from the process start to its first manifest, then to each stage's end
    seconds: float  # the whole compile, process start to exit

    def windows(self) -> list[tuple[float, float]]:
        """When each stage ran (and the finishing after the last), as seen in the clean build."""
        ends = [*self.marks, self.seconds]
        return list(pairwise(ends))


def compile_argv(model: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "tvmx", "compile", str(model), "-t", "rv64gc", "-o", str(out)]


def files_of(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save(relu_add_model([1, 4]), tmp_path_factory.mktemp("model") / "m.onnx")


@pytest.fixture(scope="module")
def clean(model: Path, tmp_path_factory: pytest.TempPathFactory) -> Clean:
    """A clean build in a subprocess, timed: when its manifest appears and when each stage ends."""
    out = tmp_path_factory.mktemp("clean") / "b"
    t0 = time.perf_counter()
    proc = subprocess.Popen(compile_argv(model, out), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    marks: list[float] = []
    while proc.poll() is None:
        manifest = read_manifest(out)
        if manifest is not None:
            while len(marks) <= len(manifest["stages"]):  # one mark per stage that has ended, + the start
                marks.append(time.perf_counter() - t0)
        time.sleep(0.002)
    seconds = time.perf_counter() - t0
    assert proc.returncode == 0, proc.stderr.read() if proc.stderr else ""
    return Clean(files_of(out), marks or [0.0], seconds)


def kill_during(argv: list[str], folder: Path, stages_done: int, delay: float) -> bool:
    """Start `argv` in its own process group; once its manifest records `stages_done` finished stages
    (the next one is running), wait `delay` s and SIGKILL the group. False if it finished first."""
    scratch = folder.parent / f"{folder.name}.tmp"  # what the kill leaves of its temporary files stays here
    scratch.mkdir(exist_ok=True)
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                            env={**os.environ, "TMPDIR": str(scratch)})
    while proc.poll() is None:
        manifest = read_manifest(folder)
        if manifest is not None and len(manifest["stages"]) >= stages_done:
            break
        time.sleep(0.002)
    try:
        proc.wait(timeout=delay)
        return False
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        return True


def read_manifest(folder: Path) -> dict[str, Any] | None:
    path = folder / "manifest.json"
    return json.loads(path.read_text()) if path.is_file() else None  # a torn manifest fails here


def stage_at_kill(manifest: dict[str, Any] | None) -> str:
    if manifest is None:
        return "before the build folder"
    if manifest["complete"]:
        return "after the build"
    done = len(manifest["stages"])
    return STAGES[done].name if done < len(STAGES) else "finishing"


def recorded_outputs(manifest: dict[str, Any]) -> dict[str, str]:
    out = {rel: digest for stage in manifest["stages"] for rel, digest in stage["outputs"].items()}
    if manifest["complete"]:
        out.update(manifest["outputs"])
    return out


def check_nothing_half_finished(folder: Path, clean: Clean) -> None:
    manifest = read_manifest(folder)
    files = files_of(folder) if folder.is_dir() else {}
    if manifest is None:  # killed before its first manifest was renamed into place
        assert set(files) <= {MANIFEST_TMP}, f"files without a manifest: {sorted(files)}"
        return
    for rel, digest in recorded_outputs(manifest).items():
        assert rel in files and sha256_file(folder / rel) == digest, f"{rel}: recorded, but missing or changed"
    created = set(manifest["created"])
    for rel, data in files.items():
        assert rel in created, f"{rel}: left behind, but not listed as created"
        final = not Path(rel).name.startswith(".")
        if final and rel not in LOGS | NOT_REPRODUCIBLE:
            assert data == clean.files.get(rel), f"{rel}: under its final name, but not the finished file"


def check_complete(folder: Path, clean: Clean) -> None:
    manifest = read_manifest(folder)
    assert manifest is not None and manifest["complete"]
    check_nothing_half_finished(folder, clean)
    assert (folder / "model.elf").read_bytes() == clean.files["model.elf"]
    assert set(manifest["outputs"]) == {"model.elf", "io.json"}
    unlisted = set(files_of(folder)) - set(manifest["created"])
    assert not unlisted, unlisted


@pytest.mark.toolchain
@pytest.mark.slow
def test_killed_compile_resumes_to_the_same_elf(model: Path, clean: Clean, tmp_path: Path) -> None:
    target = load_target("rv64gc")
    # Seeded moments: a stage drawn at random, then a moment within its duration in the clean build,
    # counted from when the manifest shows it started (the stages last from 0.02 s to 2 s, and the
    # machine's load shifts them: moments counted from the process start would miss the short ones).
    windows = clean.windows()
    where: Counter[str] = Counter()
    for seed in range(RUNS):
        folder = tmp_path / f"kill{seed}"
        rng = random.Random(seed)
        stages_done = rng.randrange(len(windows))
        start, end = windows[stages_done]
        killed = kill_during(compile_argv(model, folder), folder, stages_done, rng.uniform(0, end - start))
        where[stage_at_kill(read_manifest(folder)) if killed else "not killed (finished)"] += 1
        check_nothing_half_finished(folder, clean)
        # the resume, into the same folder, as the CLI does it: at the first stage it cannot reuse
        compile_model(model, target, make_options(None), folder, reuse=True)
        check_complete(folder, clean)
    shown = ", ".join(f"{a:.2f}-{b:.2f}" for a, b in windows)
    print(f"\n{RUNS} kills, stage windows {shown} s: " + ", ".join(f"{k} {v}" for k, v in sorted(where.items())))
    assert where["not killed (finished)"] < RUNS  # the delays did reach into the build


# --- the same guarantees, moment by moment, without a compiler ----------------------------------

class Killed(BaseException):
    """Stands for SIGKILL: no `except Exception` cleans up after it."""


def small_build(root: Path) -> BuildDir:
    build = BuildDir(root)
    build.start({}, {})
    with build.writing():
        outputs = []
        for index, name in ((1, "import"), (2, "relax")):
            out = build.stage_dir(index, name) / "module.py"
            atomic_write(out, f"# {name}\n")
            outputs.append(out)
            build.record_stage(name, [], [out], {})
        atomic_write(root / "model.elf", b"\x7fELF")
        build.finish({}, [root / "model.elf"])
    return build


def test_killed_while_deleting_the_last_build_leaves_it_owned(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    small_build(tmp_path)
    deleted: list[Path] = []
    real_unlink = Path.unlink

    def unlink_then_die(self: Path, missing_ok: bool = False) -> None:
        if deleted:
            raise Killed
        deleted.append(self)
        real_unlink(self, missing_ok=missing_ok)

    monkeypatch.setattr(Path, "unlink", unlink_then_die)
    with pytest.raises(Killed):
        BuildDir(tmp_path).start({"new": 1}, {})
    monkeypatch.undo()
    manifest = read_manifest(tmp_path)
    assert manifest is not None and not manifest["complete"]  # nothing claims to be finished
    assert set(files_of(tmp_path)) <= set(manifest["created"])  # and it owns every file left
    BuildDir(tmp_path).start({"new": 1}, {})  # so the next build starts there, and deletes them
    assert set(files_of(tmp_path)) == {"manifest.json"}


def test_atomic_write_claims_a_file_before_it_exists(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    build = BuildDir(tmp_path)
    build.start({}, {})
    seen: list[tuple[str, set[str]]] = []
    real_replace = os.replace

    def replace_and_look(src: Any, dst: Any) -> None:  # at this moment a kill leaves `src` behind
        manifest = json.loads((tmp_path / "manifest.json").read_text())
        seen.append((Path(src).name, set(manifest["created"])))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace_and_look)
    with build.writing():
        atomic_write(build.stage_dir(1, "import") / "module.py", "x = 1\n")
    atomic_write(tmp_path / "outside-a-build.txt", "no manifest update")  # not while writing
    monkeypatch.undo()
    writes = [(name, created) for name, created in seen if name != MANIFEST_TMP]
    (tmp, created), (_, later) = writes
    assert {"01-import/module.py", f"01-import/{tmp}"} <= created
    assert "outside-a-build.txt" not in later


def test_a_complete_manifest_means_intact_outputs(tmp_path: Path) -> None:
    small_build(tmp_path)
    assert BuildDir(tmp_path).is_up_to_date({})
    (tmp_path / "model.elf").write_bytes(b"\x7fELF but not the one recorded")
    assert not BuildDir(tmp_path).is_up_to_date({})  # the build's own outputs are checked too
