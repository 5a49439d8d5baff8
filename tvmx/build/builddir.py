"""Layout and bookkeeping of `build/<model>-<target>/` (IREE-style numbered per-stage dumps)."""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tvmx.errors import InputError

MANIFEST = "manifest.json"
COMMANDS = "commands.sh"
MANIFEST_TMP = ".manifest.json.tmp"  # the manifest's own temporary name: fixed, so always listed as created
MANIFEST_FORMAT = "tvmx-build/1"  # marks a manifest as tvmx's own: only then is anything in the folder deleted
# Build folders being written by this process: atomic_write claims a file in the folder's manifest
# before it creates it, so a build killed at any moment has listed every file it left behind.
_WRITING: dict[Path, BuildDir] = {}


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def atomic_write(path: Path, data: bytes | str) -> None:
    """Write through a unique temporary file in the same folder, then rename: a crash never leaves a
    half-written artifact, and two writers never share a temporary name. Inside a build folder being
    written, both names are first claimed in its manifest (see BuildDir.writing)."""
    tmp = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp"
    owner = _writer_of(path)
    if owner is not None:
        owner.will_write([path, tmp])
    _replace_with(path, tmp, data)


def _replace_with(path: Path, tmp: Path, data: bytes | str, *, exclusive: bool = True) -> None:
    """Write `tmp`, then rename it to `path`. `exclusive`: `tmp` must be new (a unique name); the
    manifest's fixed temporary name may be a leftover of a killed build and is overwritten."""
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | (os.O_EXCL if exclusive else os.O_TRUNC), 0o644)
    try:
        os.fchmod(fd, 0o644)  # whatever the umask: artifacts are readable like any compiler's output
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _writer_of(path: Path) -> BuildDir | None:
    if not _WRITING:
        return None
    folder = path.parent.resolve()
    for root, build in _WRITING.items():
        if folder == root or root in folder.parents:
            return build
    return None


_OWN_FILES = {MANIFEST, MANIFEST_TMP, COMMANDS}  # tvmx's names in every build folder, listed from the start


def _files_under(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() or p.is_symlink()}


