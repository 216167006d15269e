#!/usr/bin/env python3
"""CPU time per cache hit: two builds of the gateway (and nginx, as the peer) under the same paced hot-key load.

Each server serves the same load (wrk, 64 connections, each 1 ms between requests, 100 hot keys, all hits);
the CPU time its processes used (user + system, from /proc) over the requests it answered is its CPU per
hit. Rounds are interleaved (A, B, nginx; then again, each round starting one further on), so other load on
the machine lands on all alike. Prints the medians and the ratios; loopback only, about 3 minutes.

    python3 bench/cpu_per_hit.py --before OLD/.build/release --after .build/release [--rounds 5] [--seconds 8]
"""
import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402 (its process, gateway and fake-upstream helpers)
from common import cpu_seconds  # noqa: E402

def paced(port, seconds):
    argv = ["wrk", "-t2", "-c64", f"-d{seconds}s", "-s", os.path.join(bench.HERE, "hot.lua"),
            f"http://127.0.0.1:{port}"]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60,
                         env={**os.environ, "KEYS": "100", "PACE_MS": "1"}).stdout
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    if non2xx:
        raise RuntimeError(f"port {port}: {non2xx.group(1)} answers were not 2xx")
    return requests


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--before", required=True, help="bin dir of the build to compare against")
    parser.add_argument("--after", default=os.path.join(bench.ROOT, ".build", "release"))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--output", default=None)
    args = parser.parse_args()
    for tool in ("wrk", "nginx"):
        if not shutil.which(tool):
            sys.exit(f"cpu_per_hit: {tool} is missing (make bench-deps installs it)")
    bench.WORK = tempfile.mkdtemp(prefix="xi-cpu-")
    os.chmod(bench.WORK, 0o755)  # nginx's workers run as another user
    bench.CLEANUP = [bench.WORK]
    procs = bench.Processes()
    try:
        bench.BIN = os.path.abspath(args.after)
        upstream = bench.start_fake(procs, latency_ms=50)
        servers = {}
        for name, bin_dir in (("before", os.path.abspath(args.before)), ("after", os.path.abspath(args.after))):
            bench.BIN = bin_dir
            port, proc = bench.start_gateway(procs, upstream)
            servers[name] = (port, proc.pid)
        port, proc = bench.start_nginx(procs, upstream)
        servers["nginx"] = (port, proc.pid)
        for port, _ in servers.values():
            bench.warm(port, 100)
        measured = {name: [] for name in servers}
        order = list(servers.items())
        for round_index in range(args.rounds):
            shift = round_index % len(order)
            for name, (port, group) in order[shift:] + order[:shift]:
                start = cpu_seconds(group)
                requests = paced(port, args.seconds)
                measured[name].append((cpu_seconds(group) - start) / requests * 1e6)
    finally:
        procs.stop_all()
        for path in bench.CLEANUP:
            shutil.rmtree(path, ignore_errors=True)
    median = {name: statistics.median(values) for name, values in measured.items()}
    lines = [f"CPU per hit, paced hot keys (64 connections, 1 ms apart), median of {args.rounds} rounds of "
             f"{args.seconds} s, {os.cpu_count()} cores"]
    for name, values in measured.items():
        spread = ", ".join(f"{v:.1f}" for v in values)
        lines.append(f"  {name:<7} {median[name]:6.1f} us   (rounds: {spread})")
    lines.append(f"  after/before {median['after'] / median['before']:.3f}x   "
                 f"before/nginx {median['before'] / median['nginx']:.3f}x   "
                 f"after/nginx {median['after'] / median['nginx']:.3f}x")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.output:
        with open(args.output, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
