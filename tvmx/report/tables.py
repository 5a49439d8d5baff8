"""rich tables of the offload report and of verify's comparison (the profile's is in run/display.py)."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from tvmx import ui


def offload_table(report: dict[str, Any], limit: int = 40) -> Table:
    """02-relax/offload.json: which ONNX node went where, and why."""
    caption = (f"{report['offloaded']} of {report['candidates']} candidate layers offloaded; "
               f"{report.get('layout_transforms_at_run_time', 0)} layout transforms at run time")
    t = ui.table(f"offload report: {report['accelerator']}", [("node", "left"), ("op", "left"), ("where", "left"),
                                                             ("kernel", "left"), ("MACs", "right"),
                                                             ("reason", "left")], caption)
    nodes = report.get("nodes", [])
    for n in nodes[:limit]:
        where = n["where"] if not ui.interactive() else ("[green]accelerator[/]" if n["where"] == "accelerator"
                                                          else "[yellow]cpu[/]")
        t.add_row(n["node"], n["op_type"], where, n.get("kernel") or "-", ui.count(n.get("macs")), n["reason"])
    if len(nodes) > limit:
        t.add_row(f"({len(nodes) - limit} more)", "", "", "", "", "")
    return t


def verify_table(model: str, target: str, comparison: Any) -> Table:
    """One row per output: how far it is from onnxruntime, and whether that is within the tolerance."""
    t = ui.table(f"verify {model} on {target}", [("output", "left"), ("elements", "right"), ("mismatched", "right"),
                                                 ("max abs err", "right"), ("max rel err", "right"),
                                                 ("max LSB", "right"), ("", "left")],
                 comparison.summary())
    for o in comparison.outputs:
        ok = o.mismatched == 0
        verdict = ("[green]PASS[/]" if ok else "[red]FAIL[/]") if ui.interactive() else ("PASS" if ok else "FAIL")
        t.add_row(o.name, f"{o.total:,}", f"{o.mismatched:,}", f"{o.max_abs:.3g}", f"{o.max_rel:.3g}",
                  "-" if o.max_lsb is None else str(o.max_lsb), verdict)
    return t
