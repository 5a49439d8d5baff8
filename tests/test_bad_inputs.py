"""The bad-input corpus: every file under tests/data/bad/ (and every tests/data/targets/invalid_*.yaml)
given to the `tvmx` command line ends in exactly one `tvmx: error:` line, a hint and the expected exit
code; never a traceback, never exit 70.

A case is tests/data/bad/**/NAME.expect, one `key: value` a line (`#` starts a comment):
  args:  the tvmx command line, with {file}: the case's NAME.* file or NAME/ folder, copied into a fresh
         folder {dir}; {tmp}: a scratch folder; {model}: a valid small model; {build}: a finished build of
         it; {elf}: NAME.c built for rv64gc
  exit:  the exit code
  error: a fragment the error line must contain (repeatable)
  env:   KEY=VALUE set for the command (repeatable)
  needs: pytest markers of the tools the case needs (toolchain, spike)
  xfail: a known bug that still ends wrongly, and where it is (strict: a fix makes the case fail until
         the line is removed)
The binary files are written by tests/data/bad/make_corpus.py.
"""

from __future__ import annotations

import importlib.util
import shlex
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from helpers import DATA, relu_add_model, save

from tvmx.cli import cli
from tvmx.errors import ExitCode
from tvmx.target import load_target
from tvmx.toolchain.command import Executor
from tvmx.toolchain.riscv import find_toolchain

BAD = DATA / "bad"


@dataclass
class Case:
    name: str
    data: Path | None
    args: str
    exit: int
    errors: list[str]
    env: dict[str, str] = field(default_factory=dict)
    needs: list[str] = field(default_factory=list)
    xfail: str | None = None


def parse_case(expect: Path) -> Case:
    fields: dict[str, list[str]] = {}
    for line in expect.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, value = line.partition(":")
            fields.setdefault(key.strip(), []).append(value.strip())
    siblings = [p for p in expect.parent.iterdir() if p.stem == expect.stem and p != expect]
    env = dict(e.split("=", 1) for e in fields.get("env", []))
    return Case(f"{expect.parent.name}/{expect.stem}", siblings[0] if siblings else None, fields["args"][0],
                int(fields["exit"][0]), fields.get("error", []), env,
                [m for v in fields.get("needs", []) for m in v.split()], (fields.get("xfail") or [None])[0])


def invalid_target_case(path: Path) -> Case:
    """tests/data/targets/invalid_*.yaml through the command line (their first line: `# expect: TEXT`)."""
    first = path.read_text().splitlines()[0]
    fragment = first.removeprefix("# expect:").strip() if first.startswith("# expect:") else ""
    return Case(f"targets/{path.stem}", path, "compile {model} -t {file} -o {tmp}/b", ExitCode.USER_ERROR,
                [f"{path.name}: $.", fragment])


CASES = [parse_case(p) for p in sorted(BAD.rglob("*.expect"))] + [
    invalid_target_case(p) for p in sorted((DATA / "targets").glob("invalid_*.yaml"))]


def _param(case: Case) -> object:
    marks = [getattr(pytest.mark, m) for m in case.needs]
    if case.xfail:
        marks.append(pytest.mark.xfail(strict=True, reason=case.xfail))
    return pytest.param(case, id=case.name, marks=marks)


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save(relu_add_model([1, 4]), tmp_path_factory.mktemp("model") / "m.onnx")


@pytest.fixture(scope="module")
def build(model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("build") / "b"
    result = CliRunner().invoke(cli, ["compile", str(model), "-t", "rv64gc", "-o", str(folder)])
    assert result.exit_code == 0, result.output
    return folder


def build_c(source: Path, out_dir: Path) -> Path:
    target = load_target("rv64gc")
    tc = find_toolchain(target.cpu, target.toolchain)
    elf = out_dir / f"{source.stem}.elf"
    Executor().run(tc.build_elf([source], elf, map_file=out_dir / f"{source.stem}.map"))
    return elf


def substitutions(case: Case, tmp_path: Path, request: pytest.FixtureRequest) -> dict[str, str]:
    folder = tmp_path / "case"
    folder.mkdir()
    subs = {"dir": str(folder), "tmp": str(tmp_path)}
    args = case.args + " ".join(case.env.values())
    if "{model}" in args:
        subs["model"] = str(request.getfixturevalue("model"))
    if "{build}" in args:
        subs["build"] = str(request.getfixturevalue("build"))
    if case.data is not None:
        copy = folder / case.data.name
        if case.data.is_dir():
            shutil.copytree(case.data, copy)
        else:
            shutil.copyfile(case.data, copy)
        subs["file"] = str(copy)
        if "{elf}" in args:
            subs["elf"] = str(build_c(copy, folder))
    return subs


def assert_one_clean_error(result: Result, case: Case) -> None:
    assert "Traceback" not in result.output, result.output
    assert result.exit_code != ExitCode.INTERNAL, result.output
    lines = result.stderr.splitlines()
    errors = [ln for ln in lines if ln.startswith("tvmx: error: ")]
    assert len(errors) == 1, result.stderr
    assert any(ln.startswith("  hint: ") for ln in lines), result.stderr
    assert result.exit_code == case.exit, result.output
    for fragment in case.errors:
        assert fragment in errors[0], f"{fragment!r} not in {errors[0]!r}"


@pytest.mark.parametrize("case", [_param(c) for c in CASES])
def test_bad_input_ends_in_one_error_line(case: Case, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    subs = substitutions(case, tmp_path, request)
    argv = [arg.format(**subs) for arg in shlex.split(case.args)]
    env = {k: v.format(**subs) for k, v in case.env.items()}
    result = CliRunner(env=env).invoke(cli, argv)
    assert_one_clean_error(result, case)


def test_corpus_covers_every_kind() -> None:
    """Each kind of bad input the corpus promises is there, and every case names its expectation."""
    kinds = {c.name.split("/")[0] for c in CASES}
    assert {"onnx", "targets", "npz", "flags", "guest", "build"} <= kinds
    for case in CASES:
        assert case.args and case.exit not in (ExitCode.OK, ExitCode.INTERNAL), case.name
        if case.data is None:
            assert "{file}" not in case.args and "{elf}" not in case.args, case.name


def test_corpus_is_what_make_corpus_writes() -> None:
    """The committed binary cases are the script's current output (else: run make_corpus.py)."""
    spec = importlib.util.spec_from_file_location("make_corpus", BAD / "make_corpus.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    stale = [rel for rel, data in module.corpus().items() if (BAD / rel).read_bytes() != data]
    assert not stale, f"run tests/data/bad/make_corpus.py: {stale}"
