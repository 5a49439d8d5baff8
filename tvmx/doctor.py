"""`tvmx doctor`: which toolchain and simulator tvmx finds, their versions, and how to fix gaps."""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass

from tvmx.errors import TvmxError
from tvmx.target.data import configs_dir, targets_dir
from tvmx.target.model import Target
from tvmx.toolchain.command import version_line
from tvmx.toolchain.riscv import INSTALL_HINT, find_toolchain


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""


def run_checks(target: Target) -> list[Check]:
    checks = [Check("python", True, sys.version.split()[0])]
    try:
        import tvm

        checks.append(Check("apache-tvm", True, tvm.__version__))
    except ImportError:
        checks.append(Check("apache-tvm", False, "not importable", "run `make setup`"))
    try:
        tc = find_toolchain(target.cpu, target.toolchain)
        checks.append(Check("C toolchain", True, f"{tc.describe()}: {tc.version()}"))
        checks.append(Check("objdump", True, tc.objdump))
    except TvmxError as exc:
        checks.append(Check("C toolchain", False, exc.message, INSTALL_HINT))
    try:
        from tvmx.simulator.spike import spike_binary, spike_version

        checks.append(Check("spike", True, f"{spike_binary()}: {spike_version()}"))
    except TvmxError as exc:
        checks.append(Check("spike", False, exc.message, exc.hint or ""))
    dtc = shutil.which("dtc")
    checks.append(Check("dtc", dtc is not None, version_line(dtc) if dtc else "not found",
                        "apt-get install device-tree-compiler"))
    try:
        from tvmx.simulator.extension import GXX_HINT, find_gxx

        gxx = find_gxx()
        checks.append(Check("g++ (accelerator models, tiling)", True, f"{gxx}: {version_line(gxx)}"))
    except TvmxError as exc:
        checks.append(Check("g++ (accelerator models, tiling)", False, exc.message, GXX_HINT))
    try:
        checks.append(Check("shipped targets, configs", True, f"{targets_dir()}, {configs_dir()}"))
    except TvmxError as exc:
        checks.append(Check("shipped targets, configs", False, exc.message, exc.hint or ""))
    try:
        import onnxruntime

        checks.append(Check("onnxruntime", True, onnxruntime.__version__))
    except ImportError:
        checks.append(Check("onnxruntime", False, "not importable", "run `make setup`"))
    return checks
