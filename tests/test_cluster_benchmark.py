"""The cluster benchmark's short version: genreflow on five namespace hosts, a worker host cut.

It needs root and ``ip netns`` (and PostgreSQL's binaries); elsewhere it is skipped, with the
reason ``benchmarks/cluster.py --check`` gives.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "cluster.py"

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


def table_rows(output: str) -> dict[str, list[str]]:
    """Return the printed table's rows by phase name."""
    rows = {}
    for line in output.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.startswith("| ") and len(cells) == 12 and cells[0] != "phase":
            rows[cells[0]] = cells
    return rows


def test_a_cut_off_worker_host_loses_nothing() -> None:
    check = subprocess.run([sys.executable, str(SCRIPT), "--check"], capture_output=True,
                           text=True, timeout=60)  # fmt: skip
    if check.returncode != 0:
        pytest.skip(check.stdout.strip() or check.stderr.strip())

    run = subprocess.run([sys.executable, str(SCRIPT), "--short"], capture_output=True,
                         text=True, timeout=840, cwd=ROOT)  # fmt: skip

    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    rows = table_rows(run.stdout)
    assert list(rows) == ["one host", "two hosts", "w2 cut", "w2 back", "all jobs"], run.stdout
    _, _, songs, _, _, on_w1, on_w2, lost, _, duplicate, failed, _ = rows["all jobs"]
    assert (lost, duplicate, failed) == ("0", "0", "0")
    assert int(on_w1) + int(on_w2) == int(songs)
    assert int(rows["two hosts"][6]) > 0  # the joining host took work
    cut = rows["w2 cut"]
    assert cut[8] == "0"  # nothing stuck 60 s after the cut
    assert float(cut[11]) < 60
    assert not subprocess.run(
        ["ip", "netns", "list"], capture_output=True, text=True, check=True
    ).stdout.count("gfc-")  # its hosts are gone
