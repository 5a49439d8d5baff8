"""Commands as data (clang's Job): built by toolchains and simulators, run by one executor.

Nothing else in tvmx calls subprocess. Every command run is appended, shell-quoted, to a log
(the build directory's `commands.sh`), so a build can be replayed or inspected by hand.
"""

from __future__ import annotations

import os
import shlex
import subprocess
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from tvmx.errors import CommandFailedError, ToolNotFoundError

LOG_TAIL_LINES = 20


@dataclass(frozen=True)
class Command:
    argv: tuple[str, ...]
    cwd: Path | None = None
    env: dict[str, str] = field(default_factory=dict)  # added to the inherited environment
    inputs: tuple[Path, ...] = ()
    outputs: tuple[Path, ...] = ()
    description: str = ""

    def shell_line(self) -> str:
        """The command as a line a POSIX shell would run identically."""
        parts = [f"{k}={shlex.quote(v)}" for k, v in sorted(self.env.items())]
        parts += [shlex.quote(a) for a in self.argv]
        line = " ".join(parts)
        if self.cwd is not None:
            line = f"(cd {shlex.quote(str(self.cwd))} && {line})"
        return line


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


class Executor:
    """Runs commands, records them in `log_path`, and turns failures into TvmxErrors."""

    def __init__(self, log_path: Path | None = None, dry_run: bool = False) -> None:
        self.log_path = log_path
        self.dry_run = dry_run

    def _record(self, cmd: Command) -> None:
        if self.log_path is None:
            return
        new = not self.log_path.exists()
        with self.log_path.open("a") as f:
            if new:
                f.write("#!/bin/sh\n# Every external command tvmx ran for this build, in order.\nset -e\n")
            if cmd.description:
                f.write(f"# {cmd.description}\n")
            f.write(cmd.shell_line() + "\n")

    def run(
        self,
        cmd: Command,
        *,
        check: bool = True,
        capture: bool = True,
        timeout: float | None = None,
        stdin: bytes | None = None,
    ) -> Result:
        self._record(cmd)
        if self.dry_run:
            print(cmd.shell_line())
            return Result(0, "", "")
        env = {**os.environ, **cmd.env} if cmd.env else None
        try:
            proc = subprocess.run(
                list(cmd.argv),
                cwd=cmd.cwd,
                env=env,
                input=stdin,
                capture_output=capture,
                timeout=timeout,
            )
        except FileNotFoundError as exc:
            raise ToolNotFoundError(
                f"cannot run '{cmd.argv[0]}': not found",
                hint="run `tvmx doctor` to see which tools are missing and how to install them",
            ) from exc
        except subprocess.TimeoutExpired as exc:
            raise CommandFailedError(
                f"'{shlex.join(cmd.argv[:3])} ...' did not finish within {timeout:.0f} s",
                hint="the program may be stuck in a loop; raise the timeout with --timeout",
            ) from exc
        out = proc.stdout.decode(errors="replace") if capture and proc.stdout else ""
        err = proc.stderr.decode(errors="replace") if capture and proc.stderr else ""
        if check and proc.returncode != 0:
            raise CommandFailedError(
                f"command failed with exit code {proc.returncode}: {cmd.shell_line()}"
                + _tail(out + err),
                hint=f"the full command is in {self.log_path}" if self.log_path else None,
            )
        return Result(proc.returncode, out, err)


@cache
def version_line(program: str, flag: str = "--version") -> str:
    """The first line `program --version` prints (once per process): what a build key records of a tool."""
    res = Executor().run(Command((program, flag)), check=False)
    lines = (res.stdout.strip() or res.stderr.strip()).splitlines()
    return lines[0].strip() if lines else "unknown version"


def _tail(text: str) -> str:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    if not lines:
        return ""
    return "\n  | " + "\n  | ".join(lines[-LOG_TAIL_LINES:])
