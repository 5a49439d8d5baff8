"""Find, read and validate target files (west's manifest loading: version gate, then schema)."""

from __future__ import annotations

import json
import os
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from tvmx.errors import InputError
from tvmx.target.checks import check_semantics
from tvmx.target.data import targets_dir
from tvmx.target.model import Target

SCHEMA_VERSION = 1


def search_path() -> list[Path]:
    """Folders searched for target names: $TVMX_TARGETS_PATH entries first, then the shipped ones
    (in the installed package, or the checkout's targets/: see tvmx.target.data)."""
    extra = [Path(p) for p in os.environ.get("TVMX_TARGETS_PATH", "").split(os.pathsep) if p]
    return [*extra, targets_dir()]


@cache
def schema() -> dict[str, Any]:
    text = resources.files("tvmx.target").joinpath("schema.json").read_text()
    return json.loads(text)  # type: ignore[no-any-return]


def find_target(spec: str) -> Path:
    """Resolve `gemmini`, `gemmini.yaml` or a path to a target file."""
    candidate = Path(spec)
    if candidate.suffix in (".yaml", ".yml") and (candidate.exists() or os.sep in spec):
        if not candidate.is_file():
            raise InputError(f"target file not found: {spec}", hint="check the path")
        return candidate
    name = spec.removesuffix(".yaml").removesuffix(".yml")
    for folder in search_path():
        for suffix in (".yaml", ".yml"):
            path = folder / f"{name}{suffix}"
            if path.is_file():
                return path
    known = ", ".join(t.stem for t in list_targets())
    raise InputError(f"unknown target '{spec}'", hint=f"known targets: {known}; or pass a path to a YAML file")


def list_targets() -> list[Path]:
    seen: dict[str, Path] = {}
    for folder in search_path():
        for path in sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")]):
            seen.setdefault(path.stem, path)
    return sorted(seen.values(), key=lambda p: p.stem)


def read_target_data(path: Path) -> dict[str, Any]:
    """Parse and validate a target file; errors name the file and the JSON path of the field."""
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise InputError(f"{path}{where}: invalid YAML: {problem}", hint="fix the YAML syntax") from exc
    if not isinstance(data, dict):
        raise InputError(f"{path}: a target file must be a YAML mapping", hint="see targets/rv64gc.yaml")
    version = data.get("schema_version")
    if version != SCHEMA_VERSION:
        raise InputError(
            f"{path}: $.schema_version: {version!r} is not supported",
            hint=f"this tvmx reads schema_version {SCHEMA_VERSION}",
        )
    validator = jsonschema.Draft202012Validator(schema())
    errors = sorted(validator.iter_errors(data), key=lambda e: (len(e.absolute_path), e.json_path))
    if errors:
        err = errors[0]
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        where, message = err.json_path, err.message
        if err.validator == "additionalProperties" and isinstance(err.instance, dict):
            # name the unexpected key itself, not the mapping that holds it
            extra = sorted(set(err.instance) - set(err.schema.get("properties", {})))
            if extra:
                where = f"{where}.{extra[0]}"
                message = f"unknown key (allowed: {', '.join(sorted(err.schema.get('properties', {})))})"
        raise InputError(
            f"{path}: {where}: {message}{more}",
            hint="`tvmx targets show rv64gc` prints a valid target to compare with",
        )
    check_semantics(data, path)
    return data


def load_target(spec: str | Path) -> Target:
    path = find_target(str(spec))
    return Target.from_dict(read_target_data(path), path)
