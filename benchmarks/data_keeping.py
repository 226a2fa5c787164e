"""What genreflow keeps, measured on the real service: a disk that fills, a delete, a label.

``sudo python benchmarks/data_keeping.py`` mounts a 40 MB tmpfs as ``GENREFLOW_HOME`` (so the
uploads, the SQLite database and the private Redis all live on it), starts ``genreflow run``
there with a tiny model trained on synthetic demo data, and then prints, step by step:

1. the disk pushed below the minimum (``/ready`` 503, ``genreflow_disk_low`` 1, uploads 507),
   and a job whose worker finds the disk full: it waits, queued, until space comes back, and
   then ends without a restart;
2. distinct 3-minute 192 kbps mp3s uploaded until the disk is low: each answer's status, code,
   ``Retry-After`` and the free space, and what ``/ready`` and ``/metrics`` say;
3. ``DELETE /api/v1/jobs/<id>`` of a song: the space it frees, and the refused song accepted
   again without a restart;
4. a keyless (loopback) label of a finished song, pending; an admin approves it; a training run
   on ``GENREFLOW_TRAIN_DATA_DIR`` (the demo data) shows how many examples came from each source.

Needs root (to mount the tmpfs) and ffmpeg.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from chaos import Service, free_port, train_tiny_model

MIB = 1024 * 1024


def make_mp3(path: Path, *, seconds: float, seed: int) -> Path:
    """Write a distinct synthetic song as a 192 kbps mp3."""
    from shared.core.audio.audio import ffmpeg_executable
    from shared.core.learning.demo_data import DEMO_GENRES, synth_track, write_audio

    wav = write_audio(
        path.with_suffix(".wav"),
        synth_track(DEMO_GENRES[seed % len(DEMO_GENRES)], seconds=seconds, seed=seed),
    )
    subprocess.run(
        [ffmpeg_executable(), "-nostdin", "-loglevel", "error", "-y", "-i", str(wav),
         "-b:a", "192k", str(path)],
        check=True,
    )  # fmt: skip
    wav.unlink()
    return path


def free_mib(path: Path) -> float:
    """Free space on the filesystem of ``path``, in MiB."""
    return shutil.disk_usage(path).free / MIB


def upload(url: str, song: Path) -> requests.Response:
    """POST ``song`` to the API."""
    with song.open("rb") as handle:
        return requests.post(
            f"{url}/api/v1/jobs", files={"file": (song.name, handle, "audio/mpeg")}, timeout=120
        )


def wait_job(url: str, job_id: str, timeout_s: float = 300.0) -> dict[str, Any]:
    """Poll a job until it ends (a dropped connection is retried)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            job = requests.get(f"{url}/api/v1/jobs/{job_id}", timeout=10).json()
        except requests.RequestException:
            job = {"status": "unknown"}
        if job["status"] in {"done", "failed"}:
            return job
        time.sleep(0.5)
    raise SystemExit(f"job {job_id} did not end in {timeout_s} s")


def metric_lines(url: str, prefix: str) -> list[str]:
    """Return the /metrics lines that start with ``prefix``."""
    text = requests.get(f"{url}/metrics", timeout=10).text
    return [line for line in text.splitlines() if line.startswith(prefix)]


def fill_until_refused(service: Service, songs: list[Path]) -> tuple[list[str], Path | None]:
    """Upload songs until two in a row are refused; return the accepted ids and a refused song."""
    accepted: list[str] = []
    refused: Path | None = None
    in_a_row = 0
    print("\n## 2. Uploads until the disk is low", flush=True)
    print("| upload | status | code | Retry-After | free after (MiB) |")
    print("|---|---|---|---|---|")
    for index, song in enumerate(songs, 1):
        answer = upload(service.url, song)
        body = answer.json()
        code = body.get("code", body.get("status"))
        print(
            f"| {index} ({song.stat().st_size / MIB:.1f} MiB) | {answer.status_code} | {code} | "
            f"{answer.headers.get('Retry-After', '')} | {free_mib(service.home):.1f} |",
            flush=True,
        )
        if answer.status_code in (200, 202):
            accepted.append(body["id"])
            in_a_row = 0
        else:
            refused = refused or song
            in_a_row += 1
            if in_a_row == 2:
                detail = body.get("detail", "")
                print(f"\nlast answer's detail: {detail}")
                break
    ready = requests.get(f"{service.url}/ready", timeout=10)
    body = ready.json()
    print(f"/ready: {ready.status_code} (failed: {body.get('failed', [])}), disk check: "
          f"{body['checks']['disk']}")  # fmt: skip
    print("/metrics:", *metric_lines(service.url, "genreflow_disk_"), sep="\n  ")
    leftovers = [p.name for p in (service.home / "uploads").glob(".upload-*")]
    print(f"temporary upload files left: {leftovers or 'none'}")
    return accepted, refused


