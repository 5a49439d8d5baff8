from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tvmx.errors import CommandFailedError, ToolNotFoundError
from tvmx.toolchain.command import Command, Executor


def test_shell_line_quotes_every_word() -> None:
    cmd = Command(("cc", "-DNAME=a b", "x;y"), cwd=Path("/tmp/a dir"), env={"K": "v w"})
    assert cmd.shell_line() == "(cd '/tmp/a dir' && K='v w' cc '-DNAME=a b' 'x;y')"


def test_commands_are_logged_in_order(tmp_path: Path) -> None:
    log = tmp_path / "commands.sh"
    ex = Executor(log)
    ex.run(Command((sys.executable, "-c", "print(1)"), description="first"))
    ex.run(Command((sys.executable, "-c", "print(2)")))
    text = log.read_text()
    assert text.startswith("#!/bin/sh")
    assert text.index("# first") < text.index("print(1)") < text.index("print(2)")


def test_failure_carries_argv_and_log_tail(tmp_path: Path) -> None:
    ex = Executor(tmp_path / "commands.sh")
    with pytest.raises(CommandFailedError) as info:
        ex.run(Command((sys.executable, "-c", "import sys; print('boom'); sys.exit(3)")))
    assert "exit code 3" in info.value.message
    assert "boom" in info.value.message
    assert "commands.sh" in (info.value.hint or "")


def test_missing_program_is_tool_not_found() -> None:
    with pytest.raises(ToolNotFoundError, match="not found"):
        Executor().run(Command(("tvmx-no-such-program",)))


def test_unchecked_failure_returns_code() -> None:
    res = Executor().run(Command((sys.executable, "-c", "raise SystemExit(5)")), check=False)
    assert res.returncode == 5


def test_dry_run_prints_without_running(capsys: pytest.CaptureFixture[str]) -> None:
    res = Executor(dry_run=True).run(Command(("tvmx-no-such-program", "a b")))
    assert res.returncode == 0
    assert "tvmx-no-such-program 'a b'" in capsys.readouterr().out


def test_version_line_is_the_first_line_and_cached(tmp_path: Path) -> None:
    from tvmx.toolchain.command import version_line

    counter = tmp_path / "count"
    tool = tmp_path / "tool"
    tool.write_text(f"#!{sys.executable}\nimport pathlib\np = pathlib.Path({str(counter)!r})\n"
                    "p.write_text(p.read_text() + 'x' if p.exists() else 'x')\nprint('tool 1.2.3\\nmore')\n")
    tool.chmod(0o755)
    assert version_line(str(tool)) == "tool 1.2.3"
    assert version_line(str(tool)) == "tool 1.2.3"
    assert counter.read_text() == "x", "run once per process"


def test_version_line_of_a_missing_tool_is_a_tool_error() -> None:
    from tvmx.toolchain.command import version_line

    with pytest.raises(ToolNotFoundError):
        version_line("tvmx-no-such-tool")
