"""The terminal look: live stage lines only on a terminal, plain text (no escapes) in logs and under
NO_COLOR, and the pipeline's log lines that feed the stage progress."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest
from helpers import relu_add_model, save, tvmx

from tvmx import ui
from tvmx.report.tables import offload_table
from tvmx.stages.registry import STAGES


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_interactive_only_on_a_terminal_without_no_color(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    assert ui.interactive(Tty()) and not ui.interactive(io.StringIO())
    monkeypatch.setenv("NO_COLOR", "1")
    assert not ui.interactive(Tty())


def test_tables_in_a_log_are_plain_text(monkeypatch: pytest.MonkeyPatch) -> None:
    out = io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    report = {"accelerator": "acc", "offloaded": 1, "candidates": 2, "nodes": [
        {"node": "conv_1", "op_type": "Conv", "where": "accelerator", "reason": "int8 conv2d", "kernel": "k0",
         "macs": 1000},
        {"node": "add_2", "op_type": "Add", "where": "cpu", "reason": "a float layer", "kernel": "", "macs": 0}]}
    ui.console().print(offload_table(report))
    text = out.getvalue()
    assert "\x1b" not in text and "conv_1" in text and "1,000" in text and "a float layer" in text
    assert text.isascii()  # ASCII rules: readable in any CI log


def test_stage_progress_off_a_terminal_is_the_log_as_before() -> None:
    said: list[str] = []
    with ui.StageProgress(["import", "relax"], True, said.append) as progress:
        progress.log("  01-import     0.50 s")
        progress.log("offload report (acc): ...")
    assert said == ["  01-import     0.50 s", "offload report (acc): ..."]
    assert progress.done == {"import": 0.5}
    quiet: list[str] = []
    with ui.StageProgress(["import"], False, quiet.append) as progress:
        progress.log("  01-import     0.50 s")
    assert quiet == [] and progress.done == {"import": 0.5}


def test_the_pipeline_log_feeds_the_stage_lines(tmp_path: Path) -> None:
    """The live lines parse the pipeline's "  NN-stage  S.SS s" lines: if their format changes, this fails."""
    model = save(relu_add_model([1, 4]), tmp_path / "m.onnx")
    result = tvmx("-v", "compile", str(model), "-t", "rv64gc", "-o", str(tmp_path / "b"), "--compile-to", "tune")
    assert result.exit_code == 0, result.output
    progress = ui.StageProgress([s.name for s in STAGES], False, lambda _m: None)
    for line in result.stderr.splitlines():
        progress.log(line)
    assert list(progress.done) == ["import", "relax", "tune"], result.stderr
