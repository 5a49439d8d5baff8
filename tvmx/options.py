"""Pipeline options: built-in defaults < a `configs/*.yaml` preset < command-line flags.

Presets hold pipeline knobs only (optimisation level, tolerances, timeouts), never hardware.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tvmx.errors import InputError
from tvmx.target.data import configs_dir


@dataclass(frozen=True)
class Options:
    opt_level: int = 2  # C compiler -O level for kernels and model.c
    input_shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)
    rtol: float | None = None  # None: the target's verify.rtol
    atol: float | None = None
    timeout_s: float | None = None  # None: the target's simulator.timeout_s
    cflags: tuple[str, ...] = ()
    records: Path | None = None  # tuning records folder (None: the per-user cache); see tvmx.tune.records
    config: Path | None = None  # the preset file the values came from (for depfiles; its values are in key())

    def key(self) -> dict[str, Any]:
        """The options that change the build's output (for up-to-date checks)."""
        return {"opt_level": self.opt_level, "cflags": list(self.cflags),
                "input_shapes": {k: list(v) for k, v in sorted(self.input_shapes.items())}}


def config_path(spec: str) -> Path:
    """A preset by name (`configs/<name>.yaml`) or path."""
    configs = configs_dir()
    path = Path(spec)
    if not path.is_file():
        path = configs / f"{spec.removesuffix('.yaml')}.yaml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in configs.glob("*.yaml")))
        raise InputError(f"config '{spec}' not found", hint=f"known configs: {known}; or pass a path")
    return path


def load_config(spec: str | None) -> dict[str, Any]:
    """Read a preset by name (`configs/<name>.yaml`) or path; unknown keys are errors."""
    if spec is None:
        return {}
    path = config_path(spec)
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise InputError(f"{path}: invalid YAML: {exc}", hint="fix the YAML syntax") from exc
    if not isinstance(data, dict):
        raise InputError(f"{path}: a config must be a YAML mapping", hint="see configs/default.yaml")
    allowed = {f.name for f in dataclasses.fields(Options)} - {"input_shapes", "records", "config"}
    for key in data:
        if key not in allowed:
            raise InputError(f"{path}: unknown option '{key}'", hint=f"allowed: {', '.join(sorted(allowed))}")
    if "cflags" in data:
        data["cflags"] = tuple(data["cflags"])
    return data


def make_options(config: str | None = None, **cli: Any) -> Options:
    """Merge the preset with the CLI values that were actually given (None means not given)."""
    values = {**load_config(config or "default"), **{k: v for k, v in cli.items() if v is not None},
              "config": config_path(config or "default")}
    try:
        return Options(**values)
    except TypeError as exc:
        raise InputError(f"bad option: {exc}") from exc


def parse_input_shapes(specs: tuple[str, ...]) -> dict[str, tuple[int, ...]]:
    """`--input-shape x=1,3,224,224` (repeatable)."""
    shapes: dict[str, tuple[int, ...]] = {}
    for spec in specs:
        name, sep, dims = spec.partition("=")
        try:
            if not sep or not name:
                raise ValueError
            if name in shapes:
                raise InputError(f"--input-shape gives input '{name}' twice", hint="give each input one shape")
            shapes[name] = tuple(int(d) for d in dims.split(","))
            if any(d <= 0 for d in shapes[name]):
                raise ValueError
        except ValueError:
            raise InputError(f"bad --input-shape '{spec}'", hint="use NAME=D0,D1,... with positive sizes") from None
    return shapes
