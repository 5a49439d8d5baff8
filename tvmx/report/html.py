"""`tvmx report BUILD_DIR`: one self-contained HTML page about a build (no file it needs lies
elsewhere: styles inline, the chart a data: URI): the target, stage timings, the offload report, the
profile table and chart, the ELF's size breakdown, and links to every stage's IR dump."""

from __future__ import annotations

import base64
import html
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile

from tvmx import __version__
from tvmx.build.builddir import BuildDir, atomic_write
from tvmx.errors import InputError
from tvmx.run.chart import ACCEL_COLOUR, CPU_COLOUR, profile_png

REPORT = "report.html"
STACK = "stack and heap (reserved, not loaded)"
HINT = "pass a build folder of `tvmx compile` (it holds manifest.json)"


@dataclass(frozen=True)
class SizeRow:
    what: str
    bytes: int


def elf_sizes(elf: Path, weights_bytes: int | None) -> list[SizeRow]:
    """Code, the weights (inside .rodata), the rest of .rodata, data, the model's I/O regions and bss."""
    try:
        with elf.open("rb") as f:
            sections = {s.name: s for s in ELFFile(f).iter_sections() if s["sh_flags"] & 0x2 and s.name}
            sizes = {name: int(s["sh_size"]) for name, s in sections.items()}
    except (OSError, ELFError) as exc:
        raise InputError(f"{elf}: cannot read the ELF: {exc}", hint="recompile the model") from exc

    def total(*prefixes: str) -> int:
        return sum(n for name, n in sizes.items() if name.startswith(prefixes))

    rodata = total(".rodata", ".srodata")
    weights = min(weights_bytes or 0, rodata)
    return [SizeRow("text (code)", total(".text", ".init")), SizeRow("weights (in .rodata)", weights),
            SizeRow("other read-only data", rodata - weights), SizeRow("data", total(".data", ".sdata")),
            SizeRow("model inputs and outputs", total(".tvmx_inputs", ".tvmx_outputs")),
            SizeRow("bss (activations, zeroed)", total(".bss", ".sbss", ".tbss")),
            SizeRow(STACK, total(".stack", ".heap"))]


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: cannot read: {exc}", hint=HINT) from exc


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _num(n: Any) -> str:
    return "-" if n is None else f"{n:,}" if isinstance(n, int) else f"{n}"


def _pct(x: Any) -> str:
    return "-" if x is None else f"{x:.1%}"


def _table(columns: list[str], rows: list[list[str]], numeric: set[int] | None = None, css: str = "") -> str:
    """Cells are HTML already (escaped by the caller)."""
    numeric = numeric or set()
    head = "".join(f'<th{" class=num" if i in numeric else ""}>{_e(c)}</th>' for i, c in enumerate(columns))
    body = "".join("<tr>" + "".join(f'<td{" class=num" if i in numeric else ""}>{cell}</td>'
                                    for i, cell in enumerate(row)) + "</tr>" for row in rows)
    return f'<table class="{css}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _target_section(manifest: dict[str, Any], build: Path) -> str:
    from tvmx.target import load_target

    name = manifest.get("target_name", "?")
    try:
        target = load_target(str(manifest.get("target_path") or name))
    except InputError:
        return f"<p>target <b>{_e(name)}</b> (its file is no longer readable)</p>"
    rows = [["name", _e(target.name)], ["description", _e(target.description)], ["file", _e(target.path)],
            ["CPU", _e(f"{target.cpu.march} / {target.cpu.mabi}")]]
    acc = target.accelerator
    if acc:
        rows.append(["accelerator", _e(f"{acc['kind']}, DIM {acc.get('dim')}, scratchpad "
                                       f"{acc.get('scratchpad', {}).get('size_kib')} KiB, accumulator "
                                       f"{acc.get('accumulator', {}).get('size_kib')} KiB, DMA bus "
                                       f"{acc.get('dma', {}).get('bus_bits')} bits")])
    rows.append(["model", _e(manifest.get("model", "?"))])
    return _table(["", ""], rows, css="kv")


