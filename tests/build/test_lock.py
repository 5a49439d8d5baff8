"""The file lock shared tvmx processes take around cache builds and records appends."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from tvmx.build.lock import file_lock
from tvmx.errors import InputError

# Takes the lock (saying so if it had to wait), appends its name to a log, holds it a moment.
TAKER = """
import sys, time
from pathlib import Path
from tvmx.build.lock import file_lock
lock, log, name = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
with file_lock(lock, lambda p: print("waiting", flush=True), remove=sys.argv[4] == "1"):
    with log.open("a") as f:
        f.write(name + " in\\n")
    time.sleep(0.2)
    with log.open("a") as f:
        f.write(name + " out\\n")
"""


def _taker(lock: Path, log: Path, name: str, remove: bool) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", TAKER, str(lock), str(log), name, "1" if remove else "0"],
                            text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


@pytest.mark.parametrize("remove", [False, True])
def test_holders_never_overlap(tmp_path: Path, remove: bool) -> None:
    lock, log = tmp_path / "x.lock", tmp_path / "log"
    with file_lock(lock, remove=remove):
        procs = [_taker(lock, log, f"p{i}", remove) for i in range(3)]
        for p in procs:  # each one blocks, and says so
            assert p.stdout is not None and p.stdout.readline() == "waiting\n"
        time.sleep(0.2)
        assert not log.exists(), "a process took the lock while this one held it"
    outputs = [p.communicate(timeout=60)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), outputs
    lines = log.read_text().splitlines()
    assert len(lines) == 6
    for i in range(0, 6, 2):  # each "in" directly followed by the same process's "out"
        assert lines[i].endswith(" in") and lines[i + 1] == lines[i].replace(" in", " out"), lines
    assert lock.exists() != remove, "a removable lock is gone once its last holder is done"


def test_unwritable_folder_is_an_input_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(InputError, match="cannot create the lock file"), file_lock(tmp_path / "file" / "x.lock"):
        pass


def test_a_folder_nobody_may_write_is_read_without_the_lock(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # (root may write anywhere: the folder's permission is what os.access reports for a user)
    monkeypatch.setattr("tvmx.build.lock.os.access", lambda _path, _mode: False)
    with file_lock(tmp_path / "x.lock", readonly_ok=True):
        ran = True
    assert ran and not (tmp_path / "x.lock").exists()
