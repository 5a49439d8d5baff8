"""The terminal look shared by every command: rich tables and live lines on a terminal, the same
tables as plain text (no colour, no cursor movement, ASCII rules) in logs, pipes and under NO_COLOR."""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
import time
from collections.abc import Iterator
from typing import IO, Any

from rich import box
from rich.console import Console
from rich.table import Table

LOG_WIDTH = 160  # a log is no terminal: give tables room rather than 80 columns


def interactive(stream: IO[str] | None = None) -> bool:
    """Colour and live updates: only on a terminal, and never under NO_COLOR."""
    stream = stream or sys.stdout
    return stream.isatty() and "NO_COLOR" not in os.environ


def console(stderr: bool = False) -> Console:
    """A console on stdout (or stderr) that is plain text wherever `interactive` is false."""
    stream = sys.stderr if stderr else sys.stdout
    live = interactive(stream)
    return Console(file=stream, no_color=not live, force_terminal=live, highlight=False, soft_wrap=False,
                   width=None if live else LOG_WIDTH, emoji=False)


def table(title: str, columns: list[tuple[str, str]], caption: str | None = None, **kwargs: Any) -> Table:
    """A table with (name, justify) columns; ASCII rules when it goes to a log."""
    t = Table(title=title, caption=caption, box=box.ROUNDED if interactive() else box.ASCII, **kwargs)
    for name, justify in columns:
        t.add_column(name, justify=justify)  # type: ignore[arg-type]
    return t


def count(n: int | None) -> str:
    return "-" if n is None else f"{n:,}"


def percent(x: float | None) -> str:
    return "-" if x is None else f"{x:.1%}"


@contextlib.contextmanager
def stdout_to_stderr() -> Iterator[None]:
    """`--json`: inside, whatever would reach stdout (progress, logs, a library's or a C extension's
    prints) goes to stderr, so the one JSON document printed after it is all stdout holds."""
    sys.stdout.flush()
    try:  # file descriptor 1 as well: C code writes there whatever sys.stdout is
        saved: int | None = os.dup(1)
        os.dup2(2, 1)
    except OSError:  # no such descriptor (a daemon): nothing to redirect
        saved = None
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        if saved is not None:
            sys.stdout.flush()
            os.dup2(saved, 1)
            os.close(saved)


def json_document(doc: Any) -> str:
    """The document `--json` prints: numpy scalars and paths as plain JSON values."""
    return json.dumps(doc, indent=2, default=_plain)


def _plain(value: Any) -> Any:
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)  # paths


JSON_KEY = "tvmx.json"  # click context meta: {"on": bool, "doc": the command's result document}


def json_option(command: Any) -> Any:
    """`--json` for a click command: the command runs with stdout sent to stderr, records its result
    with `result(doc)`, and that document is then all it prints on stdout (also when the command
    fails after recording it, e.g. verify's mismatch)."""
    import functools

    import click

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        meta = click.get_current_context().meta.setdefault(JSON_KEY, {"on": False})
        if not meta["on"]:
            return command(*args, **kwargs)
        try:
            with stdout_to_stderr():
                return command(*args, **kwargs)
        finally:
            if "doc" in meta:
                click.echo(json_document(meta["doc"]))

    def enable(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
        ctx.meta.setdefault(JSON_KEY, {"on": False})["on"] = value

    return click.option("--json", "json_", is_flag=True, expose_value=False, callback=enable, is_eager=True,
                        help="print the result as one JSON document on stdout (everything else goes to stderr)")(run)


def result(doc: dict[str, Any]) -> None:
    """The command's result document, printed by `json_option` under --json (ignored otherwise)."""
    import click

    click.get_current_context().meta.setdefault(JSON_KEY, {"on": False})["doc"] = doc


def json_mode() -> bool:
    """Whether the running command was given --json (to leave out what only a terminal needs)."""
    import click

    ctx = click.get_current_context(silent=True)
    return bool(ctx and ctx.meta.get(JSON_KEY, {}).get("on"))


# The pipeline's log line when a stage finishes (pipeline.compile_model): "  02-relax      1.23 s".
STAGE_DONE = re.compile(r"^\s+(\d+)-(\S+)\s+([\d.]+) s$")
STAGES_REUSED = re.compile(r"^\s+stages up to (\S+) reused")


class StageProgress:
    """compile and verify: on a terminal, a live line per stage on stderr (the one running with its
    elapsed time and a spinner, those done with their time); elsewhere, exactly the log as before
    (with -v every line, without it nothing). Fed by the pipeline's log lines."""

    def __init__(self, stages: list[str], verbose: bool, echo: Any) -> None:
        self.stages, self.verbose, self.echo = stages, verbose, echo
        self.done: dict[str, float] = {}
        self.reused: set[str] = set()
        self.live: Any = None
        self.started = 0.0
        self.paused = False

    def __enter__(self) -> StageProgress:
        self.paused = False
        self._start()
        return self

    def pause(self) -> None:
        """Stop the live lines so that results can print (verify's, between models); the next log
        line starts them again."""
        if self.live is not None:
            self.__exit__()
            self.paused = True

    def _start(self) -> None:
        if interactive(sys.stderr) and not json_mode():
            from rich.live import Live

            self.started = time.perf_counter()
            self.live = Live(self._render(), console=console(stderr=True), refresh_per_second=8, transient=False,
                             get_renderable=self._render, redirect_stdout=False, redirect_stderr=False)
            self.live.start()

    def __exit__(self, *_exc: object) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None

    def log(self, message: str) -> None:
        if self.paused:  # the next model
            self.paused = False
            self.done.clear()
            self.reused.clear()
            self._start()
        done, reused = STAGE_DONE.match(message), STAGES_REUSED.match(message)
        if done:
            if done.group(2) in self.done:  # verify's next model
                self.done.clear()
                self.reused.clear()
            self.done[done.group(2)] = float(done.group(3))
            self.started = time.perf_counter()
        elif message.endswith(": up to date"):
            self.reused.update(self.stages)
        elif reused and reused.group(1) in self.stages:
            self.reused.update(self.stages[: self.stages.index(reused.group(1)) + 1])
            self.started = time.perf_counter()
        if self.live is None:
            if self.verbose:
                self.echo(message)
        elif self.verbose and not (done or reused):  # the live lines show those
            self.live.console.print(message, highlight=False, markup=False)

    def _render(self) -> Any:
        from rich.spinner import Spinner
        from rich.table import Table

        t = Table.grid(padding=(0, 2))
        running = next((s for s in self.stages if s not in self.done and s not in self.reused), None)
        for i, stage in enumerate(self.stages, 1):
            if stage in self.reused:
                t.add_row("[green]=[/]", f"{i:02d}-{stage}", "[dim]reused[/]")
            elif stage in self.done:
                t.add_row("[green]✓[/]", f"{i:02d}-{stage}", f"{self.done[stage]:6.2f} s")
            elif stage == running:
                t.add_row(Spinner("dots"), f"[bold]{i:02d}-{stage}[/]", f"{time.perf_counter() - self.started:6.2f} s")
            else:
                t.add_row(" ", f"[dim]{i:02d}-{stage}[/]", "")
        return t