def _stages_section(manifest: dict[str, Any], build: Path, page_dir: Path) -> str:
    """Each stage's time (where the manifest has it) and links to its files, relative to the page."""
    rows = []
    for entry in manifest.get("stages", []):
        files = " ".join(f'<a href="{_e(os.path.relpath(build / rel, page_dir))}">{_e(rel)}</a>'
                         for rel in entry.get("outputs", {}) if (build / rel).is_file())
        seconds = entry.get("seconds")
        rows.append([_e(entry.get("stage", "?")), "-" if seconds is None else f"{seconds:.2f} s", files])
    total = manifest.get("compile_seconds")
    caption = f"<p>compile: {total:.2f} s in all</p>" if isinstance(total, (int, float)) else ""
    return caption + _table(["stage", "time", "IR dumps and artifacts"], rows, {1})


def _offload_section(build: Path) -> str:
    path = build / "02-relax" / "offload.json"
    if not path.is_file():
        return "<p>No offload report: the target has no accelerator.</p>"
    report = _read_json(path)
    rows = [[_e(n["node"]), _e(n["op_type"]), f'<span class="{_e(n["where"])}">{_e(n["where"])}</span>',
             _e(n.get("kernel") or "-"), _num(n.get("macs")), _e(n["reason"])] for n in report.get("nodes", [])]
    return (f"<p>{report['offloaded']} of {report['candidates']} candidate layers offloaded to "
            f"{_e(report['accelerator'])}; {report.get('layout_transforms_at_run_time', 0)} layout transforms "
            f"at run time.</p>" + _table(["node", "op", "where", "kernel", "MACs", "reason"], rows, {4}))


def _profile_section(build: Path) -> str:
    path = build / "run" / "profile.json"
    if not path.is_file():
        return f"<p>No profile yet: run <code>tvmx run {_e(build)} --profile</code>.</p>"
    profile = _read_json(path)
    if not isinstance(profile, dict) or profile.get("format") != 1:
        return f"<p>{_e(path)} is from an older tvmx: run <code>tvmx run {_e(build)} --profile</code> again.</p>"
    png = build / "run" / "profile.png"
    image = png.read_bytes() if png.is_file() else profile_png(profile)
    total = profile["total"]
    rows = []
    for k in profile["kernels"]:
        units = k.get("units") or {}
        name = k["name"] if len(k["name"]) <= 60 else k["name"][:57] + "..."
        rows.append([f'<span title="{_e(k["name"])}">{_e(name)}</span>', _num(k["calls"]),
                     _e(", ".join(k.get("nodes") or [])),
                     f'<span class="{_e(k["where"])}">{_e(k["where"])}</span>', _num(k.get("macs")),
                     _num(k["instret"]), _num(units.get("load")), _num(units.get("execute")),
                     _num(units.get("store")), _num(k["cycles"]), _pct(k.get("share")), _pct(k.get("utilisation")),
                     _num(k.get("bound_cycles")),
                     "-" if k.get("over_bound") is None else f"{k['over_bound']:.2f}x"])
    table = _table(["kernel", "calls", "ONNX nodes", "where", "MACs", "instret", "load", "execute", "store",
                    "cycles", "share", "util", "bound", "x bound"], rows, {1, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13},
                   css="sortable")
    data = base64.b64encode(image).decode()
    return (f"<p>{total['cycles']:,} cycles in all ({total['instret']:,} instructions), "
            f"{total['kernel_cycles']:,} inside kernels; the counter reads' own cost "
            f"({total['overhead'].get('cycles', 0)} cycles per call) is subtracted. Click a column to sort.</p>"
            f'<img id="profile-chart" alt="cycles per kernel" src="data:image/png;base64,{data}">' + table)


def _sizes_section(build: Path, manifest: dict[str, Any]) -> str:
    elf = build / "model.elf"
    if not elf.is_file():
        return "<p>No model.elf: the build stopped before the assemble stage.</p>"
    weights = next((e.get("weights_bytes") for e in manifest.get("stages", []) if e.get("stage") == "codegen"), None)
    blob = build / "05-codegen" / "weights.bin"
    if weights is None and blob.is_file():
        weights = blob.stat().st_size
    sizes = elf_sizes(elf, weights)
    total = sum(r.bytes for r in sizes if r.what != STACK) or 1
    rows = [[_e(r.what), _num(r.bytes), "-" if r.what == STACK else _pct(r.bytes / total)] for r in sizes if r.bytes]
    return _table(["", "bytes", "share"], rows, {1, 2})


