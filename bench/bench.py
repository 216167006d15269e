#!/usr/bin/env python3
"""xi-gateway benchmark harness: the gateway against nginx, HAProxy and Varnish on loopback.

Starts a fake upstream (xi-fake-upstream), the gateway and each peer configured for the same job, drives
them with wrk (and a small Python client for bursts), prints one table with ratios computed within this
run, writes it to bench/results/, and stops everything it started, by process id.

    python3 bench/bench.py [--quick] [--only SCENARIO,...] [--variant KEY=VALUE,...] [--bin-dir .build/release]
"""
import argparse
import concurrent.futures
import datetime
import json
import os
import re
import selectors
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

from common import cpu_seconds, free_port, rss_kib, wait_for_port

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
LIST = "/v1/convai/test-invocations"
API_KEY = "bench-upstream-key"


def http_get(port, path, timeout=10.0, tls=False):
    # The benchmark's own certificate is self-signed: the client checks nothing (loopback only).
    context = ssl._create_unverified_context() if tls else None
    with urllib.request.urlopen(f"{'https' if tls else 'http'}://127.0.0.1:{port}{path}", timeout=timeout,
                                context=context) as response:
        return response.status, dict(response.headers), response.read()


class Processes:
    """Everything started, stopped by pid on exit whatever happens."""

    def __init__(self):
        self.procs = []

    def start(self, name, argv, env=None, cwd=None):
        log = open(os.path.join(WORK, f"{name}.log"), "w")
        proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        self.procs.append((name, proc))
        return proc

    def stop(self, proc):
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()

    def stop_all(self):
        for _, proc in reversed(self.procs):
            self.stop(proc)
        self.procs = []


# ---------------------------------------------------------------- servers

def start_fake(procs, latency_ms=50, max_concurrent=None, threads=1):
    port = free_port()
    argv = [os.path.join(BIN, "xi-fake-upstream"), "--port", str(port), "--latency-ms", str(latency_ms),
            "--threads", str(threads)]
    if max_concurrent:
        argv += ["--max-concurrent", str(max_concurrent)]
    procs.start(f"fake-{port}", argv)
    wait_for_port(port)
    return port


def fake_stats(port):
    return json.loads(http_get(port, "/__stats")[2])


def fake_reset(port):
    http_get(port, "/__reset")


def start_gateway(procs, upstream_port, bin_dir=None, **settings):
    port = free_port()
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "ELEVENLABS_API_KEY": API_KEY,
           "UPSTREAM_URL": f"http://127.0.0.1:{upstream_port}", "LISTEN_PORT": str(port),
           # Several gateways run at once: each admin listener on a free port.
           "ADMIN_LISTEN": "127.0.0.1:0", "CACHE_TTL_SECONDS": "3600", "CACHE_MAX_BYTES": str(512 << 20),
           # Like the peers (nginx: access_log off): the benchmark measures serving, not logging.
           "ACCESS_LOG": "off"}
    env.update({k: str(v) for k, v in settings.items()})
    config = os.path.join(WORK, "empty.conf")
    open(config, "a").close()
    proc = procs.start(f"xi-gateway-{port}", [os.path.join(bin_dir or BIN, "xi-gateway"), "--config", config], env=env,
                       cwd=WORK)
    wait_for_port(port)
    return port, proc


NGINX_CACHE = """
worker_processes auto;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    proxy_cache_path {shm}/cache levels=1:2 keys_zone=pages:64m max_size=512m inactive=2h use_temp_path=off;
    upstream fake {{ server 127.0.0.1:{upstream}; keepalive 64; }}
    server {{
        listen 127.0.0.1:{port} reuseport backlog=4096;
        location / {{
            proxy_pass http://fake;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header xi-api-key "{key}";
            proxy_cache pages;
            proxy_cache_key $request_uri;
            proxy_cache_valid 200 {ttl}s;
            proxy_cache_lock on;
            proxy_cache_lock_timeout 10s;
            proxy_cache_use_stale updating error timeout http_500 http_502 http_503 http_504 http_429;
            proxy_cache_background_update on;
            add_header X-Cache-Status $upstream_cache_status;
        }}
    }}
}}
"""

NGINX_STATIC = """
worker_processes auto;
pid {dir}/nginx-static.pid;
error_log {dir}/error-static.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    open_file_cache max=1000 inactive=1h;
    default_type application/json;
    server {{
        listen 127.0.0.1:{port} reuseport backlog=4096;
        location / {{ root {dir}/static; try_files /page.json =404; }}
    }}
}}
"""

