"""`tvmx report`: the page of an int8 CNN's build on gemmini, opened in headless Chromium: it loads
without console errors, and its screenshot shows the profile chart where the page put it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import pytest
from helpers import tvmx
from toolcheck import find_chromium

from tvmx import samples
from tvmx.options import make_options
from tvmx.pipeline import compile_model
from tvmx.quantize import quantize_model
from tvmx.report.html import STACK, elf_sizes, write_report
from tvmx.run.chart import ACCEL_COLOUR, CPU_COLOUR
from tvmx.run.runner import random_inputs, read_io, run_build
from tvmx.target import load_target
from tvmx.toolchain.command import Command, Executor

pytestmark = [pytest.mark.toolchain, pytest.mark.spike, pytest.mark.gxx]  # every test reads the gemmini build
WINDOW = (1400, 3200)


@pytest.fixture(scope="module")
def build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The int8 sample CNN compiled for gemmini and run with --profile's chart."""
    folder = tmp_path_factory.mktemp("report")
    target = load_target("gemmini")
    onnx.save(samples.cnn(softmax=False), str(folder / "cnn.onnx"))
    quantize_model(folder / "cnn.onnx", folder / "cnn.int8.onnx", target, random_n=4, seed=1)
    result = compile_model(folder / "cnn.int8.onnx", target, make_options(), folder / "b")
    run_build(target, result.build_dir, random_inputs(read_io(result.build_dir)["inputs"], 0), None, chart=True)
    return result.build_dir


@dataclass
class Page:
    dom: str
    console: list[str]  # what chromium logged from the page's console

    @property
    def errors(self) -> list[str]:
        m = re.search(r'<pre id="tvmx-errors"[^>]*>(.*?)</pre>', self.dom, re.S)
        recorded = [m.group(1)] if m is None or m.group(1) else []
        if 'data-ready="yes"' not in self.dom:  # the page's script did not run to its end
            recorded.append("the page script did not finish")
        return recorded + self.console


def chromium(page: Path, tmp: Path, *flags: str) -> tuple[str, str]:
    argv = (find_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run", "--force-device-scale-factor=1",
            f"--user-data-dir={tmp / 'chromium-profile'}", "--enable-logging=stderr", "--v=0",
            f"--window-size={WINDOW[0]},{WINDOW[1]}", *flags, page.resolve().as_uri())
    res = Executor().run(Command(argv), timeout=120)
    return res.stdout, res.stderr


def load(page: Path, tmp: Path) -> Page:
    dom, log = chromium(page, tmp, "--dump-dom")
    return Page(dom, [ln for ln in log.splitlines() if ":CONSOLE" in ln])


def test_the_page_is_self_contained(build: Path, tmp_path: Path) -> None:
    result = tvmx("report", str(build))
    assert result.exit_code == 0, result.output
    text = (build / "report.html").read_text()
    assert 'src="data:image/png;base64,' in text
    assert not re.search(r'(src|href)="(https?:|file:|/)', text)  # nothing from elsewhere
    links = re.findall(r'href="([^"]+)"', text)
    for stage in ("01-import/module.py", "02-relax/module.py", "04-lower/kernels_tir.py", "05-codegen/kernels.c",
                  "06-assemble/model.dis"):
        assert stage in links
    assert all((build / link).is_file() for link in links)
    for section in ("Target", "Stages", "Offload report", "Profile", "ELF size"):
        assert f"<h2>{section}</h2>" in text
    # written elsewhere, its links still reach the build's files
    elsewhere = tmp_path / "pages" / "cnn.html"
    elsewhere.parent.mkdir()
    assert tvmx("report", str(build), "-o", str(elsewhere)).exit_code == 0
    moved = re.findall(r'href="([^"]+)"', elsewhere.read_text())
    assert len(moved) == len(links) and all((elsewhere.parent / link).resolve().is_file() for link in moved)
    assert "accel_conv2d_0" in text and "conv_3" in text and "weights (in .rodata)" in text


def test_elf_sizes_add_up(build: Path) -> None:
    from tvmx.stages.assemble import section_sizes

    rows = {r.what: r.bytes for r in elf_sizes(build / "model.elf", (build / "05-codegen" / "weights.bin")
                                               .stat().st_size)}
    sections = section_sizes(build / "model.elf")
    assert rows["weights (in .rodata)"] == (build / "05-codegen" / "weights.bin").stat().st_size
    assert rows["weights (in .rodata)"] + rows["other read-only data"] == sections[".rodata"]
    assert rows["text (code)"] == sections[".text"] and rows[STACK] == sections.get(".stack", 0)


@pytest.mark.chromium
def test_the_page_loads_without_console_errors(build: Path, tmp_path: Path) -> None:
    page = write_report(build, tmp_path / "report.html")
    assert load(page, tmp_path).errors == []
    # the same check sees an error where there is one
    broken = tmp_path / "broken.html"
    broken.write_text(page.read_text().replace("</body>", "<script>noSuchFunction();</script></body>"))
    errors = load(broken, tmp_path).errors
    assert any("noSuchFunction" in e for e in errors), errors


def _pixels(image: np.ndarray, colour: str) -> np.ndarray:
    rgb = np.array([int(colour[i:i + 2], 16) for i in (1, 3, 5)])
    return np.all(np.abs(image[..., :3].astype(int) - rgb) <= 6, axis=-1)


@pytest.mark.chromium
def test_a_screenshot_shows_the_chart(build: Path, tmp_path: Path) -> None:
    from matplotlib import image as mpimg

    page = write_report(build, tmp_path / "report.html")
    dom = load(page, tmp_path).dom
    m = re.search(r'data-chart="(\d+),(\d+),(\d+),(\d+)"', dom)
    assert m, "the page did not report where its chart is"
    x, y, w, h = (int(v) for v in m.groups())
    assert w > 300 and h > 200 and y + h <= WINDOW[1], (x, y, w, h)
    shot = tmp_path / "shot.png"
    chromium(page, tmp_path, f"--screenshot={shot}")
    image = (mpimg.imread(str(shot)) * 255).round().astype(np.uint8)
    assert image.shape[1] == WINDOW[0]
    inside = image[y:y + h, x:x + w]
    cpu, accel = _pixels(inside, CPU_COLOUR).sum(), _pixels(inside, ACCEL_COLOUR).sum()
    # the bars: CPU kernels dominate, and the accelerator kernels' waits show
    assert cpu > 5000 and accel > 100, (cpu, accel)
    # and the bars are the chart's: above it, in the page's header, neither colour fills anything
    above = image[: max(y - 400, 1)]
    assert _pixels(above, CPU_COLOUR).sum() < cpu / 20