STYLE = f"""
body {{ font-family: sans-serif; margin: 1.5em auto; max-width: 1400px; color: #222; }}
h1 {{ font-size: 1.4em; }} h2 {{ font-size: 1.15em; margin-top: 1.6em; border-bottom: 1px solid #ccc; }}
table {{ border-collapse: collapse; font-size: 0.85em; margin: 0.5em 0; }}
th, td {{ border: 1px solid #ddd; padding: 2px 6px; text-align: left; vertical-align: top; }}
th {{ background: #f3f3f3; }} td.num, th.num {{ text-align: right; font-variant-numeric: tabular-nums; }}
table.sortable th {{ cursor: pointer; }} table.kv td:first-child {{ font-weight: bold; }}
span.accelerator {{ color: {ACCEL_COLOUR}; font-weight: bold; }} span.cpu {{ color: {CPU_COLOUR}; }}
#profile-chart {{ max-width: 900px; display: block; }}
footer {{ margin-top: 2em; color: #888; font-size: 0.8em; }}
"""

# Sorting the profile table by a column; any script error is recorded in the page itself, where a
# headless browser's --dump-dom can read it (tests/report/test_html.py).
SCRIPT = """
window.tvmxErrors = [];
window.addEventListener('error', function (e) { window.tvmxErrors.push(String(e.message)); record(); });
function record() { document.getElementById('tvmx-errors').textContent = window.tvmxErrors.join('\\n'); }
function sortBy(table, col) {
  var body = table.tBodies[0], rows = Array.prototype.slice.call(body.rows);
  var numeric = table.tHead.rows[0].cells[col].classList.contains('num');
  var key = function (r) {
    var t = r.cells[col].textContent;
    return numeric ? (parseFloat(t.replace(/[,x%]/g, '')) || 0) : t;
  };
  var down = table.dataset.sorted !== String(col);
  rows.sort(function (a, b) { var x = key(a), y = key(b); return (x < y ? -1 : x > y ? 1 : 0) * (down ? -1 : 1); });
  rows.forEach(function (r) { body.appendChild(r); });
  table.dataset.sorted = down ? String(col) : '';
}
document.addEventListener('DOMContentLoaded', function () {
  document.querySelectorAll('table.sortable').forEach(function (table) {
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, col) {
      th.addEventListener('click', function () { sortBy(table, col); });
    });
  });
  document.body.dataset.ready = 'yes';
  record();
});
window.addEventListener('load', function () {  // where the chart is drawn, for the screenshot test
  var chart = document.getElementById('profile-chart');
  if (chart) {
    var r = chart.getBoundingClientRect();
    document.body.dataset.chart = [r.left + window.scrollX, r.top + window.scrollY, r.width, r.height]
      .map(Math.round).join(',');
  }
});
"""


def render(build: Path, page_dir: Path | None = None) -> str:
    """The page; its links are relative to `page_dir` (default: the build folder, where it goes)."""
    manifest_path = build / "manifest.json"
    if not manifest_path.is_file():
        raise InputError(f"{build}: not a tvmx build folder (no manifest.json)", hint=HINT)
    manifest = _read_json(manifest_path)
    if not isinstance(manifest, dict):
        raise InputError(f"{manifest_path}: not a tvmx manifest", hint=HINT)
    title = f"tvmx report: {Path(str(manifest.get('model', build))).name} on {manifest.get('target_name', '?')}"
    sections = [("Target", _target_section(manifest, build)),
                ("Stages", _stages_section(manifest, build, (page_dir or build).resolve())),
                ("Offload report", _offload_section(build)), ("Profile", _profile_section(build)),
                ("ELF size", _sizes_section(build, manifest))]
    body = "".join(f'<section id="{_e(name.lower().replace(" ", "-"))}"><h2>{_e(name)}</h2>{content}</section>'
                   for name, content in sections)
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{_e(title)}</title><style>{STYLE}</style><script>{SCRIPT}</script></head>"
            f"<body><h1>{_e(title)}</h1>{body}"
            '<pre id="tvmx-errors" hidden></pre>'
            f"<footer>written by tvmx {_e(__version__)} from {_e(build)}</footer></body></html>\n")


def write_report(build: Path, output: Path | None = None) -> Path:
    """The page, written to BUILD_DIR/report.html (claimed in the manifest) or to `output`."""
    path = output or build / REPORT
    text = render(build.resolve(), path.parent.resolve())
    atomic_write(path, text)
    if output is None:
        BuildDir(build).claim([path])
    return path
