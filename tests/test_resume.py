"""Resuming: an unchanged build is left untouched (bytes and mtimes), a changed one resumes at the
first stage whose inputs changed where the stage before can be reloaded, `--compile-from` resumes
exactly there or refuses with the reason, and `--depfile` names every file the build read."""

from __future__ import annotations

import json
import os
from pathlib import Path

import onnx
import pytest
from click.testing import Result
from helpers import assert_error
from helpers import tvmx as cli

from tvmx import samples
from tvmx.build.depfile import make_rule
from tvmx.errors import ExitCode
from tvmx.options import Options
from tvmx.pipeline import build_key, compile_model, stage_keys
from tvmx.stages.registry import STAGES, find_stage
from tvmx.target import load_target

pytestmark = pytest.mark.toolchain


@pytest.fixture
def model(tmp_path: Path) -> Path:
    path = tmp_path / "mlp.onnx"
    onnx.save(samples.mlp(softmax=False), str(path))
    return path


def tvmx(*args: str | Path) -> Result:
    return cli(*map(str, args))


def snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {p.relative_to(folder).as_posix(): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in folder.rglob("*") if p.is_file()}


def test_stage_keys_change_from_the_stage_that_reads_the_change(model: Path) -> None:
    target = load_target("rv64gc")
    base = stage_keys(build_key(model, target, Options()))
    opt = stage_keys(build_key(model, target, Options(opt_level=1)))
    shapes = stage_keys(build_key(model, target, Options(input_shapes={"x": (1, 8)})))
    assemble = find_stage("assemble").index - 1
    assert opt[:assemble] == base[:assemble] and opt[assemble] != base[assemble]
    assert all(a != b for a, b in zip(shapes, base, strict=True)), "the import reads the input shapes"


def test_an_unchanged_build_is_not_touched(model: Path, tmp_path: Path) -> None:
    out = tmp_path / "b"
    assert tvmx("compile", model, "-t", "rv64gc", "-o", out).exit_code == 0
    before = snapshot(out)
    again = tvmx("compile", model, "-t", "rv64gc", "-o", out)
    assert again.exit_code == 0 and "is up to date" in again.output
    assert snapshot(out) == before, "a no-op compile changed a file or its mtime"
    # --rebuild runs every stage, to the same ELF
    assert tvmx("compile", model, "-t", "rv64gc", "-o", out, "--rebuild").exit_code == 0
    after = snapshot(out)
    assert after["model.elf"][0] == before["model.elf"][0] and after["model.elf"][1] != before["model.elf"][1]


def test_an_assembler_option_resumes_at_assemble(model: Path, tmp_path: Path) -> None:
    target = load_target("rv64gc")
    out, fresh = tmp_path / "b", tmp_path / "fresh"
    compile_model(model, target, Options(), out)
    import_module = (out / "01-import" / "module.py").stat().st_mtime_ns
    result = compile_model(model, target, Options(opt_level=1), out, reuse=True)
    assert result.resumed_at is find_stage("assemble")
    assert (out / "01-import" / "module.py").stat().st_mtime_ns == import_module, "a reused stage was rewritten"
    compile_model(model, target, Options(opt_level=1), fresh)
    assert (out / "model.elf").read_bytes() == (fresh / "model.elf").read_bytes()
    manifest = json.loads((out / "manifest.json").read_text())
    assert [s["stage"] for s in manifest["stages"]] == [s.name for s in STAGES]
    assert [s.get("reused", False) for s in manifest["stages"]] == [True] * 5 + [False]
    # another model: nothing reusable, every stage runs
    onnx.save(samples.mlp(softmax=True), str(model))
    assert compile_model(model, target, Options(opt_level=1), out, reuse=True).resumed_at is None