def fill(home: Path, leave_mib: float) -> Path:
    """Write a filler file on the home's filesystem until about ``leave_mib`` MiB stay free."""
    filler = home / "filler.bin"
    with filler.open("ab", buffering=0) as out:
        while (free := shutil.disk_usage(home).free) > leave_mib * MIB:
            try:
                out.write(b"\0" * int(min(MIB, max(4096, free - leave_mib * MIB))))
            except OSError:
                break
    return filler


def root_of(service: Service) -> Path:
    """Return the folder holding ``run.log``."""
    return service.log_dir or service.home


def low_disk_and_worker(service: Service, songs: list[Path]) -> str:
    """Show /ready and /metrics on a low disk, then a job whose worker finds the disk full."""
    print("\n## 1. Below GENREFLOW_MIN_FREE_MB, and a worker on a full disk", flush=True)
    filler = fill(service.home, 4.0)
    ready = requests.get(f"{service.url}/ready", timeout=10)
    body = ready.json()
    print(f"free {free_mib(service.home):.1f} MiB; /ready: {ready.status_code}, "
          f"failed={body.get('failed')}, disk: {body['checks']['disk']['detail']}")  # fmt: skip
    print("/metrics:", *metric_lines(service.url, "genreflow_disk_low"), sep="\n  ")
    answer = upload(service.url, songs[0])
    print(f"an upload: {answer.status_code} {answer.json().get('code')}")
    filler.unlink()
    answer = upload(service.url, songs[1])
    if answer.status_code not in (200, 202):
        raise SystemExit(f"the short song was refused: {answer.status_code} {answer.text}")
    job_id = answer.json()["id"]
    filler = fill(service.home, 0.0)  # the disk is full while the job waits for its worker
    print(
        f"upload {answer.status_code}; then the disk filled: {free_mib(service.home):.2f} MiB free"
    )
    started = time.monotonic()
    seen: list[str] = []
    while time.monotonic() - started < 20:
        try:
            state = requests.get(f"{service.url}/api/v1/jobs/{job_id}", timeout=10).json()["status"]
        except requests.RequestException as exc:
            state = f"(no answer: {type(exc).__name__})"
        if not seen or seen[-1] != state:
            seen.append(state)
            print(f"  t={time.monotonic() - started:5.1f} s  job {state}", flush=True)
        time.sleep(1)
    filler.unlink()
    print(f"  t={time.monotonic() - started:5.1f} s  space freed: "
          f"{free_mib(service.home):.1f} MiB free (no restart)", flush=True)  # fmt: skip
    job = wait_job(service.url, job_id, timeout_s=240)
    print(f"  t={time.monotonic() - started:5.1f} s  job {job['status']} "
          f"({(job.get('result') or {}).get('genre')}); error: {job.get('error')}")  # fmt: skip
    ready = requests.get(f"{service.url}/ready", timeout=10)
    body = ready.json()
    print(f"/ready: {ready.status_code} (failed: {body.get('failed', [])}; "
          f"{'; '.join(body.get('detail', '').split('; ')[:2])})")  # fmt: skip
    log = (root_of(service) / "run.log").read_text(errors="replace").splitlines()
    signs = ("SIGBUS", "Unrecoverable", "storage_full", "disk is full", "exited:", "FATAL")
    print("run.log lines about it:")
    for line in log:
        if any(sign in line for sign in signs):
            print(f"  {line[:200]}")
    return job_id


def delete_and_retry(service: Service, accepted: list[str], refused: Path | None) -> None:
    """Delete the first accepted job, show the space it freed, upload the refused song again."""
    print("\n## 3. A delete frees the space", flush=True)
    for job_id in accepted:
        wait_job(service.url, job_id)
    before = free_mib(service.home)
    victim = accepted.pop(1)  # the first 3-minute song
    answer = requests.delete(f"{service.url}/api/v1/jobs/{victim}", timeout=30)
    after = free_mib(service.home)
    gone = requests.get(f"{service.url}/api/v1/jobs/{victim}", timeout=10).status_code
    print(f"DELETE /api/v1/jobs/{victim}: {answer.status_code}; then GET: {gone}")
    print(f"free: {before:.1f} MiB before, {after:.1f} MiB after (+{after - before:.1f} MiB)")
    if refused is not None:
        again = upload(service.url, refused)
        print(f"the refused {refused.name} again: {again.status_code} {again.json().get('status')}")
        if again.status_code in (200, 202):
            accepted.append(again.json()["id"])
    ready = requests.get(f"{service.url}/ready", timeout=10).json()
    print(f"/ready disk check: {ready['checks']['disk']}")


