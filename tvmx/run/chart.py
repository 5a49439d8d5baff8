"""run/profile.png: cycles per kernel as horizontal bars, each split into the CPU's instructions and
the cycles the CPU waited for the accelerator (matplotlib's Agg backend: no display needed)."""

from __future__ import annotations

import io
from typing import Any

CPU_COLOUR = "#1f77b4"  # the report's browser test looks for these two colours in the screenshot
ACCEL_COLOUR = "#ff7f0e"
TOP = 20


def profile_png(profile: dict[str, Any], top: int = TOP) -> bytes:
    """The chart of a profile.json document, as PNG bytes."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    from matplotlib import pyplot as plt

    kernels = sorted(profile["kernels"], key=lambda k: -k["cycles"])[:top][::-1]  # the costliest on top
    names = [f"{k['name'][:40]}{'...' if len(k['name']) > 40 else ''}" + (f" x{k['calls']}" if k["calls"] > 1 else "")
             for k in kernels]
    waits = [max(k["cycles"] - k["instret"], 0) for k in kernels]
    cpu = [k["cycles"] - w for k, w in zip(kernels, waits, strict=True)]
    fig, ax = plt.subplots(figsize=(9, 0.32 * len(kernels) + 1.4), dpi=100)
    try:
        ax.barh(names, cpu, color=CPU_COLOUR, label="CPU (instructions retired)")
        ax.barh(names, waits, left=cpu, color=ACCEL_COLOUR, label="waiting for the accelerator")
        total = profile["total"]["cycles"]
        ax.set_xlabel(f"cycles ({total:,} in all)" if total else "cycles")
        ax.set_title(f"cycles per kernel: {profile.get('target', '')}")
        ax.tick_params(axis="y", labelsize=7)
        ax.legend(loc="lower right", fontsize=8)
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png", metadata={"Software": None})  # no version stamp: same profile, same bytes
        return buf.getvalue()
    finally:
        plt.close(fig)
