"""Building Spike C++ extensions into the content-addressed cache."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tvmx.errors import CommandFailedError, ToolNotFoundError
from tvmx.simulator import extension
from tvmx.toolchain.command import Command, Executor, Result

REPO = Path(__file__).resolve().parents[2]
GEMMINI_CC = REPO / "targets" / "gemmini" / "spike" / "gemmini.cc"
TINY = """#include <riscv/extension.h>
struct tiny_t : public extension_t {
  std::vector<insn_desc_t> get_instructions(const processor_t&) override { return {}; }
  std::vector<disasm_insn_t*> get_disasms(const processor_t*) override { return {}; }
  const char* name() const override { return "tiny"; }
};
REGISTER_EXTENSION(tiny, []() { return new tiny_t; })
"""


class Recorder(Executor):
    def __init__(self) -> None:
        super().__init__()
        self.commands: list[Command] = []

    def run(self, cmd: Command, **kwargs: object) -> Result:  # type: ignore[override]
        self.commands.append(cmd)
        return super().run(cmd, **kwargs)  # type: ignore[arg-type]


pytestmark = [pytest.mark.spike, pytest.mark.gxx]  # builds C++ with g++


def test_builds_once_then_reuses(tmp_path: Path) -> None:
    src = tmp_path / "tiny.cc"
    src.write_text(TINY)
    ex = Recorder()
    lib = extension.build_extension(src, "tiny", ex, cache_dir=tmp_path / "cache")
    assert lib.is_file() and lib.name == "libtiny.so"
    assert "-D_GLIBCXX_USE_CXX11_ABI=0" in ex.commands[0].argv
    assert extension.build_extension(src, "tiny", ex, cache_dir=tmp_path / "cache") == lib
    assert len(ex.commands) == 1, "the second call must come from the cache"
    assert [p.name for p in lib.parent.iterdir()] == ["libtiny.so"], "no temporary files left"


def test_key_follows_the_source(tmp_path: Path) -> None:
    src = tmp_path / "tiny.cc"
    src.write_text(TINY)
    first = extension.build_extension(src, "tiny", Executor(), cache_dir=tmp_path)
    src.write_text(TINY + "// changed\n")
    second = extension.build_extension(src, "tiny", Executor(), cache_dir=tmp_path)
    assert first != second and first.parent.parent == second.parent.parent


def test_compile_error_leaves_nothing(tmp_path: Path) -> None:
    src = tmp_path / "broken.cc"
    src.write_text("this is not C++\n")
    with pytest.raises(CommandFailedError):
        extension.build_extension(src, "broken", Executor(), cache_dir=tmp_path / "cache")
    assert not any(p.is_file() for p in (tmp_path / "cache").rglob("*"))


def test_missing_gxx_is_a_tool_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CXX", "no-such-g++-tvmx")
    with pytest.raises(ToolNotFoundError) as info:
        extension.build_extension(GEMMINI_CC, "gemmini", Executor(), cache_dir=tmp_path)
    assert info.value.hint and "g++" in info.value.hint


def test_cache_root_follows_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert extension.cache_root() == tmp_path / "tvmx" / "spike-ext"


def test_dry_run_builds_what_is_needed_now(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Its caller loads the library right away, so a dry run builds it (into the cache) and says so."""
    src = tmp_path / "tiny.cc"
    src.write_text(TINY)
    log = tmp_path / "commands.sh"
    lib = extension.build_extension(src, "tiny", Executor(log, dry_run=True), cache_dir=tmp_path / "cache")
    assert lib.is_file()
    out = capsys.readouterr().out
    assert "needed now, so run for real" in out and str(src) in out
    assert str(src) in log.read_text(), "the command is in the log like every other"
    again = extension.build_extension(src, "tiny", Executor(log, dry_run=True), cache_dir=tmp_path / "cache")
    assert again == lib and capsys.readouterr().out == "", "a cached library needs no command"


def test_a_command_that_writes_nothing_is_a_failed_command(tmp_path: Path) -> None:
    final = tmp_path / "cache" / "libx.so"
    with pytest.raises(CommandFailedError, match="wrote no"):
        extension.build_once(final, lambda out: Command((sys.executable, "-c", "pass")), Executor())
    assert not final.exists() and list(final.parent.iterdir()) == []
