"""Where the data shipped with tvmx lives: `targets/` (with the accelerators' headers and Spike models),
`configs/` and the bare-metal `runtime/`.

An installed wheel holds them inside the package (tvmx/targets/..., tvmx/configs/...: pyproject.toml
maps the repository's top-level folders there). A checkout, or an editable install of one, keeps
`targets/` and `configs/` at the top of the repository, next to the package.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from pathlib import Path

from tvmx.errors import InputError

SHIPPED = ("targets", "configs", "runtime")


def _package_root() -> Path:
    # files() of a regular package on disk (wheel or checkout) is a real folder.
    return Path(str(resources.files("tvmx")))


@cache
def shipped_dir(name: str) -> Path:
    """The folder of shipped data `name` ("targets", "configs" or "runtime")."""
    package = _package_root()
    inside = package / name
    if inside.is_dir():  # an installed wheel, or a folder that always lives in the package (runtime/)
        return inside.resolve()
    checkout = package.parent
    if (checkout / name).is_dir() and (checkout / "pyproject.toml").is_file():  # a source checkout
        return (checkout / name).resolve()
    raise InputError(f"tvmx's shipped '{name}' folder is missing (looked in {inside} and {checkout / name})",
                     hint="reinstall tvmx: the installation is incomplete")


def shipped_files() -> list[Path]:
    """Every file shipped as data, sorted (for the compiler digest of the build key)."""
    files: list[Path] = []
    for name in SHIPPED:
        root = shipped_dir(name)
        files += [p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    return sorted(files)


def targets_dir() -> Path:
    return shipped_dir("targets")


def configs_dir() -> Path:
    return shipped_dir("configs")


def runtime_dir() -> Path:
    return shipped_dir("runtime")
