"""Every tests/data/targets/invalid_*.yaml must be rejected with an error naming the file and the JSON path.

Each file's first line is `# expect: <text>`, a fragment the error message must contain.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tvmx.errors import InputError
from tvmx.target import load_target

DATA = Path(__file__).resolve().parents[1] / "data" / "targets"
INVALID = sorted(DATA.glob("invalid_*.yaml"))


def expected_fragment(path: Path) -> str | None:
    first = path.read_text().splitlines()[0]
    return first.removeprefix("# expect:").strip() if first.startswith("# expect:") else None


@pytest.mark.parametrize("path", INVALID, ids=[p.stem for p in INVALID])
def test_invalid_target_is_rejected(path: Path) -> None:
    with pytest.raises(InputError) as info:
        load_target(path)
    message = info.value.message
    assert message.startswith(f"{path}: $."), message
    fragment = expected_fragment(path)
    if fragment is not None:
        assert f": {fragment}" in message, message


@pytest.mark.parametrize("name", ["rv64gc", "rv64gcv", "gemmini", "gemmini-8"])
def test_shipped_targets_are_valid(name: str) -> None:
    target = load_target(name)
    assert target.name == name
    if target.accelerator is not None:
        assert target.simulator.extension is not None and target.simulator.timing is not None
