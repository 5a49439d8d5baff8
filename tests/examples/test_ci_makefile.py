"""examples/ci/Makefile, run as a user would: `make -j2` quantizes, compiles, verifies and reports two
sample models on rv64gc and gemmini; a second make does nothing; touching a target YAML re-runs
exactly the builds of that target."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TVMX = Path(sys.executable).with_name("tvmx")
BUILDS = ("cnn-rv64gc", "mlp-rv64gc", "cnn-gemmini", "mlp-gemmini")


def _make(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    argv = ["make", "-C", str(folder), f"TVMX={TVMX}", f"PYTHON={sys.executable}", *args]
    return subprocess.run(argv, text=True, capture_output=True, timeout=900)


def _changed_elsewhere(folder: Path, since: float) -> list[str]:
    """make flags that take as unchanged the depfiles' entries outside `folder` (tvmx's own files)
    edited while the test ran: in CI there are none; on a shared checkout, someone else's edit of
    tvmx would (rightly) rebuild everything and hide what is tested here."""
    flags = []
    for depfile in (folder / "out").glob("*.d"):
        for line in depfile.read_text().splitlines():
            name = line.strip().rstrip("\\").strip().rstrip(":")
            path = Path(name)
            if path.is_absolute() and folder not in path.parents and path.is_file() and path.stat().st_mtime > since:
                flags.append(f"--assume-old={name}")
    return sorted(set(flags))


def _tvmx_commands(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith(str(TVMX))]


@pytest.mark.slow
@pytest.mark.toolchain
@pytest.mark.spike
@pytest.mark.gxx
def test_ci_makefile(tmp_path: Path) -> None:
    if shutil.which("make") is None:
        pytest.skip("GNU make is not installed")
    start = time.time() - 1
    shutil.copy(REPO / "examples" / "ci" / "Makefile", tmp_path / "Makefile")
    shutil.copytree(REPO / "targets", tmp_path / "targets")

    first = _make(tmp_path, "-j2")
    assert first.returncode == 0, first.stdout + first.stderr
    for build in BUILDS:
        assert (tmp_path / "out" / build / "model.elf").is_file()
        assert (tmp_path / "out" / f"{build}.html").is_file()
        suite = ET.parse(tmp_path / "out" / f"{build}.junit.xml").getroot().find("testsuite")
        assert suite is not None and suite.get("failures") == "0" and suite.get("errors") == "0", build
        assert int(suite.get("tests") or 0) >= 1
    assert len(list((tmp_path / "out").glob("*.d"))) == len(BUILDS)

    again = _make(tmp_path, "-q", *_changed_elsewhere(tmp_path, start))
    assert again.returncode == 0, "a second make has work to do:\n" + _make(tmp_path, "-n").stdout

    time.sleep(0.01)
    (tmp_path / "targets" / "gemmini.yaml").touch()
    touched = _make(tmp_path, "-j2", *_changed_elsewhere(tmp_path, start))
    assert touched.returncode == 0, touched.stdout + touched.stderr
    ran = _tvmx_commands(touched.stdout)
    compiles = sorted(c.split(" -o ")[1].split()[0] for c in ran if " compile " in c)
    assert compiles == ["out/cnn-gemmini", "out/mlp-gemmini"], ran
    assert not [c for c in ran if "rv64gc" in c], ran
    assert sum(" verify " in c for c in ran) == 2, ran
    settled = _make(tmp_path, "-q", *_changed_elsewhere(tmp_path, start))
    assert settled.returncode == 0, "make after the rebuild has work to do:\n" + _make(tmp_path, "-n").stdout