HAPROXY = """
global
    maxconn 8192
    nbthread {threads}
defaults
    mode http
    timeout connect 3s
    timeout client 30s
    timeout server 30s
    option http-keep-alive
cache pages
    total-max-size 512
    max-object-size 1048576
    max-age {ttl}
backend fake
    http-request set-header xi-api-key "{key}"
    http-request cache-use pages
    http-response set-header Cache-Control "max-age={ttl}"
    http-response cache-store pages
    server fake 127.0.0.1:{upstream}
frontend web
    bind 127.0.0.1:{port}
    default_backend fake
"""

# The same cache as NGINX_CACHE, set up for gzip as the issue describes a careful operator would: the cache
# fed gzip by the upstream (Accept-Encoding: gzip on every upstream request), sent as it is to gzip clients,
# unpacked (gunzip on) for the others; gzip on for answers that come unpacked.
NGINX_GZIP = NGINX_CACHE.replace(
    "proxy_set_header xi-api-key \"{key}\";",
    "proxy_set_header xi-api-key \"{key}\";\n            proxy_set_header Accept-Encoding gzip;\n"
    "            gunzip on;\n            gzip on;\n            gzip_types application/json;\n            gzip_vary on;")

VARNISH = """
vcl 4.1;
backend fake {{ .host = "127.0.0.1"; .port = "{upstream}"; }}
sub vcl_recv {{ set req.http.xi-api-key = "{key}"; return (hash); }}
sub vcl_backend_response {{ set beresp.ttl = {ttl}s; set beresp.grace = 300s; }}
"""


