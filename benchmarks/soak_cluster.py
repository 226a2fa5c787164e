"""The soak benchmark on cluster.py's namespace hosts (``soak.py --cluster``, root only).

The hosts, their network and the data host (Redis and PostgreSQL) are cluster.py's. The driver
gets an address of its own on the bridge (``10.213.0.1``), so it uploads to the web host and
the worker hosts deliver webhooks to its receiver, all inside ``10.213.0.0/24``. As systemd
would, a killed or stopped program is started again a few seconds later. The upload folder is a
tmpfs shared by every host (the ``disk-full`` fault fills it).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Final

from chaos import children_of
from cluster import (
    BRIDGE,
    NET,
    PG_PORT,
    REDIS_PORT,
    WEB_PORT,
    Cluster,
    _redis_answers,
    address,
    can_make_namespaces,
    in_host,
    make_network,
    ns,
    remove_network,
    sh,
    start_data_host,
    wait_until,
)  # fmt: skip
from soak_probes import busiest, fill_disk, postgres_size_mb, wait_processing

DRIVER: Final = f"{NET}.1"
#: How long the ``host-cut`` fault keeps gfc-w2 off the network (and frozen).
CUT_S: Final = 30.0
#: How long after a kill a program is started again (systemd's ``RestartSec``).
RESTART_S: Final = 2.0


class SoakCluster(Cluster):
    """cluster.py's Cluster with the soak's settings in every host's environment."""

    extra: dict[str, str]

    def env(self, host: str) -> dict[str, str]:
        """Return cluster.py's environment plus the soak's settings."""
        return {**super().env(host), **self.extra}


