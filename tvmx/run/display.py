"""How `tvmx run --profile` shows a profile: one row per kernel, costliest first."""

from __future__ import annotations

from collections.abc import Callable

from rich.table import Table

from tvmx import ui
from tvmx.run.profile import KernelRow, Profile


def _x(over: float | None) -> str:
    return "-" if over is None else f"{over:.2f}x"


def profile_table(profile: Profile, top: int = 25) -> Table:
    total = profile.total
    caption = (f"{total['cycles']:,} cycles in all, {total['kernel_cycles']:,} inside kernels; "
               f"counter reads cost {total['overhead'].get('cycles', 0)} cycles per call (subtracted)")
    rows = profile.kernels
    accel = profile.accelerator is not None
    # (heading, justify, cell): columns that would be empty for every row are left out
    columns: list[tuple[str, str, Callable[[KernelRow], str]]] = [
        ("kernel", "left", lambda r: r.name), ("calls", "right", lambda r: str(r.calls))]
    if any(r.nodes for r in rows):
        columns.append(("ONNX nodes", "left", lambda r: _nodes(r.nodes)))
    if accel:
        columns.append(("where", "left", lambda r: r.where))
    if any(r.macs is not None for r in rows):
        columns.append(("MACs", "right", lambda r: ui.count(r.macs)))
    columns.append(("instret", "right", lambda r: ui.count(r.instret)))
    if accel:
        columns += [(unit, "right", lambda r, u=unit: ui.count(r.units.get(u)))  # type: ignore[misc]
                    for unit in ("load", "execute", "store")]
    columns += [("cycles", "right", lambda r: ui.count(r.cycles)), ("share", "right", lambda r: ui.percent(r.share))]
    if accel:
        columns += [("util", "right", lambda r: ui.percent(r.utilisation)),
                    ("bound", "right", lambda r: ui.count(r.bound_cycles)),
                    ("x bound", "right", lambda r: _x(r.over_bound))]
    t = ui.table(f"tvmx profile: {profile.target}", [(name, justify) for name, justify, _ in columns], caption)
    t.columns[0].overflow = "fold"  # a fused kernel's name says what it does: never cut it
    t.columns[0].min_width = min(44, max(len(r.name) for r in rows)) if rows else None
    for row in rows[:top]:
        t.add_row(*(cell(row) for _, _, cell in columns))
    rest = rows[top:]
    if rest:
        cycles = sum(r.cycles for r in rest)
        cells = {"kernel": f"({len(rest)} more kernels)", "instret": ui.count(sum(r.instret for r in rest)),
                 "cycles": ui.count(cycles), "share": ui.percent(cycles / total["cycles"] if total["cycles"] else 0.0)}
        t.add_row(*(cells.get(name, "") for name, _, _ in columns))
    return t


def _nodes(nodes: list[str], limit: int = 3) -> str:
    return ", ".join(nodes[:limit]) + (f" +{len(nodes) - limit}" if len(nodes) > limit else "")