def test_compile_from_resumes_there_or_says_why_not(model: Path, tmp_path: Path) -> None:
    out = tmp_path / "b"
    assert_error(tvmx("compile", model, "-t", "rv64gc", "-o", out, "--compile-from", "assemble"), ExitCode.USER_ERROR,
                 "cannot resume at assemble: stage import must run again (no earlier build")
    assert not out.exists(), "a refused resume created the build folder"
    assert tvmx("compile", model, "-t", "rv64gc", "-o", out).exit_code == 0
    elf = (out / "model.elf").read_bytes()
    done = tvmx("compile", model, "-t", "rv64gc", "-o", out, "--compile-from", "assemble")
    assert done.exit_code == 0 and "resumed at assemble" in done.output
    assert (out / "model.elf").read_bytes() == elf
    assert_error(tvmx("compile", model, "-t", "rv64gc", "-o", out, "--compile-from", "tune"), ExitCode.USER_ERROR,
                 "cannot resume at tune: relax keeps its output in memory only")
    # an edited intermediate file is not reused
    model_c = out / "05-codegen" / "model.c"
    model_c.write_text(model_c.read_text() + "\n/* edited */\n")
    assert_error(tvmx("compile", model, "-t", "rv64gc", "-o", out, "--compile-from", "assemble"), ExitCode.USER_ERROR,
                 "stage codegen must run again (its inputs or outputs changed")
    assert tvmx("compile", model, "-t", "rv64gc", "-o", out, "--compile-from", "import").exit_code == 0
    assert "edited" not in model_c.read_text()
    assert_error(tvmx("compile", model, "-t", "rv64gc", "-o", out, "--compile-from", "assemble", "--rebuild"),
                 ExitCode.USAGE, "--rebuild runs every stage")
    assert_error(tvmx("compile", model, "-t", "rv64gc", "-o", out, "--compile-from", "codegen",
                      "--compile-to", "lower"), ExitCode.USER_ERROR,
                 "--compile-from codegen comes after --compile-to lower")


def test_the_depfile_names_every_file_the_build_read(model: Path, tmp_path: Path) -> None:
    out, dep = tmp_path / "b", tmp_path / "b.d"
    assert tvmx("compile", model, "-t", "gemmini", "-o", out, "--depfile", dep, "--config", "debug").exit_code == 0
    text = dep.read_text()
    first = text.split("\n\n")[0]
    assert first.startswith(f"{out / 'model.elf'}: \\\n")
    target = load_target("gemmini")
    for needed in (model, target.path, target.path.parent / "gemmini" / "gemmini.h",
                   target.path.parent / "gemmini" / "spike" / "gemmini.cc",
                   target.path.parent.parent / "configs" / "debug.yaml", Path(samples.__file__)):
        assert f"  {needed}" in first, f"{needed} is not in the depfile"
    assert f"\n{model}:\n" in text, "each dependency has an empty rule (-MP)"
    mtime = dep.stat().st_mtime_ns
    assert tvmx("compile", model, "-t", "gemmini", "-o", out, "--depfile", dep, "--config", "debug").exit_code == 0
    assert dep.stat().st_mtime_ns == mtime, "an unchanged depfile was rewritten"
    assert_error(tvmx("compile", model, "-t", "rv64gc", "-o", tmp_path / "c", "--depfile", tmp_path / "no" / "x.d"),
                 ExitCode.USER_ERROR, "does not exist")
    assert not (tmp_path / "c").exists()


def test_make_rule_escapes_what_make_would_misread() -> None:
    rule = make_rule(Path("b/model.elf"), [Path("my model#1.onnx"), Path("$x:y")])
    assert rule.splitlines()[:3] == ["b/model.elf: \\", "  my\\ model\\#1.onnx \\", "  $$x\\:y"]


def test_a_no_op_is_fast_enough_to_measure(model: Path, tmp_path: Path) -> None:
    """Not a timing test: the no-op path must not run a stage (no stage folder's mtime moves)."""
    out = tmp_path / "b"
    compile_model(model, load_target("rv64gc"), Options(), out)
    stamps = {p: p.stat().st_mtime_ns for p in out.iterdir()}
    assert compile_model(model, load_target("rv64gc"), Options(), out, reuse=True).reused
    assert {p: p.stat().st_mtime_ns for p in out.iterdir()} == stamps
    assert os.listdir(out)
