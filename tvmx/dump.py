"""`tvmx dump-ir`: the IR of one stage, compiled into a scratch build directory."""

from __future__ import annotations

import tempfile
from pathlib import Path

from tvmx.options import Options
from tvmx.pipeline import compile_model
from tvmx.stages.registry import find_stage
from tvmx.target.model import Target

# dump-ir stage name -> (pipeline stage to stop after, files to print, relative to the build dir)
DUMPS: dict[str, tuple[str, tuple[str, ...]]] = {
    "import": ("import", ("01-import/module.py",)),
    "relax": ("relax", ("02-relax/module.py",)),
    "relay": ("relax", ("02-relax/module.py",)),
    "tune": ("tune", ("03-tune/schedules.json", "03-tune/module.py")),
    "tir": ("lower", ("04-lower/kernels_tir.py",)),
    "c": ("codegen", ("05-codegen/kernels.c", "05-codegen/model.c", "05-codegen/accel_glue.c")),
    "asm": ("assemble", ("06-assemble/model.dis",)),
}


def dump_ir(model: Path, target: Target, options: Options, stage: str) -> str:
    last, files = DUMPS[stage]
    with tempfile.TemporaryDirectory(prefix="tvmx-dump-") as tmp:
        build = Path(tmp) / "build"
        compile_model(model, target, options, build, compile_to=find_stage(last))
        parts = []
        for rel in [f for f in files if (build / f).is_file()]:
            text = (build / rel).read_text()
            parts.append(text if len(files) == 1 else f"// ===== {rel} =====\n{text}")
        return "\n".join(parts)
