#!/usr/bin/env python3
"""A bounded chaos run: harvest the same ids round after round while something goes wrong, and check after every
round that nothing was lost or broken.

    python scripts/chaos.py [--rounds 20] [--seed 1] [--ids-per-round 6]

Everything runs on loopback: the bundled sandbox (gateway, OAuth, CDN) in this process, ``taobao-video harvest``
as a child process, as a user runs it. Each round harvests every id so far plus ``--ids-per-round`` new ones (so
there is always new work to disturb) under one disturbance, each about as often as the others:

    kill          SIGKILL the harvest at a random moment
    interrupt     SIGINT (Ctrl-C) at a random moment
    cdn_stall     the CDN stalls mid-body on some downloads
    cdn_fail      the CDN answers 500, resets or truncates some downloads
    gateway_down  the gateway is unreachable for the whole round (nothing listens on its port)
    disk_full     the videos folder (a tmpfs when run as root) has about 1.5 MB left (download.min_free_mb = 1)
    corrupt_file  a downloaded video is overwritten in the middle; `catalog verify --fix` must catch it first
    calm          nothing goes wrong

After each round these invariants must hold: every ``videos`` row's file verifies (`catalog verify`: exists, size,
sha256, an MP4), no item is ``done`` without its row, the quota ledger equals what the sandbox counted (a SIGKILL
may leave at most one call reserved but never sent: the safe side), and no ``*.tmp`` file is left anywhere. At the
end, with the faults gone, harvest runs until it exits 0 and the catalog must equal that of an undisturbed run
of the same ids against a fresh sandbox of the same seed. Exit 0 when every invariant held, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from _bench import free_port, loopback_only, scratch

from taobao_video.sandbox import AppConfig, Fault, Sandbox, SandboxConfig
from taobao_video.top.tokens import Token, TokenStore

APP_KEY, APP_SECRET = "12345678", "chaos-secret-not-real"
DISTURBANCES = ("kill", "interrupt", "cdn_stall", "cdn_fail", "gateway_down", "disk_full", "corrupt_file", "calm")
HARVEST_TIMEOUT_S = 120


def sandbox(seed: int) -> Sandbox:
    config = SandboxConfig(seed=seed, apps=(AppConfig(key=APP_KEY, secret=APP_SECRET),), video_bytes=(150_000, 300_000))
    return Sandbox(config)


def write_settings(folder: Path, sb: Sandbox, videos: Path, *, gateway_url: str | None = None) -> Path:
    """Settings with short timeouts and few retries, so a disturbed round ends in seconds."""
    path = folder / "settings.toml"
    path.write_text(
        "[taobao]\n"
        f'gateway_url = "{gateway_url or sb.gateway_url}"\n'
        f'oauth_url = "{sb.oauth_url}"\n'
        'token_file = "token.json"\n'
        "max_retries = 2\n"
        "breaker_failures = 3\n"
        "timeout_s = 3\n"
        "[download]\n"
        f'dir = "{videos}"\n'
        'allowed_hosts = ["127.0.0.1"]\n'
        "workers = 4\n"
        "timeout_s = 2\n"
        "retries = 1\n"
        "min_free_mb = 1\n"  # the chaos tmpfs is small on purpose
        "[harvest]\n"
        "qps = 50\n"
        'lock_file = "harvest.lock"\n'
        "[database]\n"
        'url = "sqlite:///catalog.sqlite3"\n',
        encoding="utf-8",
    )
    return path


def log_in(folder: Path, sb: Sandbox) -> None:
    body = sb.issue_token(app_key=APP_KEY)
    TokenStore(folder / "token.json").save(Token.from_response(body, now=datetime.now(UTC), grant="authorization_code"))


def cli(config: Path, *args: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "TAOBAO_APP_KEY": APP_KEY, "TAOBAO_APP_SECRET": APP_SECRET}
    env.pop("TAOBAO_VIDEO_CONFIG", None)
    command = [sys.executable, "-m", "taobao_video", "--config", str(config), *args]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def harvest(config: Path, ids_file: Path, *, signal_after: tuple[int, float] | None = None) -> tuple[int, str]:
    """Run one harvest; ``signal_after`` = (signal, seconds) sends it that long after the start. Exit code, stderr."""
    child = cli(config, "harvest", "--json", "--file", str(ids_file))
    if signal_after is not None:
        sig, delay = signal_after
        try:
            child.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            child.send_signal(sig)
    try:
        _, err = child.communicate(timeout=HARVEST_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        child.kill()
        _, err = child.communicate()
        return -1, "timed out:\n" + err.decode(errors="replace")
    return child.returncode, err.decode(errors="replace")


@contextmanager
def videos_folder(work: Path) -> Iterator[tuple[Path, bool]]:
    """A 64 MiB tmpfs for the videos when this process may mount one (so the disk can really fill up), else a
    plain folder; yields it and whether it is a tmpfs."""
    folder = work / "videos"
    folder.mkdir()
    mounted = (
        os.geteuid() == 0
        and subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(folder)], capture_output=True
        ).returncode
        == 0
    )
    try:
        yield folder, mounted
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def fill_disk(videos: Path, leave_bytes: int) -> Path:
    """A filler file that leaves about ``leave_bytes`` free on the videos' filesystem."""
    filler = videos / "filler.bin"
    stats = os.statvfs(videos)
    free = stats.f_bavail * stats.f_frsize
    with filler.open("wb") as out:
        out.truncate(0)
        remaining = max(0, free - leave_bytes)
        block = b"\0" * (1 << 20)
        while remaining > 0:
            out.write(block[: min(len(block), remaining)])
            remaining -= len(block)
    return filler