@dataclass
class BuildDir:
    """A build folder. tvmx deletes nothing in it but the files its own manifest lists as created
    by an earlier build (`created`); a folder holding other files and no tvmx manifest is refused
    unless `force`, and even then nothing already there is deleted."""

    root: Path
    manifest: dict[str, Any] = field(default_factory=dict)
    _foreign: set[str] = field(default_factory=set)  # files that were there before tvmx, never ours

    @property
    def commands_log(self) -> Path:
        return self.root / COMMANDS

    @property
    def manifest_path(self) -> Path:
        return self.root / MANIFEST

    def stage_dir(self, index: int, name: str) -> Path:
        path = self.root / f"{index:02d}-{name}"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def start(self, key: dict[str, Any], info: dict[str, Any], *, force: bool = False,
              keep_stages: list[str] | None = None) -> None:
        """Begin a build: what an earlier build created is removed, not mixed in, except the files of
        `keep_stages` (reused: see reusable_stages); nothing that tvmx did not create is removed."""
        if self.root.exists() and not self.root.is_dir():
            raise InputError(f"{self.root} exists and is not a folder", hint="pass another build folder with -o")
        earlier = self._previous_stages()
        kept = [earlier[name] for name in keep_stages or [] if name in earlier]
        owned = self._created_by_earlier_build()
        # the manifest's temporary name is tvmx's alone: a leftover of a build killed while writing
        # its first manifest makes no folder foreign
        present = _files_under(self.root) - {MANIFEST_TMP} if self.root.is_dir() else set()
        if owned is None and present and not force:
            raise InputError(f"{self.root} holds files that tvmx did not create (no tvmx manifest.json there)",
                             hint="pass another (new or empty) folder with -o, or --force to build into it "
                                  "anyway (tvmx then deletes nothing that is already there)")
        owned = owned or set()
        self._foreign = present - owned
        # a kept stage's outputs and whatever else is in its folder (NN-stage/, where its outputs lie)
        outputs = {rel for entry in kept for rel in entry["outputs"]}
        folders = tuple({rel.split("/")[0] + "/" for rel in outputs if "/" in rel})
        keep = {rel for rel in owned & present if rel in outputs or rel.startswith(folders)}
        keep |= {COMMANDS} if kept else set()  # the reused stages' commands stay on record
        self.root.mkdir(parents=True, exist_ok=True)
        self.manifest = {"format": MANIFEST_FORMAT, **info, "key": key,
                         "stages": [{**entry, "reused": True} for entry in kept], "complete": False,
                         "created": sorted(owned | (_OWN_FILES - self._foreign))}
        # The new, incomplete manifest goes first and still lists the old files: a build killed while
        # deleting them leaves a folder whose manifest owns what is left and claims nothing finished.
        self._save(update_created=False)
        for rel in sorted(owned & present - {MANIFEST} - keep):
            (self.root / rel).unlink()
        self._remove_empty_dirs(owned)
        self._save()

    @contextmanager
    def writing(self) -> Iterator[None]:
        """While a build runs: every atomic_write into the folder is claimed in the manifest first."""
        root = self.root.resolve()
        _WRITING[root] = self
        try:
            yield
        finally:
            _WRITING.pop(root, None)

    def will_write(self, paths: list[Path]) -> None:
        """List files as created before they exist (a name that never appears is harmless: only files
        present and listed are ever deleted)."""
        listed = set(self.manifest.get("created", []))
        new = {self._rel(p) for p in paths if self._inside(p)} - listed - self._foreign  # never a user's file
        if new:
            self.manifest["created"] = sorted(listed | new)
            self._save(update_created=False)

    def claim(self, paths: list[Path]) -> None:
        """Record files written into the build folder after the compile (the run's outputs) as tvmx's."""
        try:
            manifest = json.loads(self.manifest_path.read_text())
        except (OSError, ValueError):
            return  # not a tvmx build folder: nothing will ever delete these files
        if manifest.get("format") != MANIFEST_FORMAT:
            return
        created = set(manifest.get("created", []))
        created |= {self._rel(p) for p in paths if self._inside(p)}
        manifest["created"] = sorted(created)
        self.manifest = manifest
        self._save(update_created=False)

    def _created_by_earlier_build(self) -> set[str] | None:
        """The files an earlier tvmx build says it created, or None if the folder has no tvmx manifest."""
        old = self._previous()
        if old is None:
            return None
        created = old.get("created", [])
        if not isinstance(created, list):
            return {MANIFEST}
        # Only plain relative paths inside the folder: a doctored manifest cannot reach outside it.
        return {c for c in created if isinstance(c, str) and self._inside(self.root / c)} | {MANIFEST}

    def _remove_empty_dirs(self, owned: set[str]) -> None:
        """Folders that held only tvmx's files (deepest first)."""
        dirs = {Path(rel).parent for rel in owned} - {Path(".")}
        for parent in list(dirs):
            dirs |= set(parent.parents) - {Path(".")}
        for rel_dir in sorted(dirs, key=lambda d: len(d.parts), reverse=True):
            path = self.root / rel_dir
            if path.is_dir() and not any(path.iterdir()):
                path.rmdir()

    def _inside(self, path: Path) -> bool:
        root = self.root.resolve()
        resolved = path.resolve()
        return resolved != root and root in resolved.parents

    def record_stage(self, name: str, inputs: list[Path], outputs: list[Path], info: dict[str, Any]) -> None:
        entry = {
            "stage": name,
            "inputs": {self._rel(p): sha256_file(p) for p in inputs},
            "outputs": {self._rel(p): sha256_file(p) for p in outputs},
            **info,
        }
        self.manifest["stages"].append(entry)
        self._save()

    def stage_done(self, name: str, key: str, seconds: float) -> None:
        """Mark a stage finished (all its outputs exist) with its key (pipeline.stage_keys) and how
        long it ran: only a finished stage with the same key and intact outputs is ever reused."""
        for entry in self.manifest["stages"]:
            if entry["stage"] == name:
                entry["key"], entry["seconds"] = key, round(seconds, 3)
        self._save()

    def _previous_stages(self) -> dict[str, dict[str, Any]]:
        """The earlier build's records of its finished stages (those with a key), by stage name."""
        old = self._previous()
        stages = old.get("stages") if old else None
        if not isinstance(stages, list):
            return {}
        return {e["stage"]: e for e in stages if isinstance(e, dict) and isinstance(e.get("stage"), str)
                and isinstance(e.get("key"), str) and isinstance(e.get("outputs"), dict)}

    def has_previous_stage(self, name: str) -> bool:
        return name in self._previous_stages()

    def reusable_stages(self, names: list[str], keys: list[str]) -> int:
        """How many leading stages of the earlier build finished with these keys and left their
        outputs on disk unchanged."""
        earlier, count = self._previous_stages(), 0
        for name, key in zip(names, keys, strict=True):
            entry = earlier.get(name)
            if entry is None or entry["key"] != key or not self._intact({"stages": [entry]}):
                break
            count += 1
        return count

    def _previous(self) -> dict[str, Any] | None:
        try:
            old = json.loads(self.manifest_path.read_text())
        except (OSError, ValueError):
            return None
        return old if isinstance(old, dict) and old.get("format") == MANIFEST_FORMAT else None

    def finish(self, extra: dict[str, Any], outputs: list[Path] | None = None) -> None:
        """Mark the build complete, with the digests of its top-level `outputs` (model.elf, io.json):
        the last write, so a complete manifest means every file it lists is there and whole."""
        self.manifest.update(extra)
        self.manifest["outputs"] = {self._rel(p): sha256_file(p) for p in outputs or []}
        self.manifest["complete"] = True
        self._save()

    def is_up_to_date(self, key: dict[str, Any]) -> bool:
        """A complete earlier build with the same key whose outputs are unchanged on disk."""
        try:
            old = json.loads(self.manifest_path.read_text())
        except (OSError, ValueError):
            return False
        if not isinstance(old, dict) or not old.get("complete") or old.get("key") != key or not self._intact(old):
            return False
        self.manifest = old
        return True

    def _intact(self, manifest: dict[str, Any]) -> bool:
        """Every output the manifest records (per stage, and the build's own) is on disk, unchanged."""
        try:
            recorded = {rel: digest for stage in manifest["stages"] for rel, digest in stage["outputs"].items()}
            recorded.update(manifest.get("outputs", {}))
        except (KeyError, TypeError, AttributeError):  # not a manifest this tvmx wrote
            return False
        return all((self.root / rel).is_file() and sha256_file(self.root / rel) == digest
                   for rel, digest in recorded.items())

    def _rel(self, path: Path) -> str:
        try:
            return str(path.resolve().relative_to(self.root.resolve()))
        except ValueError:
            return str(path)

    def _save(self, *, update_created: bool = True) -> None:
        """Write the manifest (through its fixed, always-listed temporary name)."""
        if update_created:  # everything in the folder now that was not there before this build
            self.manifest["created"] = sorted((_files_under(self.root) | _OWN_FILES) - self._foreign)
        text = json.dumps(self.manifest, indent=2) + "\n"
        _replace_with(self.manifest_path, self.root / MANIFEST_TMP, text, exclusive=False)
