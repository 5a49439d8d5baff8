"""Layout and bookkeeping of `build/<model>-<target>/` (IREE-style numbered per-stage dumps)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MANIFEST = "manifest.json"
COMMANDS = "commands.sh"


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def atomic_write(path: Path, data: bytes | str) -> None:
    """Write through a temporary file so a crash never leaves a half-written artifact."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data.encode() if isinstance(data, str) else data)
    os.replace(tmp, path)


@dataclass
class BuildDir:
    root: Path
    manifest: dict[str, Any] = field(default_factory=dict)

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

    def start(self, key: dict[str, Any], info: dict[str, Any]) -> None:
        """Begin a fresh build: earlier stage folders and records are removed, not mixed in."""
        if self.root.exists():
            for child in self.root.iterdir():
                if child.name[:2].isdigit() or child.name in (MANIFEST, COMMANDS, "model.elf"):
                    shutil.rmtree(child) if child.is_dir() else child.unlink()
        self.root.mkdir(parents=True, exist_ok=True)
        self.manifest = {**info, "key": key, "stages": [], "complete": False}
        self._save()

    def record_stage(self, name: str, inputs: list[Path], outputs: list[Path], info: dict[str, Any]) -> None:
        entry = {
            "stage": name,
            "inputs": {self._rel(p): sha256_file(p) for p in inputs},
            "outputs": {self._rel(p): sha256_file(p) for p in outputs},
            **info,
        }
        self.manifest["stages"].append(entry)
        self._save()

    def finish(self, extra: dict[str, Any]) -> None:
        self.manifest.update(extra)
        self.manifest["complete"] = True
        self._save()

    def is_up_to_date(self, key: dict[str, Any]) -> bool:
        """A complete earlier build with the same key whose outputs are unchanged on disk."""
        try:
            old = json.loads(self.manifest_path.read_text())
        except (OSError, ValueError):
            return False
        if not old.get("complete") or old.get("key") != key:
            return False
        for stage in old["stages"]:
            for rel, digest in stage["outputs"].items():
                path = self.root / rel
                if not path.is_file() or sha256_file(path) != digest:
                    return False
        self.manifest = old
        return True

    def _rel(self, path: Path) -> str:
        try:
            return str(path.resolve().relative_to(self.root.resolve()))
        except ValueError:
            return str(path)

    def _save(self) -> None:
        atomic_write(self.manifest_path, json.dumps(self.manifest, indent=2) + "\n")