class ClusterHost:
    """genreflow on five namespace hosts: data, web, two workers (and the driver)."""

    def __init__(self, root: Path, args: Any) -> None:
        why = can_make_namespaces()
        if why is not None:
            raise SystemExit(f"soak --cluster cannot run here: {why}")
        self.root, self.args = root, args
        os.chmod(root, 0o755)
        self.cluster = SoakCluster(root)
        days = args.retention_min / 1440
        self.cluster.extra = {
            "GENREFLOW_WEBHOOK_ALLOW_PRIVATE": "1",
            "GENREFLOW_AUDIO_RETENTION_DAYS": f"{days:.6f}",
            "GENREFLOW_RESULT_RETENTION_DAYS": f"{days:.6f}",
            "GENREFLOW_RETENTION_SWEEP_S": "60",
            "GENREFLOW_WEBHOOK_BACKOFF_S": "5",
            "GENREFLOW_MIN_FREE_MB": str(args.min_free_mb),
        }
        self.url = f"http://{address('web')}:{WEB_PORT}"
        self.receiver_host = DRIVER
        self.log_dir = root / "logs"
        self.database_url = f"postgresql://postgres@{address('db')}:{PG_PORT}/genreflow"
        self.tmpfs = self.cluster.shared
        self.upload_dir = self.tmpfs / "uploads"
        self.faults = frozenset({"worker-main", "pool-mid-song", "web-term", "redis-restart",
                                 "postgres-restart", "disk-full", "host-cut"})  # fmt: skip
        self.headers: dict[str, str] = {}
        self.argv: dict[str, tuple[str, list[str]]] = {}

    def start(self) -> None:
        """Build the network and the hosts, start every program, wait for ``/ready``."""
        remove_network()
        self.tmpfs.mkdir(parents=True)
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={self.args.disk_mb}m", "tmpfs",
                        str(self.tmpfs)], check=True)  # fmt: skip
        make_network()
        sh("ip", "addr", "add", f"{DRIVER}/24", "dev", BRIDGE)
        start_data_host(self.cluster)
        wait_until("Redis", lambda: _redis_answers(self.cluster), timeout_s=30)
        wrapped = self.cluster.processes["redis"].args
        self.argv["redis"] = ("db", list(wrapped[len(in_host("db", [])) :]))
        self.cluster.genreflow("web", "prepare")
        key = self.cluster.genreflow("web", "keys", "create", "--name", "soak").strip()
        self.headers = {"Authorization": f"Bearer {key}"}
        python = [sys.executable, "-m", "shared"]
        self.argv["web"] = ("web", [*python, "web", "--host", address("web"), "--port",
                                    str(WEB_PORT), "--web-workers", "2"])  # fmt: skip
        for host in ("w1", "w2"):
            self.argv[host] = (host, [*python, "worker", "--concurrency", "1"])
        for name in ("web", "w1", "w2"):
            self.cluster.start(name, *self.argv[name])
        import requests

        def ready() -> bool:
            try:
                return requests.get(f"{self.url}/ready", timeout=5).status_code == 200
            except requests.RequestException:
                return False

        wait_until("the web and a warm worker", ready, timeout_s=600, every_s=2)
        print(f"soak: cluster up (redis {REDIS_PORT}, postgres {PG_PORT})", flush=True)

    def stop(self) -> None:
        """Stop every program, remove the network, unmount the upload disk."""
        self.cluster.stop_all()
        remove_network()
        subprocess.run(["umount", "-l", str(self.tmpfs)], check=False)

    def _restart(self, name: str, sig: signal.Signals) -> int:
        process = self.cluster.processes[name]
        os.kill(process.pid, sig)
        process.wait(timeout=60)
        time.sleep(RESTART_S)
        self.cluster.start(name, *self.argv[name])
        return process.pid

    def inject(self, fault: str) -> str:
        """Inject one fault; a program killed or stopped is started again, as systemd would."""
        if fault == "worker-main":
            return f"kill -9 gfc-w1's worker main {self._restart('w1', signal.SIGKILL)}, restarted"
        if fault == "pool-mid-song":
            wait_processing(self.database_url)
            pid = busiest(children_of(self.cluster.processes["w1"].pid))
            if pid is None:
                return "no pool process"
            os.kill(pid, signal.SIGKILL)
            return f"kill -9 gfc-w1's pool process {pid}"
        if fault == "web-term":
            return f"SIGTERM gfc-web's master {self._restart('web', signal.SIGTERM)}, restarted"
        if fault == "redis-restart":
            return f"SIGTERM gfc-db's Redis {self._restart('redis', signal.SIGTERM)}, restarted"
        if fault == "postgres-restart":
            self.cluster.postgres.restart()
            return "pg_ctl restart -m immediate on gfc-db"
        if fault == "disk-full":
            return fill_disk(self.tmpfs, leave_mb=self.args.min_free_mb / 2)
        if fault == "host-cut":
            sh("ip", "-n", ns("w2"), "link", "set", "eth0", "down")
            self.cluster.signal("w2", signal.SIGSTOP)
            time.sleep(CUT_S)
            sh("ip", "-n", ns("w2"), "link", "set", "eth0", "up")
            self.cluster.signal("w2", signal.SIGCONT)
            return f"gfc-w2 cut off (link down, frozen) for {CUT_S:.0f} s"
        raise ValueError(f"fault {fault!r} does not apply here")

    def process_roots(self) -> list[int]:
        """Return the pids of the web, the two workers and Redis."""
        names = ("web", "w1", "w2", "redis")
        return [p.pid for n, p in self.cluster.processes.items() if n in names and
                p.poll() is None]  # fmt: skip

    def root_labels(self) -> dict[int, str]:
        """Name each host's program by its host."""
        names = {"web": "gfc-web web", "w1": "gfc-w1 worker", "w2": "gfc-w2 worker",
                 "redis": "gfc-db redis"}  # fmt: skip
        return {p.pid: names[n] for n, p in self.cluster.processes.items() if n in names}

    def redis_url(self) -> str | None:
        """Return the data host's Redis."""
        return f"redis://{address('db')}:{REDIS_PORT}/0"

    def db_size_mb(self) -> float | None:
        """Return the size of the data host's database."""
        return postgres_size_mb(self.database_url)
