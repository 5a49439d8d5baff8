"""Which tools the tests need and whether this run may skip for a missing one: outside CI a test
whose tool is missing skips with the reason; in CI (CI set to true, 1 or yes) it fails instead."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest

from tvmx.errors import TvmxError

# marker -> what it needs (pytest_configure registers them)
MARKERS = {
    "toolchain": "needs the RISC-V cross toolchain",
    "spike": "needs the Spike simulator and dtc",
    "gxx": "needs a host C++ compiler (g++): the Gemmini Spike model and tiling probe are built with it",
    "chromium": "needs Debian's headless chromium: the report page is checked in a real browser",
}

BROWSERS = ("chromium", "chromium-browser")  # Debian's name, then Ubuntu's


def find_chromium() -> str:
    """The browser's path, or a ToolNotFoundError saying how to install it."""
    import shutil

    from tvmx.errors import ToolNotFoundError

    for name in BROWSERS:
        path = shutil.which(os.environ.get("TVMX_CHROMIUM", name))
        if path:
            return path
    raise ToolNotFoundError("chromium not found", hint="apt-get install chromium (make setup installs it)")


def in_ci() -> bool:
    """CI=true/1/yes (any case) is CI; CI=false, CI=0 or an empty CI is not."""
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def missing_tools() -> dict[str, str]:
    """marker -> why its tool is missing, for every marker whose tool this machine lacks."""
    from tvmx.simulator.extension import find_gxx
    from tvmx.simulator.spike import require_dtc, spike_binary
    from tvmx.target import load_target
    from tvmx.toolchain.riscv import find_toolchain

    target = load_target("rv64gc")
    checks = {
        "toolchain": lambda: find_toolchain(target.cpu, target.toolchain),
        "spike": lambda: (spike_binary(), require_dtc()),
        "gxx": find_gxx,
        "chromium": find_chromium,
    }
    missing = {}
    for marker, check in checks.items():
        try:
            check()
        except TvmxError as exc:
            missing[marker] = exc.message
    return missing


def skip_or_fail(reason: str) -> NoReturn:
    """Skip for a missing tool, except in CI, which must have every tool."""
    if in_ci():
        pytest.fail(f"{reason} (CI must have every tool: run `make setup`)")
    pytest.skip(reason)
