#!/usr/bin/env python3
"""A bounded soak of xi-gateway under upstream faults, on loopback only.

Drives a mixed load (two teams, Zipf-like popularity, the same questions written many ways) through the
gateway while the fake upstream injects faults (slow answers, resets mid-body, dropped connections, 500s,
429s with and without Retry-After, bodies that are not JSON) and is restarted halfway. Every page served
is checked against the question asked: the fake puts the query it received into each item, so a page of
another question is caught. Everything the gateway prints and answers is scanned for the API key and the
team tokens. Prints one report; exits 1 if a page was wrong, a secret leaked, or the gateway died.

    python3 bench/soak.py [--seconds 300] [--bin-dir .build/release]
"""
import argparse
import hashlib
import http.client
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

from common import free_port, rss_kib, wait_for_port

LIST = "/v1/convai/test-invocations"
API_KEY = "sk_soak_upstream_key_5f0e1d"
TOKENS = {"alpha": "xgt_soak_alpha_token_93b1", "beta": "xgt_soak_beta_token_27c4"}
ADMIN = "soak-admin-token-0123456789"


def rss_mib(pid):
    return rss_kib(pid) / 1024


def fd_count(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def question(rng):
    """A question and one of the many ways to write it; returns (query as sent, agent, page size)."""
    agent = f"agent{min(int(rng.paretovariate(1.2)), 300)}"
    size = rng.choice([5, 10, 30])
    agent_written = agent if rng.random() < 0.7 else "".join(f"%{ord(c):02X}" for c in agent)
    size_written = rng.choice([str(size), f"00{size}", f"{size}.0", f"+{size}"])
    parts = [f"agent_id={agent_written}", f"page_size={urllib.parse.quote(size_written)}"]
    rng.shuffle(parts)
    return "&".join(parts), agent, size


class Tally:
    def __init__(self):
        self.lock = threading.Lock()
        self.statuses = {}
        self.requests = 0
        self.wrong_pages = []
        self.leaks = []
        self.transport_errors = 0

    def add(self, status):
        with self.lock:
            self.requests += 1
            self.statuses[status] = self.statuses.get(status, 0) + 1


def scan(text, where, tally):
    for secret in [API_KEY, ADMIN, *TOKENS.values()]:
        if secret in text:
            with tally.lock:
                tally.leaks.append(f"{where}: {secret[:8]}...")


def worker(port, deadline, seed, tally):
    rng = random.Random(seed)
    connection = None
    while time.time() < deadline:
        team = rng.choice(list(TOKENS))
        query, agent, size = question(rng)
        try:
            if connection is None:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
            connection.request("GET", f"{LIST}?{query}", headers={"xi-api-key": TOKENS[team]})
            response = connection.getresponse()
            body = response.read()
        except (OSError, http.client.HTTPException):
            tally.transport_errors += 1
            connection = None
            continue
        tally.add(response.status)
        text = body.decode("utf-8", "replace")
        scan(text + str(response.getheaders()), "answer", tally)
        if response.status == 200:
            expected = f"agent_id={agent}&page_size={size}"
            try:
                page = json.loads(body)
                ok = len(page["results"]) == size and all(
                    item["query"] == expected and item["agent_id"] == agent for item in page["results"])
            except (ValueError, KeyError, TypeError):
                ok = False
            if not ok:
                with tally.lock:
                    tally.wrong_pages.append(f"{query} -> {text[:120]}")
        if response.getheader("Connection", "").lower() == "close":
            connection = None


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=300)
    parser.add_argument("--workers", type=int, default=32)
    parser.add_argument("--faults", type=int, default=15)
    parser.add_argument("--bin-dir", default=os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                                          ".build", "release"))
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="xi-soak-")
    clients = os.path.join(work, "clients")
    with open(clients, "w") as f:
        for team, token in TOKENS.items():
            f.write(f"{team} {hashlib.sha256(token.encode()).hexdigest()} upstream_per_minute=100000\n")
    config = os.path.join(work, "proxy.conf")
    open(config, "w").close()
    upstream_port, port, admin_port = free_port(), free_port(), free_port()
    fake_argv = [os.path.join(args.bin_dir, "xi-fake-upstream"), "--port", str(upstream_port), "--latency-ms", "20",
                 "--faults", str(args.faults), "--threads", "2"]
    fake = subprocess.Popen(fake_argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    wait_for_port(upstream_port)
    log_path = os.path.join(work, "gateway.log")
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "ELEVENLABS_API_KEY": API_KEY,
           "UPSTREAM_URL": f"http://127.0.0.1:{upstream_port}", "LISTEN_PORT": str(port), "CLIENTS_FILE": clients,
           "ADMIN_LISTEN": f"127.0.0.1:{admin_port}",
           "ADMIN_TOKEN": ADMIN, "CACHE_TTL_SECONDS": "2", "CACHE_STALE_SECONDS": "20", "UPSTREAM_TIMEOUT_MS": "1500",
           "UPSTREAM_MAX_CONCURRENCY": "8", "UPSTREAM_BACKOFF_MAX_SECONDS": "2", "LOG_LEVEL": "info"}
    with open(log_path, "w") as log:
        gateway = subprocess.Popen([os.path.join(args.bin_dir, "xi-gateway"), "--config", config], env=env,
                                   stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    tally = Tally()
    try:
        wait_for_port(port)
        time.sleep(0.5)
        rss = {"start": rss_mib(gateway.pid)}
        fds_start = fd_count(gateway.pid)
        started = time.time()
        deadline = started + args.seconds
        threads = [threading.Thread(target=worker, args=(port, deadline, seed, tally)) for seed in range(args.workers)]
        for thread in threads:
            thread.start()
        restarted = False
        while time.time() < deadline:
            time.sleep(1)
            elapsed = time.time() - started
            if not restarted and elapsed >= args.seconds / 2:
                rss["middle"] = rss_mib(gateway.pid)
                os.killpg(fake.pid, signal.SIGKILL)
                fake.wait()
                time.sleep(1)
                fake = subprocess.Popen(fake_argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                        start_new_session=True)
                wait_for_port(upstream_port)
                restarted = True
            if int(elapsed) % 10 == 0:
                for path, headers in (("/metrics", {}), ("/admin/cache/stats", {})):
                    c = http.client.HTTPConnection("127.0.0.1", admin_port, timeout=5)
                    c.request("GET", path, headers=headers)
                    scan(c.getresponse().read().decode("utf-8", "replace"), path, tally)
                    c.close()
        for thread in threads:
            thread.join()
        time.sleep(3)
        rss["end"] = rss_mib(gateway.pid)
        fds_end = fd_count(gateway.pid)
        alive = gateway.poll() is None
    finally:
        for proc in (gateway, fake):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
    with open(log_path, errors="replace") as f:
        log_text = f.read()
    scan(log_text, "gateway output", tally)
    statuses = ", ".join(f"{code}: {count}" for code, count in sorted(tally.statuses.items()))
    report = (
        f"soak: {args.seconds} s, {args.workers} clients, {args.faults}% upstream faults, upstream restarted halfway\n"
        f"requests {tally.requests} (transport errors {tally.transport_errors}); answers by status: {statuses}\n"
        f"wrong pages: {len(tally.wrong_pages)}; crashes: {0 if alive else 1}; secrets found: {len(tally.leaks)}\n"
        f"resident memory MiB: start {rss['start']:.1f}, middle {rss.get('middle', 0):.1f}, end {rss['end']:.1f}\n"
        f"file descriptors: start {fds_start}, end {fds_end}\n"
        f"gateway exit status after SIGTERM: {gateway.returncode}"
    )
    print(report)
    for line in tally.wrong_pages[:5] + tally.leaks[:5]:
        print("  " + line)
    sys.exit(0 if alive and not tally.wrong_pages and not tally.leaks else 1)


if __name__ == "__main__":
    main()