def corrupt_one(folder: Path, rng: random.Random) -> str | None:
    """Overwrite 4 KiB in the middle of one downloaded video; its id, or None when there is none yet."""
    with sqlite3.connect(folder / "catalog.sqlite3") as db:
        rows = db.execute("SELECT num_iid, video_path FROM videos ORDER BY num_iid").fetchall()
    if not rows:
        return None
    num_iid, video_path = rng.choice(rows)
    path = Path(video_path) if Path(video_path).is_absolute() else folder / video_path
    with path.open("r+b") as video:
        video.seek(path.stat().st_size // 2)
        video.write(rng.randbytes(4096))
    return str(num_iid)


def check(folder: Path, config: Path, sb: Sandbox, videos: Path, kills: int) -> list[str]:
    """The invariants; each broken one as a line."""
    broken = []
    child = cli(config, "catalog", "verify", "--json")
    out, err = child.communicate(timeout=HARVEST_TIMEOUT_S)
    if child.returncode not in (0, 1):
        broken.append(f"catalog verify failed to run (exit {child.returncode}): {err.decode(errors='replace')[-300:]}")
    else:
        report = json.loads(out)
        broken += [f"bad file: {bad['num_iid']} {bad['problem']}: {bad['detail']}" for bad in report["problems"]]
    with sqlite3.connect(folder / "catalog.sqlite3") as db:
        orphans = db.execute(
            "SELECT count(*) FROM items WHERE state = 'done' AND num_iid NOT IN (SELECT num_iid FROM videos)"
        ).fetchone()[0]
        ledger = db.execute("SELECT coalesce(sum(used), 0) FROM quota_days WHERE app_key = ?", (APP_KEY,)).fetchone()
    if orphans:
        broken.append(f"{orphans} items are done without a videos row")
    counted = sum(sb.stats()["quota"].get(APP_KEY, {}).values())
    if not 0 <= ledger[0] - counted <= kills:
        broken.append(f"ledger {ledger[0]} calls, the sandbox counted {counted} ({kills} kills so far)")
    debris = [str(p) for p in [*folder.rglob("*.tmp"), *videos.rglob("*.tmp")]]
    if debris:
        broken.append(f"temporary files left: {debris[:5]}")
    return broken


def quota_line(folder: Path, sb: Sandbox, kills: int) -> str:
    with sqlite3.connect(folder / "catalog.sqlite3") as db:
        ledger = db.execute("SELECT coalesce(sum(used), 0) FROM quota_days").fetchone()[0]
    counted = sum(sb.stats()["quota"].get(APP_KEY, {}).values())
    return f"quota: the ledger counted {ledger} calls, the sandbox {counted} ({kills} SIGKILLs)"


def catalog_state(folder: Path) -> tuple[dict[int, tuple[str, int, str]], dict[int, str]]:
    with sqlite3.connect(folder / "catalog.sqlite3") as db:
        videos = {
            n: (Path(p).name, size, sha)
            for n, p, size, sha in db.execute("SELECT num_iid, video_path, size_bytes, sha256 FROM videos")
        }
        states = dict(db.execute("SELECT num_iid, state FROM items").fetchall())
    return videos, states


@dataclass(frozen=True)
class Run:
    """The disturbed run's folder, settings, sandbox, videos folder and ids."""

    folder: Path
    config: Path
    sb: Sandbox
    videos: Path
    ids_file: Path


def disturbed_round(number: int, kind: str, rng: random.Random, *, run: Run, kills: int) -> list[str]:
    """One round: set up the disturbance, harvest, undo it, check the invariants; what broke, as lines."""
    failures: list[str] = []
    filler, extra = None, ""
    signal_after: tuple[int, float] | None = None
    if kind == "kill":
        signal_after = (signal.SIGKILL, rng.uniform(0.3, 1.2))  # a round's harvest takes about a second
    elif kind == "interrupt":
        signal_after = (signal.SIGINT, rng.uniform(0.3, 1.2))
    elif kind == "cdn_stall":
        run.sb.set_faults([Fault("stall", "cdn", rate=0.3, seconds=10)])
    elif kind == "cdn_fail":
        run.sb.set_faults([Fault(k, "cdn", rate=0.2) for k in ("http_500", "reset", "truncate")])
    elif kind == "gateway_down":
        write_settings(run.folder, run.sb, run.videos, gateway_url=f"http://127.0.0.1:{free_port()}/router/rest")
    elif kind == "disk_full":
        filler = fill_disk(run.videos, 1_500_000)
    elif kind == "corrupt_file":
        damaged = corrupt_one(run.folder, rng)
        fixed = cli(run.config, "catalog", "verify", "--fix", "--json")
        out, _ = fixed.communicate(timeout=HARVEST_TIMEOUT_S)
        found = {str(bad["num_iid"]) for bad in json.loads(out)["problems"]} if out else set()
        if damaged is not None and damaged not in found:
            failures.append(f"round {number}: verify --fix missed the damaged video {damaged}")
        extra = f" (damaged {damaged}, verify found {sorted(found)})"
    started = time.monotonic()
    code, err = harvest(run.config, run.ids_file, signal_after=signal_after)
    took = time.monotonic() - started
    run.sb.clear_faults()
    if filler is not None:
        filler.unlink()
    if kind == "gateway_down":
        write_settings(run.folder, run.sb, run.videos)
    if code == -1 or "Traceback" in err:
        failures.append(f"round {number} ({kind}): exit {code}, stderr: {err.strip()[-400:]}")
    broken = check(run.folder, run.config, run.sb, run.videos, kills)
    failures += [f"round {number} ({kind}): {line}" for line in broken]
    state = "ok" if not broken else f"{len(broken)} broken"
    print(f"  round {number:>2}  {kind:<12} exit {code:>3}  {took:5.1f} s  invariants {state}{extra}")
    return failures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--ids-per-round", type=int, default=8)
    args = parser.parse_args()
    loopback_only()
    rng = random.Random(args.seed)
    faults: Counter[str] = Counter()
    failures: list[str] = []
    with scratch("taobao-video-chaos-") as work, sandbox(args.seed) as sb, videos_folder(work) as (videos, tmpfs):
        folder = work / "run"
        folder.mkdir()
        log_in(folder, sb)
        config = write_settings(folder, sb, videos)
        ids = sb.catalogue.sample_mixed(args.rounds * args.ids_per_round)
        ids_file = work / "ids.txt"
        kills = 0
        print(
            f"chaos: {args.rounds} rounds over {len(ids)} ids, seed {args.seed}, videos on "
            f"{'a 64 MiB tmpfs' if tmpfs else 'a plain folder (disk_full rounds skipped: not root)'}"
        )
        kinds = [d for d in DISTURBANCES if tmpfs or d != "disk_full"]
        deck = kinds * -(-args.rounds // len(kinds))  # every disturbance about as often as the others, in random order
        rng.shuffle(deck)
        for number, kind in enumerate(deck[: args.rounds], start=1):
            faults[kind] += 1
            kills += kind == "kill"
            ids_file.write_text("\n".join(map(str, ids[: number * args.ids_per_round])) + "\n")
            failures += disturbed_round(number, kind, rng, run=Run(folder, config, sb, videos, ids_file), kills=kills)
        for _ in range(5):  # the faults are gone: finish the work
            code, err = harvest(config, ids_file)
            if code == 0:
                break
        if code != 0:
            failures.append(f"the final calm harvests did not finish (exit {code}): {err.strip()[-300:]}")
        failures += [f"final: {line}" for line in check(folder, config, sb, videos, kills)]
        print(quota_line(folder, sb, kills))
        disturbed = catalog_state(folder)
        with sandbox(args.seed) as calm_sb:
            calm = work / "calm"
            calm.mkdir()
            log_in(calm, calm_sb)
            calm_config = write_settings(calm, calm_sb, calm / "videos")
            code, err = harvest(calm_config, ids_file)
            reference = catalog_state(calm)
        if code != 0:
            failures.append(f"the undisturbed run failed (exit {code}): {err.strip()[-300:]}")
        if disturbed != reference:
            failures.append("the final catalog differs from an undisturbed run's")
    print(f"faults injected: {', '.join(f'{kind} {n}' for kind, n in sorted(faults.items()))}")
    if failures:
        print(f"INVARIANTS BROKEN ({len(failures)}):")
        for line in failures:
            print(f"  {line}")
        return 1
    print(f"every invariant held after each of {args.rounds} rounds, and the final catalog equals an undisturbed run's")
    return 0


if __name__ == "__main__":
    sys.exit(main())