def start_nginx(procs, upstream_port, ttl=3600, template=None):
    port = free_port()
    shm = tempfile.mkdtemp(prefix="xi-bench-nginx-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
    CLEANUP.append(shm)
    os.chmod(shm, 0o777)  # nginx's workers run as another user
    conf = os.path.join(WORK, f"nginx-{port}.conf")
    with open(conf, "w") as f:
        f.write((template or NGINX_CACHE).format(dir=WORK, shm=shm, upstream=upstream_port, port=port, key=API_KEY,
                                                 ttl=ttl))
    proc = procs.start(f"nginx-{port}", ["nginx", "-p", WORK, "-c", conf, "-g", "daemon off;"])
    wait_for_port(port)
    return port, proc


def start_nginx_static(procs, page):
    port = free_port()
    os.makedirs(os.path.join(WORK, "static"), exist_ok=True)
    with open(os.path.join(WORK, "static", "page.json"), "wb") as f:
        f.write(page)
    conf = os.path.join(WORK, "nginx-static.conf")
    with open(conf, "w") as f:
        f.write(NGINX_STATIC.format(dir=WORK, port=port))
    proc = procs.start("nginx-static", ["nginx", "-p", WORK, "-c", conf, "-g", "daemon off;"])
    wait_for_port(port)
    return port, proc


def start_haproxy(procs, upstream_port, ttl=3600):
    port = free_port()
    conf = os.path.join(WORK, "haproxy.cfg")
    with open(conf, "w") as f:
        f.write(HAPROXY.format(threads=os.cpu_count(), ttl=ttl, key=API_KEY, upstream=upstream_port, port=port))
    proc = procs.start("haproxy", ["haproxy", "-f", conf, "-db"])
    wait_for_port(port)
    return port, proc


def start_varnish(procs, upstream_port, ttl=3600):
    port = free_port()
    vcl = os.path.join(WORK, "default.vcl")
    with open(vcl, "w") as f:
        f.write(VARNISH.format(upstream=upstream_port, key=API_KEY, ttl=ttl))
    workdir = os.path.join(WORK, "varnish")
    os.makedirs(workdir, exist_ok=True)
    os.chmod(WORK, 0o755)
    os.chmod(vcl, 0o644)
    proc = procs.start("varnish", ["varnishd", "-F", "-a", f"127.0.0.1:{port}", "-f", vcl, "-s", "malloc,512m",
                                   "-n", workdir, "-p", "thread_pool_min=50"])
    wait_for_port(port, timeout=30)
    return port, proc


# ---------------------------------------------------------------- load

def wrk(port, script, connections, seconds, env=None, threads=2, scheme="http"):
    argv = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", "-s",
            os.path.join(HERE, script), f"{scheme}://127.0.0.1:{port}"]
    out = subprocess.run(argv, capture_output=True, text=True, env={**os.environ, **(env or {})},
                         timeout=seconds + 60).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50 = to_ms(re.search(r"\s50%\s+([\d.]+\w+)", out).group(1))
    p99 = to_ms(re.search(r"\s99%\s+([\d.]+\w+)", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors:.*", out)
    mixed = re.search(r"MIXED (\{.*\})", out)
    return {"rps": rps, "p50": p50, "p99": p99, "non2xx": int(non2xx.group(1)) if non2xx else 0,
            "socket_errors": errors.group(0) if errors else "", "mixed": json.loads(mixed.group(1)) if mixed else None}


def to_ms(text):
    value, unit = re.match(r"([\d.]+)(\w+)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def median_of(runs, key):
    return statistics.median(run[key] for run in runs)


def warm(port, keys, tls=False):
    for i in range(keys):
        status, _, _ = http_get(port, f"{LIST}?agent_id=hot{i}&page_size=30", tls=tls)
        assert status == 200, status


def burst(port, path, clients=100):
    """clients connections send the same request at once; returns each one's latency in ms.

    One thread sends the requests back to back and watches every socket with a selector: an answer is
    timed when its socket is seen readable, and sockets found ready by one poll share that moment. (A
    thread per client timed its own wake-up too: when a server answers all 100 at once, the threads
    waking one after another added milliseconds to the last answers, and to no others.)
    """
    request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode()
    sockets = [socket.create_connection(("127.0.0.1", port), timeout=30) for _ in range(clients)]
    selector = selectors.DefaultSelector()
    started, received, latency = {}, {}, {}
    for sock in sockets:
        started[sock] = time.perf_counter()
        sock.sendall(request)
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ)
        received[sock] = b""
    deadline = time.monotonic() + 30
    while len(latency) < clients and time.monotonic() < deadline:
        ready = selector.select(timeout=1)
        now = time.perf_counter()
        for key, _ in ready:
            sock = key.fileobj
            try:
                chunk = sock.recv(65536)
            except BlockingIOError:
                continue
            received[sock] += chunk
            if b"\r\n\r\n" in received[sock] or not chunk:
                latency[sock] = (now - started[sock]) * 1000
                selector.unregister(sock)
    selector.close()
    for sock in sockets:
        sock.close()
    return [latency.get(sock, float("inf")) for sock in sockets], [received[sock][:12] for sock in sockets]


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


# ---------------------------------------------------------------- scenarios

def scenario_hot(procs, rows, runs, seconds):
    upstream = start_fake(procs, latency_ms=50)
    page = http_get(upstream, f"{LIST}?agent_id=hot0&page_size=30")[2]
    servers = {}
    servers["xi-gateway"] = start_gateway(procs, upstream)[0]
    servers["nginx"] = start_nginx(procs, upstream)[0]
    servers["haproxy"] = start_haproxy(procs, upstream)[0]
    servers["varnish"] = start_varnish(procs, upstream)[0]
    servers["ceiling (nginx static)"] = start_nginx_static(procs, page)[0]
    # What the access log costs (on by default; off above, like nginx's).
    servers[LOGGED] = start_gateway(procs, upstream, ACCESS_LOG="on")[0]
    if BASELINE:
        servers[BASELINE_NAME] = start_gateway(procs, upstream, bin_dir=BASELINE)[0]
    for settings in VARIANTS:
        name = "xi-gateway, " + ",".join(f"{key}={value}" for key, value in settings.items())
        servers[name] = start_gateway(procs, upstream, **settings)[0]
    for name, port in servers.items():
        if not name.startswith("ceiling"):
            try:
                warm(port, 100)
            except Exception as error:
                raise RuntimeError(f"warming {name} failed: {error}") from error
    fake_reset(upstream)
    results = {}
    # As fast as each server answers, at 64 and 256 connections; then paced (1 ms between a connection's
    # requests): the same load for all, about half of what the slowest peer serves, for latency compared
    # without saturation. Saturated, the server, wrk and the kernel share two cores, and a faster server
    # leaves wrk less of them, which shows in the tail wrk measures.
    for load, connections, pace in ((64, 64, None), (256, 256, None), ("paced", 64, "1")):
        # Runs interleaved (each server once, then again): a burst of load from other tenants of the machine
        # then lands on every server alike instead of on one server's runs. Each round starts one server
        # further on, so no server always runs first, or always right after the same one.
        measured = {name: [] for name in servers}
        order = list(servers.items())
        env = {"KEYS": "100", **({"PACE_MS": pace} if pace else {})}
        for round_index in range(runs):
            shift = round_index % len(order)
            for name, port in order[shift:] + order[:shift]:
                measured[name].append(wrk(port, "hot.lua", connections, seconds, env=env))
        for name, runs_of in measured.items():
            results[(name, load)] = {"rps": median_of(runs_of, "rps"), "p99": median_of(runs_of, "p99"),
                                     "p50": median_of(runs_of, "p50"),
                                     "non2xx": sum(m["non2xx"] for m in runs_of)}
    upstream_during = fake_stats(upstream)["requests"]
    base = results[("xi-gateway", 64)]
    for name in servers:
        r64, r256 = results[(name, 64)], results[(name, 256)]
        rows.append([f"hot keys, {name}", f"{r64['rps']:,.0f} req/s", f"p99 {r64['p99']:.2f} ms",
                     f"256 conn: {r256['rps']:,.0f} req/s, p99 {r256['p99']:.2f} ms ({r256['rps'] / r64['rps']:.0%} of 64)",
                     f"non-2xx {r64['non2xx'] + r256['non2xx']}" if name == "xi-gateway"
                     else f"log on/off: {r64['rps'] / base['rps']:.2f}x" if name == LOGGED
                     else f"this build/baseline: {base['rps'] / r64['rps']:.2f}x" if name == BASELINE_NAME
                     else f"variant/default: {r64['rps'] / base['rps']:.2f}x" if name.startswith("xi-gateway, ")
                     else f"xi/{name}: {base['rps'] / r64['rps']:.2f}x"])
    paced_base = results[("xi-gateway", "paced")]
    for name in servers:
        paced = results[(name, "paced")]
        rows.append([f"hot keys paced (64 conn, 1 ms apart), {name}", f"{paced['rps']:,.0f} req/s",
                     f"p99 {paced['p99']:.2f} ms", f"p50 {paced['p50']:.2f} ms",
                     f"non-2xx {paced['non2xx']}" if name == "xi-gateway"
                     else f"p99 xi/{name}: {paced_base['p99'] / paced['p99']:.2f}x"])
    rows.append(["hot keys: upstream requests during the runs (all should be hits)", str(upstream_during), "", "", ""])
    return results


LOGGED = "xi-gateway, access log on"
# --baseline-bin-dir: an earlier build of the gateway, run beside this one in the same rounds.
BASELINE = None
BASELINE_NAME = "xi-gateway, baseline build"
# Gateways configured otherwise (--variant), run beside the others in the hot-key rounds.
VARIANTS = []


def scenario_burst(procs, rows):
    upstream = start_fake(procs, latency_ms=50)
    servers = {"xi-gateway": start_gateway(procs, upstream)[0], "nginx": start_nginx(procs, upstream)[0],
               "haproxy": start_haproxy(procs, upstream)[0], "varnish": start_varnish(procs, upstream)[0]}
    for name, port in servers.items():
        p99s, upstream_counts = [], []
        for run in range(3):
            fake_reset(upstream)
            latencies, heads = burst(port, f"{LIST}?agent_id=burst-{name.replace(' ', '')}-{run}-{time.time_ns()}")
            upstream_counts.append(fake_stats(upstream)["requests"])
            p99s.append(percentile(latencies, 99))
            assert all(h.startswith(b"HTTP/1.1 200") for h in heads), set(heads)
        rows.append([f"cold burst (100 clients, one key), {name}", f"upstream requests {statistics.median(upstream_counts):.0f}",
                     f"p99 {statistics.median(p99s):.1f} ms", "upstream latency 50 ms", ""])


def scenario_misses(procs, rows, runs, seconds):
    upstream = start_fake(procs, latency_ms=50)
    gateway = start_gateway(procs, upstream, UPSTREAM_MAX_CONCURRENCY=8)[0]
    direct, through = [], []
    for run in range(runs):
        direct.append(wrk(upstream, "unique.lua", 4, seconds, env={"PREFIX": f"d{run}{time.time_ns()}"}))
        through.append(wrk(gateway, "unique.lua", 4, seconds, env={"PREFIX": f"g{run}{time.time_ns()}"}))
    d50, g50 = median_of(direct, "p50"), median_of(through, "p50")
    d99, g99 = median_of(direct, "p99"), median_of(through, "p99")
    rows.append(["misses only (4 connections), added latency", f"p50 +{g50 - d50:.2f} ms", f"p99 +{g99 - d99:.2f} ms",
                 f"direct p50 {d50:.2f} ms, gateway p50 {g50:.2f} ms", f"non-2xx {sum(t['non2xx'] for t in through)}"])


def scenario_memory(procs, rows, pages=10000):
    for compression in ("on", "off"):
        measure_memory(procs, rows, pages, compression)
        procs.stop_all()


def measure_memory(procs, rows, pages, compression):
    upstream = start_fake(procs, latency_ms=0, threads=2)
    port, proc = start_gateway(procs, upstream, UPSTREAM_MAX_CONCURRENCY=32, CACHE_MAX_BYTES=str(2 << 30),
                               COMPRESSION=compression)
    http_get(port, f"{LIST}?agent_id=m-warm&page_size=30")
    time.sleep(0.5)
    before = rss_kib(proc.pid)
    page_bytes = len(http_get(upstream, f"{LIST}?agent_id=m0&page_size=30")[2])

    def fetch(i):
        return http_get(port, f"{LIST}?agent_id=m{i}&page_size=30")[0]

    with concurrent.futures.ThreadPoolExecutor(max_workers=16) as pool:
        statuses = list(pool.map(fetch, range(pages)))
    time.sleep(0.5)
    after = rss_kib(proc.pid)
    per_page = (after - before) * 1024 / pages
    rows.append([f"memory, {pages:,} pages cached, COMPRESSION={compression}", f"{per_page:,.0f} B/page",
                 f"page {page_bytes:,} B",
                 f"ratio {per_page / page_bytes:.2f}", f"RSS {before // 1024} -> {after // 1024} MiB; non-200 {sum(s != 200 for s in statuses)}"])


def wire_bytes(port, path, encoding):
    """The bytes of one whole answer (head and body) to a GET with `encoding` as its Accept-Encoding."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept-Encoding: {encoding}\r\n"
                     f"Connection: close\r\n\r\n".encode())
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    head = received.split(b"\r\n\r\n", 1)[0].lower()
    assert head.startswith(b"http/1.1 200"), head[:40]
    return len(received), (b"content-encoding: gzip" in head)


def scenario_gzip(procs, rows, runs, seconds):
    """Hits for gzip clients and for identity clients: the gateway (pages stored as gzip) against nginx (its
    cache fed gzip, gzip on, gunzip on) and Varnish (http_gzip_support, its default), and the gateway's
    baseline build when given. Requests per second, CPU per hit and bytes on the wire per answer."""
    upstream = start_fake(procs, latency_ms=50)
    servers = {"xi-gateway": start_gateway(procs, upstream),
               "nginx (gzip, gunzip)": start_nginx(procs, upstream, template=NGINX_GZIP),
               "varnish": start_varnish(procs, upstream)}
    if BASELINE:
        servers[BASELINE_NAME] = start_gateway(procs, upstream, bin_dir=BASELINE)
    for name, (port, _) in servers.items():
        for i in range(100):
            # Each server's cache is filled as its clients will ask: gzip first (what the SDK sends).
            status, _, _ = http_get(port, f"{LIST}?agent_id=hot{i}&page_size=30")
            assert status == 200, (name, status)
            wire_bytes(port, f"{LIST}?agent_id=hot{i}&page_size=30", "gzip")
    fake_reset(upstream)
    results = {}
    for encoding in ("gzip", "identity"):
        order = [(name, server) for name, server in servers.items()
                 if encoding == "identity" or name != BASELINE_NAME]
        measured = {name: [] for name, _ in order}
        env = {"KEYS": "100", **({"ACCEPT_ENCODING": encoding} if encoding == "gzip" else {})}
        for round_index in range(runs):
            shift = round_index % len(order)
            for name, (port, proc) in order[shift:] + order[:shift]:
                before = cpu_seconds(proc.pid)
                result = wrk(port, "hot.lua", 64, seconds, env=env)
                result["cpu_us"] = (cpu_seconds(proc.pid) - before) / max(1, result["rps"] * seconds) * 1e6
                measured[name].append(result)
        for name, runs_of in measured.items():
            port = servers[name][0]
            size, gzipped = wire_bytes(port, f"{LIST}?agent_id=hot1&page_size=30",
                                       "gzip" if encoding == "gzip" else "identity")
            results[(name, encoding)] = {"rps": median_of(runs_of, "rps"), "cpu_us": median_of(runs_of, "cpu_us"),
                                         "non2xx": sum(m["non2xx"] for m in runs_of), "bytes": size,
                                         "gzipped": gzipped}
    for encoding in ("gzip", "identity"):
        base = results[("xi-gateway", encoding)]
        for name in servers:
            if (name, encoding) not in results:
                continue
            r = results[(name, encoding)]
            rows.append([f"hits, {encoding} clients (64 conn), {name}", f"{r['rps']:,.0f} req/s",
                         f"CPU {r['cpu_us']:.1f} us/hit",
                         f"{r['bytes']:,} B/answer{' (gzip)' if r['gzipped'] else ''}",
                         f"non-2xx {r['non2xx']}" if name == "xi-gateway"
                         else f"xi/{name}: {base['rps'] / r['rps']:.2f}x req/s, "
                              f"{r['cpu_us'] / base['cpu_us']:.2f}x less CPU"])
    rows.append(["gzip hits: upstream requests during the runs (all should be hits)",
                 str(fake_stats(upstream)["requests"]), "", "", ""])


def make_certificate():
    """A self-signed ECDSA P-256 pair for 127.0.0.1, made by openssl in the work folder: (certificate, key)."""
    certificate, key = os.path.join(WORK, "tls.crt"), os.path.join(WORK, "tls.key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", key, "-out", certificate, "-days", "2", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"], check=True, capture_output=True)
    os.chmod(key, 0o644)  # nginx reads it as root, but keep it readable for its workers too
    return certificate, key


# nginx's cache with TLS on its listener: the same certificate as the gateway, TLS 1.2 and 1.3, and the cipher
# suite the gateway's BoringSSL settles on with wrk's OpenSSL (AES-256-GCM, the client's first choice), so both
# do the same work per byte. No session cache or tickets: a new connection is a full handshake on both.
NGINX_TLS_SERVER = """listen 127.0.0.1:{port} ssl reuseport backlog=4096;
        ssl_certificate %(certificate)s;
        ssl_certificate_key %(key)s;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_ciphers ECDHE-ECDSA-AES256-GCM-SHA384;
        ssl_conf_command Ciphersuites TLS_AES_256_GCM_SHA384;
        ssl_session_cache off;
        ssl_session_tickets off;"""


def negotiated(port):
    """The TLS version and cipher suite a default client gets from the server on port."""
    context = ssl._create_unverified_context()
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with context.wrap_socket(raw, server_hostname="localhost") as tls:
            return f"{tls.version()} {tls.cipher()[0]}"


def scenario_tls(procs, rows, runs, seconds):
    """Hits over TLS, against nginx with the same certificate and cipher suite: keep-alive (the record layer
    only), and a new connection for every request (a full handshake each, ECDHE P-256 and ECDSA)."""
    certificate, key = make_certificate()
    upstream = start_fake(procs, latency_ms=50)
    template = NGINX_CACHE.replace("listen 127.0.0.1:{port} reuseport backlog=4096;",
                                   NGINX_TLS_SERVER % {"certificate": certificate, "key": key})
    servers = {"xi-gateway": start_gateway(procs, upstream, TLS_CERT_FILE=certificate, TLS_KEY_FILE=key)[0],
               "nginx": start_nginx(procs, upstream, template=template)[0]}
    for name, port in servers.items():
        warm(port, 100, tls=True)
    ciphers = {name: negotiated(port) for name, port in servers.items()}
    fake_reset(upstream)
    results = {}
    for load, connections, env in (("keep-alive", 64, {"KEYS": "100"}),
                                    ("handshake", 16, {"KEYS": "100", "CLOSE": "1"})):
        measured = {name: [] for name in servers}
        order = list(servers.items())
        for round_index in range(runs):
            shift = round_index % len(order)
            for name, port in order[shift:] + order[:shift]:
                measured[name].append(wrk(port, "hot.lua", connections, seconds, env=env, scheme="https"))
        for name, runs_of in measured.items():
            results[(name, load)] = {"rps": median_of(runs_of, "rps"), "p99": median_of(runs_of, "p99"),
                                     "non2xx": sum(m["non2xx"] for m in runs_of)}
    for load, title in (("keep-alive", "TLS hot keys, keep-alive (64 conn)"),
                        ("handshake", "TLS hot keys, a new connection per request (16 conn)")):
        base = results[("xi-gateway", load)]
        for name in servers:
            r = results[(name, load)]
            rows.append([f"{title}, {name}", f"{r['rps']:,.0f} req/s", f"p99 {r['p99']:.2f} ms", ciphers[name],
                         f"non-2xx {r['non2xx']}" if name == "xi-gateway"
                         else f"xi/{name}: {base['rps'] / r['rps']:.2f}x"])
    rows.append(["TLS: upstream requests during the runs (all should be hits)", str(fake_stats(upstream)["requests"]),
                 "", "", ""])
    return results


def scenario_mixed(procs, rows, seconds, limit=4):
    upstream = start_fake(procs, latency_ms=50, max_concurrent=limit)
    # Pages fresh for 5 s, so popular ones are refreshed (stale-while-revalidate) many times in a run.
    servers = {"xi-gateway": start_gateway(procs, upstream, CACHE_TTL_SECONDS=5, CACHE_STALE_SECONDS=300,
                                           UPSTREAM_MAX_CONCURRENCY=limit)[0],
               "nginx": start_nginx(procs, upstream, ttl=5)[0]}
    for name, port in servers.items():
        fake_reset(upstream)
        result = wrk(port, "zipf.lua", 64, seconds, env={"KEYS": "5000", "PREFIX": f"{name[:2]}{time.time_ns()}"})
        stats = fake_stats(upstream)
        mixed = result["mixed"]
        errors = sum(v for k, v in mixed["statuses"].items() if not k.startswith("2"))
        rows.append([f"mixed Zipf load, upstream 429s above {limit} at once, {name}",
                     f"upstream {stats['requests']:,} requests, {stats['statuses'].get('429', 0):,} answered 429",
                     f"client errors {errors:,} of {mixed['answers']:,}",
                     f"hit ratio {mixed['hits'] / max(1, mixed['answers']):.1%}",
                     f"p50 {mixed['p50_us'] / 1000:.2f} ms, p99 {mixed['p99_us'] / 1000:.2f} ms"])


LOAD_BALANCER = """
global
    maxconn 8192
    nbthread 1
defaults
    mode http
    timeout connect 3s
    timeout client 30s
    timeout server 30s
    option http-keep-alive
    http-reuse always
backend replicas
    balance roundrobin
{servers}
frontend web
    bind 127.0.0.1:{port}
    default_backend replicas
"""


def start_load_balancer(procs, ports, name):
    """HAProxy without a cache, round robin over `ports`: what a deployment puts in front of replicas."""
    port = free_port()
    conf = os.path.join(WORK, f"lb-{name}.cfg")
    servers = "\n".join(f"    server r{i} 127.0.0.1:{p}" for i, p in enumerate(ports))
    with open(conf, "w") as f:
        f.write(LOAD_BALANCER.format(servers=servers, port=port))
    procs.start(f"lb-{name}", ["haproxy", "-f", conf, "-db"])
    wait_for_port(port)
    return port


def start_redis(procs):
    """redis-server on a Unix socket, set up as the README advises for the shared tier: no persistence,
    bounded memory, least recently used pages with an expiry out first."""
    socket_path = os.path.join(WORK, "redis.sock")
    procs.start("redis", ["redis-server", "--port", "0", "--unixsocket", socket_path, "--unixsocketperm", "700",
                          "--save", "", "--appendonly", "no", "--maxmemory", "256mb",
                          "--maxmemory-policy", "volatile-lru", "--dir", WORK])
    deadline = time.time() + 10
    while not os.path.exists(socket_path):
        if time.time() > deadline:
            raise RuntimeError("redis-server did not start")
        time.sleep(0.05)
    return f"unix://{socket_path}"


def settle(upstream, limit=60):
    """Waits until the upstream has had no request for a second (at most `limit` seconds)."""
    deadline = time.time() + limit
    last = fake_stats(upstream)["requests"]
    while time.time() < deadline:
        time.sleep(1)
        now = fake_stats(upstream)["requests"]
        if now == last:
            return
        last = now


def scenario_replicas(procs, rows, seconds, limit=4, count=3):
    """Several replicas behind one load balancer, under the mixed Zipf load, against an upstream that answers
    429 above `limit` concurrent requests: one gateway, `count` gateways alone, `count` gateways sharing
    Redis, and `count` nginx with their own caches. Then the p99 of hits through the same balancer."""
    redis_url = start_redis(procs)
    setups = {}
    common = dict(CACHE_TTL_SECONDS=5, CACHE_STALE_SECONDS=300, UPSTREAM_MAX_CONCURRENCY=limit,
                  EVENT_LOOP_THREADS=1)

    def gateways(n, **extra):
        return [start_gateway(procs, upstream, **common, **extra)[0] for _ in range(n)]

    for name in ("1 xi-gateway", f"{count} xi-gateways alone", f"{count} xi-gateways with Redis",
                 f"{count} nginx"):
        upstream = start_fake(procs, latency_ms=50, max_concurrent=limit)
        if name.startswith("1 "):
            ports = gateways(1)
        elif "alone" in name:
            ports = gateways(count)
        elif "Redis" in name:
            # A prefix of its own per run, so no page of an earlier run is found.
            ports = gateways(count, REDIS_URL=redis_url, REDIS_KEY_PREFIX=f"bench{time.time_ns()}")
        else:
            ports = [start_nginx(procs, upstream, ttl=5)[0] for _ in range(count)]
        setups[name] = (upstream, start_load_balancer(procs, ports, name.replace(" ", "-")))
    for name, (upstream, port) in setups.items():
        # The hot pages first (round robin: every replica gets each), while the upstream is not backing off;
        # during the mixed load they go stale and are served while refreshed.
        for _ in range(count):
            warm(port, 100)
        fake_reset(upstream)
        result = wrk(port, "zipf.lua", 64, seconds, env={"KEYS": "5000", "PREFIX": f"r{time.time_ns()}"})
        stats = fake_stats(upstream)
        mixed = result["mixed"]
        errors = sum(v for k, v in mixed["statuses"].items() if not k.startswith("2"))
        # Upstream requests queued during the mixed load go on after it; hits are timed once they are done.
        settle(upstream)
        hits = wrk(port, "hot.lua", 16, max(3, seconds // 2), env={"PACE_MS": "2"})
        rows.append([f"replicas, mixed Zipf load, upstream 429s above {limit} at once, {name}",
                     f"upstream {stats['requests']:,} requests, {stats['statuses'].get('429', 0):,} answered 429",
                     f"client errors {errors:,} of {mixed['answers']:,}",
                     f"hit ratio {mixed['hits'] / max(1, mixed['answers']):.1%}",
                     f"hit p99 {hits['p99']:.2f} ms (paced, through the balancer)"])


def main():
    global WORK, BIN, CLEANUP, BASELINE
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="1 run of 3 s each, for trying the harness")
    parser.add_argument("--only", default="hot,burst,misses,memory,gzip,tls,mixed,replicas")
    parser.add_argument("--bin-dir", default=os.path.join(ROOT, ".build", "release"))
    parser.add_argument("--output", default=None)
    parser.add_argument("--baseline-bin-dir", default=None,
                        help="an earlier build's release folder: its gateway runs beside this one in the hot-key "
                             "and gzip rounds, for a ratio measured in the same run")
    parser.add_argument("--variant", action="append", default=[], metavar="KEY=VALUE[,KEY=VALUE]",
                        help="also run the hot keys with a gateway configured so (repeatable), "
                             "for example --variant EVENT_LOOP_THREADS=1")
    args = parser.parse_args()
    for variant in args.variant:
        settings = dict(item.split("=", 1) for item in variant.split(",") if "=" in item)
        if not settings:
            sys.exit(f"bench: --variant wants KEY=VALUE, got {variant!r}")
        VARIANTS.append(settings)
    for tool in ("wrk", "nginx", "haproxy", "varnishd", "redis-server"):
        if not shutil.which(tool):
            sys.exit(f"bench: {tool} is missing (make bench installs it)")
    BIN = args.bin_dir
    BASELINE = args.baseline_bin_dir
    WORK = tempfile.mkdtemp(prefix="xi-bench-")
    os.chmod(WORK, 0o755)  # nginx's and Varnish's workers run as other users
    CLEANUP = [WORK]
    runs, seconds = (1, 3) if args.quick else (3, 8)
    rows = []
    procs = Processes()
    started = time.time()
    try:
        for name in args.only.split(","):
            {"hot": lambda: scenario_hot(procs, rows, runs, seconds),
             "burst": lambda: scenario_burst(procs, rows),
             "misses": lambda: scenario_misses(procs, rows, runs, seconds),
             "memory": lambda: scenario_memory(procs, rows),
             "gzip": lambda: scenario_gzip(procs, rows, runs, seconds),
             "tls": lambda: scenario_tls(procs, rows, runs, seconds),
             "mixed": lambda: scenario_mixed(procs, rows, seconds * 2),
             "replicas": lambda: scenario_replicas(procs, rows, seconds * 2)}[name]()
            procs.stop_all()
    except Exception:
        for log in sorted(os.listdir(WORK)):
            if log.endswith(".log"):
                with open(os.path.join(WORK, log), errors="replace") as f:
                    tail = f.read()[-1500:]
                print(f"--- {log}\n{tail}", file=sys.stderr)
        raise
    finally:
        procs.stop_all()
        for path in CLEANUP:
            shutil.rmtree(path, ignore_errors=True)
    header = (f"xi-gateway benchmark, {datetime.date.today().isoformat()}, {os.cpu_count()} cores, "
              f"wrk on the same machine, {'quick' if args.quick else f'median of {runs} runs of {seconds} s'}, "
              f"{time.time() - started:.0f} s in all")
    widths = [max(len(str(r[i])) for r in rows) for i in range(5)]
    table = "\n".join("  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)
    text = f"{header}\n\n{table}\n"
    print(text)
    output = args.output or os.path.join(HERE, "results",
                                         f"{datetime.date.today().isoformat()}-{os.cpu_count()}cores"
                                         f"{'-quick' if args.quick else ''}{'-variants' if VARIANTS else ''}.txt")
    with open(output, "w") as f:
        f.write(text)
    print(f"written to {os.path.relpath(output, ROOT)}")


if __name__ == "__main__":
    main()
