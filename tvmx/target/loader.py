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

from tvmx.errors import InputError, one_line
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
    """The target schema: schema.json, and each accelerator kind's own sections (its
    `<kind>.schema.json`) as `$defs.<kind>` for `accelerator` and `$defs.<kind>_timing` for
    `simulator.timing`."""
    from tvmx.accelerators import KINDS, kind_schema  # (lazily: the accelerators import this package)

    doc: dict[str, Any] = json.loads(resources.files("tvmx.target").joinpath("schema.json").read_text())
    for kind in KINDS:
        part = kind_schema(kind)
        doc["$defs"].update(part.get("$defs", {}), **{kind: part["accelerator"], f"{kind}_timing": part["timing"]})

    def any_kind(suffix: str) -> dict[str, Any]:
        refs = [{"$ref": f"#/$defs/{kind}{suffix}"} for kind in KINDS]
        return refs[0] if len(refs) == 1 else {"oneOf": refs}

    doc["properties"]["accelerator"] = any_kind("")
    doc["properties"]["simulator"]["properties"]["timing"] = any_kind("_timing")
    return doc


def find_target(spec: str) -> Path:
    """Resolve a target name (`rv64gc`), a file name (`rv64gc.yaml`) or a path to a target file."""
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


# A target is ~100 YAML nodes, 4 levels deep; aliases that expand to more than this are a mistake or
# an attack (a "billion laughs" document is a few hundred bytes that expands to gigabytes), and
# deeper nesting would exhaust the recursion of the schema validator.
MAX_NODES = 100_000
MAX_DEPTH = 32


class _TargetLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing a key given twice in one mapping (YAML would keep the last silently)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[tuple[str, str]] = set()
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
                key = (key_node.tag, key_node.value)
                if key in seen:
                    raise yaml.constructor.ConstructorError(None, None, f"duplicate key '{key_node.value}'",
                                                            key_node.start_mark)
                seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _expanded_size(node: yaml.Node, seen: dict[int, tuple[int, int]] | None = None) -> tuple[int, int]:
    """(nodes, levels) of the document once every alias is expanded: a shared node counts once per
    use. Memoized per node, so a billion laughs costs as little as it is long."""
    seen = {} if seen is None else seen
    if id(node) in seen:
        if seen[id(node)][0] < 0:
            raise InputError("an alias refers to the node that contains it", hint="remove the recursive alias")
        return seen[id(node)]
    seen[id(node)] = (-1, 0)  # in progress: meeting it again below is a cycle
    children: list[yaml.Node] = []
    if isinstance(node, yaml.SequenceNode):
        children = list(node.value)
    elif isinstance(node, yaml.MappingNode):
        children = [n for pair in node.value for n in pair]
    sizes = [_expanded_size(child, seen) for child in children]
    result = (1 + sum(n for n, _ in sizes), 1 + max((d for _, d in sizes), default=0))
    if result[1] > MAX_DEPTH:
        raise InputError(f"nested more than {MAX_DEPTH} levels deep", hint="a target file is a few levels deep")
    seen[id(node)] = result
    return result


def _parse_yaml(path: Path, text: str) -> Any:
    loader = _TargetLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        try:
            size, _ = _expanded_size(node)
        except InputError as exc:
            raise InputError(f"{path}: {exc.message}", hint=exc.hint) from None
        if size > MAX_NODES:
            raise InputError(f"{path}: its aliases expand to {size:,} YAML nodes (at most {MAX_NODES:,})",
                             hint="write the values out instead of nesting aliases")
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _read_yaml(path: Path) -> Any:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror}", hint="check the path and its permissions") from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start})",
                         hint="save the target file as UTF-8") from None
    try:
        return _parse_yaml(path, text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise InputError(f"{path}{where}: invalid YAML: {problem}", hint="fix the YAML syntax") from exc
    except RecursionError:
        raise InputError(f"{path}: invalid YAML: nested too deeply", hint="a target is a few levels deep") from None


def _check_version(data: dict[str, Any], path: Path) -> None:
    """The gate before the schema (west's manifest version check): a newer file may mean anything."""
    if "schema_version" not in data:
        raise InputError(f"{path}: $.schema_version: missing", hint=f"add `schema_version: {SCHEMA_VERSION}` first")
    version = data["schema_version"]
    if type(version) is int and version > SCHEMA_VERSION:
        raise InputError(f"{path}: $.schema_version: {version} is not supported: the file is newer than this tvmx "
                         f"(it reads schema_version {SCHEMA_VERSION})", hint="upgrade tvmx to read this target")
    if type(version) is not int or version != SCHEMA_VERSION:  # not `==`: True and 1.0 equal 1 in Python
        raise InputError(f"{path}: $.schema_version: {one_line(repr(version), 60)} is not supported",
                         hint=f"this tvmx reads schema_version {SCHEMA_VERSION} (an integer)")


def _schema_error(path: Path, errors: list[jsonschema.ValidationError]) -> InputError:
    err = errors[0]
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    where, message = err.json_path, err.message
    if err.validator == "additionalProperties" and isinstance(err.instance, dict):
        # name the unexpected key itself, not the mapping that holds it (keys may be numbers too)
        allowed = err.schema.get("properties", {})
        extra = sorted((k for k in err.instance if k not in allowed), key=str)
        if extra:
            where = f"{where}.{extra[0]}"
            message = f"unknown key (allowed: {', '.join(sorted(allowed))})"
    # jsonschema's messages quote the offending value, which may be large
    return InputError(f"{path}: {where}: {one_line(message, 240)}{more}",
                      hint="`tvmx targets show rv64gc` prints a valid target to compare with")


def read_target_data(path: Path) -> dict[str, Any]:
    """Parse and validate a target file; errors name the file and the JSON path of the field."""
    data = _read_yaml(path)
    if not isinstance(data, dict):
        raise InputError(f"{path}: a target file must be a YAML mapping", hint="see targets/rv64gc.yaml")
    _check_version(data, path)
    validator = jsonschema.Draft202012Validator(schema())
    errors = sorted(validator.iter_errors(data), key=lambda e: (len(e.absolute_path), e.json_path))
    if errors:
        raise _schema_error(path, errors)
    check_semantics(data, path)
    return data


def load_target(spec: str | Path) -> Target:
    path = find_target(str(spec))
    return Target.from_dict(read_target_data(path), path)
