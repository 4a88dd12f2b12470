"""stats_share: worker files in a real directory, live and dead workers."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from gateway.observe import stats_share
from gateway.observe.stats import RollingStats


def _exited_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_live_peers_are_read_and_the_own_file_is_skipped(tmp_path: Path) -> None:
    peer = RollingStats()
    peer.record("/rtbs.json", 200, 0.002)
    data = stats_share.encode(peer)
    parent = os.getppid()  # alive for the whole test
    stats_share.write(str(tmp_path), data, pid=parent)
    stats_share.write(str(tmp_path), data)  # this process's own file
    assert not list(tmp_path.glob("*.tmp"))
    peers = stats_share.read_peers(str(tmp_path))
    assert len(peers) == 1
    assert peers[0]["routes"]["/rtbs.json"][0][1] == 1
    merged = RollingStats().snapshot(peers)
    assert merged["workers"] == 2
    assert merged["windows"]["10s"]["/rtbs.json"]["requests"] == 1


def test_dead_stale_and_broken_files_are_ignored(tmp_path: Path) -> None:
    data = stats_share.encode(RollingStats())
    stats_share.write(str(tmp_path), data, pid=_exited_pid())
    stale = os.getppid()
    stats_share.write(str(tmp_path), data, pid=stale)
    old = time.time() - stats_share.STALE_S - 5
    os.utime(stats_share.path_for(str(tmp_path), stale), (old, old))
    (tmp_path / "stats-1.json").write_bytes(b"{not json")  # pid 1 is alive; file is not
    (tmp_path / "stats-x.json").write_bytes(data)
    assert stats_share.read_peers(str(tmp_path)) == []


def test_remove_forgets_a_worker(tmp_path: Path) -> None:
    stats_share.write(str(tmp_path), b"{}", pid=os.getppid())
    stats_share.remove(str(tmp_path), os.getppid())
    stats_share.remove(str(tmp_path), os.getppid())  # twice is fine
    assert list(tmp_path.iterdir()) == []
