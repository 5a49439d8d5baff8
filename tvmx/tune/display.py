"""What `tvmx tune` shows while it runs (a rich live table on a terminal, a line per update
elsewhere) and the summary table at the end."""

from __future__ import annotations

import sys
from typing import Any

from rich.live import Live
from rich.table import Table

from tvmx import ui
from tvmx.tune.tuner import TaskState, TuneReport


def _cycles(n: int | None) -> str:
    return "failed" if n is None else f"{n:,}"


def _speedup(state: TaskState) -> str:
    return f"{state.speedup:.2f}x" if state.speedup else "-"


def table(states: list[TaskState], budget: int | None = None, title: str = "tvmx tune") -> Table:
    spent = sum(s.trials + s.reused for s in states)
    caption = f"{spent} of {budget} trials" if budget else None
    total = sum(s.task.calls * (s.best_cycles or 0) for s in states) or 1
    t = ui.table(title, [("kernel", "left"), ("where", "left"), ("calls", "right"), ("share", "right"),
                         ("trials", "right"), ("failed", "right"), ("default cycles", "right"),
                         ("best cycles", "right"), ("speedup", "right")], caption)
    for s in states:
        share = f"{s.task.calls * (s.best_cycles or 0) / total:.1%}" if s.best_cycles else "-"
        t.add_row(s.task.describe(), s.task.kind, str(s.task.calls), share, f"{s.trials + s.reused}", str(s.failures),
                  _cycles(s.default_cycles) if s.trials + s.reused else "-",
                  _cycles(s.best_cycles) if s.trials + s.reused else "-", _speedup(s))
    return t


class Progress:
    """Live table on a terminal; plain lines when stderr is not one or NO_COLOR is set."""

    def __init__(self, budget: int, quiet: bool = False) -> None:
        self.budget, self.quiet = budget, quiet
        self.console = ui.console(stderr=True)
        self.live: Live | None = None
        self.states: list[TaskState] = []
        self.interactive = ui.interactive(sys.stderr) and not quiet

    def start(self, states: list[TaskState]) -> None:
        self.states = states
        if self.interactive:
            self.live = Live(table(states, self.budget), console=self.console, refresh_per_second=4)
            self.live.start()

    def update(self, state: TaskState) -> None:
        if self.live is not None:
            self.live.update(table(self.states, self.budget))
        elif not self.quiet:
            spent = sum(s.trials + s.reused for s in self.states)
            self.console.print(f"tvmx tune: [{spent}/{self.budget}] {state.task.name}: {state.trials + state.reused} "
                               f"trials, best {_cycles(state.best_cycles)} cycles ({_speedup(state)})",
                               highlight=False, soft_wrap=True)

    def stop(self) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None


def summary(report: TuneReport, console: Any) -> None:
    console.print(table(report.tasks, title="tvmx tune: summary"))
    doc = report.to_json()["kernel_cycles"]
    speedup = f"{doc['speedup']:.2f}x" if doc["speedup"] else "-"
    console.print(f"kernel cycles of the whole model (calls x cycles): {doc['default']:,} default, "
                  f"{doc['tuned']:,} tuned ({speedup}); {report.measured} measured in {report.seconds:.0f} s; "
                  f"records in {report.records}", highlight=False, soft_wrap=True)