def label_and_train(service: Service, accepted: list[str]) -> None:
    """Label a finished song (keyless, pending), approve it as admin, and train."""
    print("\n## 4. A label reaches a training run", flush=True)
    admin = {"Authorization": f"Bearer {(service.home / 'admin_key').read_text().strip()}"}
    job = wait_job(service.url, accepted[-2])
    said = job["result"]["genre"]
    genre = next(g for g in sorted(job["result"]["probabilities"]) if g != said)
    put = requests.put(
        f"{service.url}/api/v1/jobs/{job['id']}/label", json={"genre": genre}, timeout=10
    )
    print(f"PUT /api/v1/jobs/{job['id']}/label {{'genre': {genre!r}}} (model said {said!r}): "
          f"{put.status_code} {put.json()}")  # fmt: skip
    pending = requests.get(
        f"{service.url}/api/v1/labels?status=pending", headers=admin, timeout=10
    ).json()
    print(f"GET /api/v1/labels?status=pending: total {pending['total']}")
    approved = requests.post(
        f"{service.url}/api/v1/labels/{job['id']}/approve", headers=admin, timeout=10
    )
    print(f"POST /api/v1/labels/{job['id']}/approve: {approved.status_code} "
          f"status={approved.json()['status']}")  # fmt: skip
    print(*metric_lines(service.url, "genreflow_labels"), sep="\n  ")
    run = requests.post(f"{service.url}/api/v1/models/train", headers=admin, timeout=30).json()
    deadline = time.monotonic() + 900
    while run["status"] not in {"done", "failed", "skipped"} and time.monotonic() < deadline:
        time.sleep(2)
        run = requests.get(
            f"{service.url}/api/v1/training-runs/{run['id']}", headers=admin, timeout=10
        ).json()
    metrics = run.get("metrics") or {}
    print(f"training run {run['id']}: {run['status']} {run.get('error') or ''}")
    print(f"  sources: {metrics.get('sources')}")
    print(f"  labels: {metrics.get('labels')}")
    reason = (metrics.get("comparison") or {}).get("reason")
    print(f"  activated: {run.get('activated')} ({reason})")


def main(argv: list[str] | None = None) -> int:
    """Run the three steps and print what the service answered."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--disk-mb", type=int, default=40, help="size of the tmpfs home")
    parser.add_argument("--min-free-mb", type=int, default=8, help="GENREFLOW_MIN_FREE_MB")
    parser.add_argument("--songs", type=int, default=12, help="distinct songs to try")
    parser.add_argument("--seconds", type=float, default=180.0, help="length of each song")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        raise SystemExit("mounting the small tmpfs home needs root")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    root = Path(tempfile.mkdtemp(prefix="genreflow-keeping-"))
    home = root / "home"
    home.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={args.disk_mb}m", "tmpfs", str(home)],
                   check=True)  # fmt: skip
    service = Service(home, free_port(), log_dir=root)  # like a terminal: off the small disk
    try:
        model = train_tiny_model(root)
        (home / "models").mkdir()
        for sibling in model.parent.glob(f"{model.stem}.*"):
            shutil.copy(sibling, home / "models" / sibling.name)
        songs = [
            make_mp3(root / f"song-{seed}.mp3", seconds=args.seconds, seed=seed)
            for seed in range(2000, 2000 + args.songs)
        ]
        service.extra_env = {
            "GENREFLOW_MIN_FREE_MB": str(args.min_free_mb),
            "GENREFLOW_TRAIN_DATA_DIR": str(root / "demo"),
            "GENREFLOW_TRAIN_EPOCHS": "5",
        }
        print(
            f"home: a {args.disk_mb} MB tmpfs at {home}; GENREFLOW_MIN_FREE_MB="
            f"{args.min_free_mb}; {free_mib(home):.1f} MiB free before start",
            flush=True,
        )
        service.start()
        print(f"service up after {service.wait_ready(timeout_s=400):.1f} s; "
              f"{free_mib(home):.1f} MiB free", flush=True)  # fmt: skip
        short = make_mp3(root / "short.mp3", seconds=30.0, seed=2999)
        first = low_disk_and_worker(service, [songs[-1], short])
        accepted, refused = fill_until_refused(service, songs[:-1])
        accepted.insert(0, first)
        delete_and_retry(service, accepted, refused)
        label_and_train(service, accepted)
    finally:
        service.stop()
        if (root / "run.log").exists():
            shutil.copy(root / "run.log", Path(tempfile.gettempdir()) / "genreflow-keeping-run.log")
        subprocess.run(["umount", "-l", str(home)], check=False)
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
