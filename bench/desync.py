#!/usr/bin/env python3
"""Request smuggling and desynchronisation attempts against xi-gateway behind nginx and behind HAProxy.

Starts the fake upstream (xi-fake-upstream), one gateway per lane, nginx and HAProxy in front of two of
them, all on 127.0.0.1, and sends each attempt (CL.TE, TE.CL, obfuscated Transfer-Encoding, conflicting
Content-Length, chunk-size and chunk-extension tricks, Expect, obs-fold, bare LF, `#` in the target, Host,
pipelining) through each front proxy and straight to a gateway of its own. Stops what it started, by
process id, whatever happens; the whole run takes about a minute (the three lanes run side by side).

Every request names itself: its `agent_id` is a marker (ATTACK-n07, SMUGGLED-n07, PIPED-n07, VICTIMA-n07,
VICTIMB-n07; the letter is the lane, the number the attempt), and the fake upstream's pages echo it. After
the attack bytes, a normal victim request goes on the attack's connection and another on a connection of
its own. Between each front proxy and its gateway, and between each gateway and the fake upstream, sits a
recording relay (a "tap") that counts the gateway's answers and keeps what it asked the upstream.

Through a front proxy, an attempt fails when
- a client receives an answer whose marker was not in a request the front proxy logged for that client's
  connection, or in another order (an answer reached the wrong client, or answered a request the front
  never saw);
- the gateway's access log, or its requests to the upstream, name a marker that no request logged by the
  front proxy carries (the gateway answered a request the front did not send it);
- the gateway wrote more answers than the front proxy forwarded requests (its log, retries counted);
- the second victim, on a fresh connection, gets no answer of its own.
A refusal (400, 501, ...) by either is a pass. Straight to the gateway, the first answers must be the
ones expected of a strict reader (mostly 400 and close), and a smuggled request must never be answered.

    python3 bench/desync.py [--bin-dir .build/release] [--only NAME,...] [--lanes nginx,haproxy,direct]

Prints one row per attempt and lane (`attempt | front | front status | gateway saw | verdict`) and
`N passed, N failed`; exits 1 on any failure. "front status" is what the attack's connection got before
the victims were sent ("close": then closed); "gateway saw" is how many answers the gateway wrote (counted
by the tap) of how many requests the front proxy forwarded (its log), and the markers in the gateway's
access log (A attack, S smuggled, P pipelined, VA and VB the victims).
"""
import argparse
import collections
import json
import os
import re
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.dont_write_bytecode = True  # importing bench.py leaves no __pycache__ in the tree
import bench  # noqa: E402 (its process, gateway and fake-upstream helpers)
from common import free_port, wait_for_port  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
LIST = bench.LIST
HOST = "Host: 127.0.0.1\r\n"
RUN_TESTS = "/v1/convai/agents/{}/run-tests"
MARKER = re.compile(rb"(ATTACK|SMUGGLED|PIPED|VICTIMA|VICTIMB)-([a-z])(\d+)")
ROLE_SHORT = {"ATTACK": "A", "SMUGGLED": "S", "PIPED": "P", "VICTIMA": "VA", "VICTIMB": "VB"}
# The whole run stays under 3 minutes; attempts not started by then are failures.
BUDGET_SECONDS = 165
IDLE = 0.4  # how long a connection stays quiet before its answers are taken as complete
FIRST = 1.0  # how long the first answer to an attack may take


# ---------------------------------------------------------------- attempts

def path(marker):
    return f"{LIST}?agent_id={marker}&page_size=1"


def get(marker, extra="", version="HTTP/1.1", host=HOST):
    return f"GET {path(marker)} {version}\r\n{host}{extra}\r\n"


def cl_te(te_lines, inner=None):
    """CL.TE: Content-Length covers the whole body, the 0-chunk ends it early for a reader of chunks."""
    def build(m):
        body = "0\r\n\r\n" + (inner(m) if inner else get(m["S"]))
        return f"GET {path(m['A'])} HTTP/1.1\r\n{HOST}Content-Length: {len(body)}\r\n{te_lines}\r\n" + body
    return build


def te_cl(te_lines):
    """TE.CL: a chunk holds the smuggled request; Content-Length covers only the chunk's size line."""
    def build(m):
        inner = get(m["S"])
        size_line = f"{len(inner):x}\r\n"
        body = f"{size_line}{inner}\r\n0\r\n\r\n"
        return f"GET {path(m['A'])} HTTP/1.1\r\n{HOST}{te_lines}Content-Length: {len(size_line)}\r\n\r\n" + body
    return build


def te_only(te_lines):
    """An obfuscated Transfer-Encoding alone: a reader ignoring it sees no body and the chunk as a request."""
    def build(m):
        inner = get(m["S"])
        return f"GET {path(m['A'])} HTTP/1.1\r\n{HOST}{te_lines}\r\n{len(inner):x}\r\n{inner}\r\n0\r\n\r\n"
    return build


def chunked(body):
    """A chunked body written some way, then a request after it (pipelined, when the body is accepted)."""
    def build(m):
        return f"GET {path(m['A'])} HTTP/1.1\r\n{HOST}Transfer-Encoding: chunked\r\n\r\n{body}" + get(m["S"])
    return build


def with_length(lines, body_of):
    """Content-Length lines as given, `{n}` standing for the length of the whole body."""
    def build(m):
        body = body_of(m)
        return f"GET {path(m['A'])} HTTP/1.1\r\n{HOST}{lines.format(n=len(body))}\r\n" + body
    return build


def raw(text_of):
    return lambda m: text_of(m)


def run_tests_head(m, length, extra=""):
    return (f"POST {RUN_TESTS.format(m['A'])} HTTP/1.1\r\n{HOST}Content-Type: application/json\r\n"
            f"Content-Length: {length}\r\n{extra}\r\n")


JSON_BODY = '{"note":"desync"}'

Attempt = collections.namedtuple("Attempt", "name build direct s_next waits", defaults=(False, None))
# name: the row's name. build(markers) -> the bytes to send, or a list of pieces sent one after another, each
#   followed by a wait for answers of waits[i] seconds (default IDLE).
# direct: what the gateway must answer straight (a regex over the statuses read before the victims, e.g.
#   "400", "200 200", "100 200", "none"). s_next: the SMUGGLED marker is a request of its own (pipelined
#   after a body the gateway may accept), not one hidden in a body.
ATTEMPTS = [
    # CL.TE and TE.CL
    Attempt("cl-te", cl_te("Transfer-Encoding: chunked\r\n"), "400"),
    Attempt("cl-te-prefix", cl_te("Transfer-Encoding: chunked\r\n",
                                  inner=lambda m: f"GET {path(m['S'])} HTTP/1.1\r\n{HOST}X-Ignore: "), "400"),
    Attempt("te-cl", te_cl("Transfer-Encoding: chunked\r\n"), "400"),
    # TE.TE: Transfer-Encoding obfuscated, with Content-Length covering everything
    Attempt("te-xchunked", cl_te("Transfer-Encoding: xchunked\r\n"), "400"),
    Attempt("te-leading-space-line", cl_te("X-Pad: a\r\n Transfer-Encoding: chunked\r\n"), "400"),
    Attempt("te-value-spaces", cl_te("Transfer-Encoding:  chunked \r\n"), "400"),
    Attempt("te-tab", cl_te("Transfer-Encoding:\tchunked\r\n"), "400"),
    Attempt("te-list-chunked-identity", cl_te("Transfer-Encoding: chunked, identity\r\n"), "400"),
    Attempt("te-list-identity-chunked", cl_te("Transfer-Encoding: identity, chunked\r\n"), "400"),
    Attempt("te-duplicate", cl_te("Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n"), "400"),
    Attempt("te-duplicate-same", cl_te("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n"), "400"),
    Attempt("te-space-before-colon", cl_te("Transfer-Encoding : chunked\r\n"), "400"),
    Attempt("te-folded-value", cl_te("Transfer-Encoding:\r\n chunked\r\n"), "400"),
    Attempt("te-vertical-tab", cl_te("Transfer-Encoding: \x0bchunked\r\n"), "400"),
    Attempt("te-upper-case", cl_te("TRANSFER-ENCODING: CHUNKED\r\n"), "400"),
    Attempt("te-cl-xchunked", te_cl("Transfer-Encoding: xchunked\r\n"), "400"),
    Attempt("te-cl-tab", te_cl("Transfer-Encoding:\tchunked\r\n"), "400"),
    Attempt("te-only-xchunked", te_only("Transfer-Encoding: xchunked\r\n"), "400"),
    Attempt("te-only-duplicate", te_only("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n"), "400"),
    Attempt("te-http10", raw(lambda m: f"GET {path(m['A'])} HTTP/1.0\r\n{HOST}Transfer-Encoding: chunked\r\n\r\n"
                                       f"0\r\n\r\n" + get(m["S"])), "400"),
    # Content-Length
    Attempt("cl-list", with_length("Content-Length: 5, {n}\r\n", lambda m: "12345" + get(m["S"])), "400"),
    Attempt("cl-two-lines", with_length("Content-Length: {n}\r\nContent-Length: 5\r\n",
                                        lambda m: "12345" + get(m["S"])), "400"),
    Attempt("cl-two-lines-same", with_length("Content-Length: 5\r\nContent-Length: 5\r\n",
                                             lambda m: "12345" + get(m["S"])), "200 200|400", s_next=True),
    Attempt("cl-plus", with_length("Content-Length: +5\r\n", lambda m: "12345" + get(m["S"])), "400"),
    Attempt("cl-leading-space", with_length("Content-Length:  5\r\n", lambda m: "12345" + get(m["S"])), "200 200",
            s_next=True),
    Attempt("cl-negative", with_length("Content-Length: -5\r\n", lambda m: "12345" + get(m["S"])), "400"),
    Attempt("cl-huge", with_length("Content-Length: 184467440737095516165\r\n", lambda m: "12345" + get(m["S"])),
            "400"),
    Attempt("cl-get-body", with_length("Content-Length: {n}\r\n", lambda m: get(m["S"])), "200"),
    # Chunk sizes and extensions (the request after the body is a pipelined one when the body is accepted)
    Attempt("chunk-size-space", chunked("5 \r\nhello\r\n0\r\n\r\n"), "400", s_next=True),
    Attempt("chunk-size-tab", chunked("5\t\r\nhello\r\n0\r\n\r\n"), "400", s_next=True),
    Attempt("chunk-size-0x", chunked("0x5\r\nhello\r\n0\r\n\r\n"), "400", s_next=True),
    Attempt("chunk-size-leading-zero", chunked("05\r\nhello\r\n0\r\n\r\n"), "200 200", s_next=True),
    Attempt("chunk-size-overflow", chunked("10000000000000005\r\nhello\r\n0\r\n\r\n"), "400", s_next=True),
    Attempt("chunk-size-huge", chunked("fffffffffffffff\r\nhello\r\n"), "none|400|413", s_next=True),
    Attempt("chunk-size-negative", chunked("-5\r\nhello\r\n0\r\n\r\n"), "400", s_next=True),
    Attempt("chunk-data-overrun", chunked("5\r\nhelloXX\r\n0\r\n\r\n"), "400", s_next=True),
    Attempt("chunk-bare-lf", chunked("5\nhello\n0\n\n"), "400", s_next=True),
    Attempt("chunk-ext-name", chunked("5;ext\r\nhello\r\n0\r\n\r\n"), "200 200", s_next=True),
    Attempt("chunk-ext-token", chunked("5;a=b\r\nhello\r\n0;c=d\r\n\r\n"), "200 200", s_next=True),
    Attempt("chunk-ext-quoted", chunked('5;a="q \\" v"\r\nhello\r\n0\r\n\r\n'), "200 200", s_next=True),
    Attempt("chunk-ext-empty", chunked("5;\r\nhello\r\n0\r\n\r\n"), "400", s_next=True),
    Attempt("chunk-ext-space-in-name", chunked("5;a b\r\nhello\r\n0\r\n\r\n"), "400", s_next=True),
    Attempt("chunk-ext-unterminated-quote", chunked('5;a="x\r\nhello\r\n0\r\n\r\n'), "400",
            s_next=True),
    Attempt("chunk-ext-empty-value", chunked("5;a=\r\nhello\r\n0\r\n\r\n"), "400", s_next=True),
    Attempt("chunk-ext-space-before", chunked("5 ;a\r\nhello\r\n0\r\n\r\n"), "400", s_next=True),
    Attempt("chunk-ext-control", chunked("5;a\x01\r\nhello\r\n0\r\n\r\n"), "400", s_next=True),
    # Expect
    Attempt("expect-100-over-limit", lambda m: [run_tests_head(m, 2_000_000, "Expect: 100-continue\r\n")], "413", waits=(1.0,)),
    Attempt("expect-100-over-limit-body", lambda m: run_tests_head(m, 2_000_000, "Expect: 100-continue\r\n")
            + get(m["S"]), "413", waits=(1.0,)),
    Attempt("expect-100-within", lambda m: [run_tests_head(m, len(JSON_BODY), "Expect: 100-continue\r\n"),
                                            JSON_BODY], "100 200", waits=(1.0,)),
    Attempt("expect-unknown", raw(lambda m: get(m["A"], "Expect: something-else\r\n")), "417"),
    Attempt("expect-unknown-body", with_length("Expect: something-else\r\nContent-Length: {n}\r\n",
                                               lambda m: get(m["S"])), "417"),
    # Host
    Attempt("host-missing", raw(lambda m: get(m["A"], host="")), "400"),
    Attempt("host-duplicate", raw(lambda m: get(m["A"], "Host: other.example\r\n")), "400"),
    Attempt("host-duplicate-same", raw(lambda m: get(m["A"], HOST)), "400"),
    Attempt("host-missing-http10", raw(lambda m: get(m["A"], version="HTTP/1.0", host="")), "200"),
    # Header syntax
    Attempt("obs-fold-space", raw(lambda m: get(m["A"], "X-Note: a\r\n b\r\n")), "400"),
    Attempt("obs-fold-tab", raw(lambda m: get(m["A"], "X-Note: a\r\n\tb\r\n")), "400"),
    Attempt("bare-lf", raw(lambda m: get(m["A"]).replace("\r\n", "\n")), "400"),
    Attempt("bare-lf-before-te", cl_te("X-Pad: a\nTransfer-Encoding: chunked\r\n"), "400"),
    Attempt("bare-cr-before-te", cl_te("X-Pad: a\rTransfer-Encoding: chunked\r\n"), "400"),
    # Request target
    Attempt("hash-in-query", raw(lambda m: f"GET {LIST}?agent_id={m['A']}#frag&page_size=1 HTTP/1.1\r\n{HOST}\r\n"),
            "400"),
    Attempt("hash-in-path", raw(lambda m: f"GET /healthz#{m['A']} HTTP/1.1\r\n{HOST}\r\n"), "400"),
    Attempt("absolute-form", raw(lambda m: f"GET http://127.0.0.1{path(m['A'])} HTTP/1.1\r\n{HOST}\r\n"), "400"),
    # Pipelining
    Attempt("pipelined", raw(lambda m: get(m["A"]) + get(m["P"])), "200 200"),
    Attempt("pipelined-after-body", raw(lambda m: f"POST {path(m['A'])} HTTP/1.1\r\n{HOST}Content-Length: 3\r\n\r\n"
                                                  "x=1" + get(m["P"])), "405 200"),
    Attempt("pipelined-after-bad", raw(lambda m: get(m["A"]) + "GET /healthz HTTP/1.1\r\nBad Header: x\r\n\r\n"
                                                 + get(m["S"])), "200 400"),
]


# ---------------------------------------------------------------- HTTP answers

Answer = collections.namedtuple("Answer", "status markers")


def markers_in(data):
    return [m.group(0).decode() for m in MARKER.finditer(data)]


def chunked_length(data):
    """How many bytes a whole chunked body takes at the start of `data`; None when not all there (or bad)."""
    index = 0
    while True:
        end = data.find(b"\r\n", index)
        if end < 0:
            return None
        try:
            size = int(data[index:end].split(b";")[0].strip(), 16)
        except ValueError:
            return None
        index = end + 2
        if size == 0:
            trailer_end = data.find(b"\r\n\r\n", index - 2)
            return None if trailer_end < 0 else trailer_end + 4
        index += size + 2
        if index > len(data):
            return None


class AnswerStream:
    """HTTP/1.1 answers read from a byte stream, a read at a time; what is not HTTP counts as one answer."""

    def __init__(self):
        self.buffer = b""
        self.answers = []  # final answers and 1xx, in order

    def feed(self, data, closed=False):
        self.buffer += data
        new = []
        while self.buffer:
            if not self.buffer.startswith(b"HTTP/"[:len(self.buffer)]):
                new.append(Answer("junk", markers_in(self.buffer)))
                self.buffer = b""
                break
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                if closed:
                    new.append(Answer("partial", markers_in(self.buffer)))
                    self.buffer = b""
                break
            head = self.buffer[:end].decode("latin-1")
            lines = head.split("\r\n")
            try:
                status = int(lines[0].split(" ")[1])
            except (IndexError, ValueError):
                new.append(Answer("junk", markers_in(self.buffer)))
                self.buffer = b""
                break
            fields = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                fields[name.strip().lower()] = value.strip().lower()
            start = end + 4
            if 100 <= status < 200 or status in (204, 304):
                length = 0
            elif "chunked" in fields.get("transfer-encoding", ""):
                length = chunked_length(self.buffer[start:])
            elif "content-length" in fields:
                length = int(fields["content-length"])
                length = length if len(self.buffer) - start >= length else None
            else:
                length = len(self.buffer) - start if closed else None
            if length is None:
                if closed:
                    new.append(Answer(status, markers_in(self.buffer)))
                    self.buffer = b""
                break
            new.append(Answer(status, markers_in(self.buffer[:start + length])))
            self.buffer = self.buffer[start + length:]
        self.answers += new
        return new


def statuses(answers):
    return " ".join(str(a.status) for a in answers) or "none"


# ---------------------------------------------------------------- clients

class Client:
    """One client connection: sends bytes, collects the answers, notes whether the server closed it."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=3)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.port = self.sock.getsockname()[1]
        self.stream = AnswerStream()
        self.sent = b""
        self.closed = False
        self.reset = False

    def send(self, data):
        if self.closed:
            return False
        try:
            self.sock.sendall(data)
            self.sent += data
            return True
        except OSError:
            self.closed = True
            return False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def read_answers(clients, first, idle=IDLE, cap=3.0):
    """Reads from every open client until none has sent anything for `idle` seconds (the first answer may
    take up to `first`), each has closed, or `cap` seconds have passed."""
    selector = selectors.DefaultSelector()
    for client in clients:
        if not client.closed:
            client.sock.setblocking(False)
            selector.register(client.sock, selectors.EVENT_READ, client)
    started = time.monotonic()
    last = None
    try:
        while selector.get_map():
            now = time.monotonic()
            wait = (started + first if last is None else last + idle) - now
            wait = min(wait, started + cap - now)
            if wait <= 0:
                break
            for key, _ in selector.select(wait):
                client = key.data
                try:
                    data = client.sock.recv(65536)
                except BlockingIOError:
                    continue
                except OSError:
                    data, client.reset = b"", True
                if data:
                    last = time.monotonic()
                    client.stream.feed(data)
                else:
                    client.stream.feed(b"", closed=True)
                    client.closed = True
                    selector.unregister(client.sock)
    finally:
        selector.close()
        for client in clients:
            if not client.closed:
                client.sock.setblocking(True)


# ---------------------------------------------------------------- taps

class Tap:
    """A loopback TCP relay that records what passes: the answers coming back (counted with the time they
    were complete) and, optionally, the bytes going out. Closes are passed on as closes."""

    def __init__(self, target_port, keep_sent=False):
        self.target_port = target_port
        self.keep_sent = keep_sent
        self.lock = threading.Lock()
        self.answers = []  # Answer, in the order completed
        self.sent = bytearray()
        self.sockets = []
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(128)
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                downstream, _ = self.listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
                upstream.settimeout(None)
            except OSError:
                downstream.close()
                continue
            for sock in (downstream, upstream):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self.lock:
                self.sockets += [downstream, upstream]
            stream = AnswerStream()
            pending = [2]
            threading.Thread(target=self._pump, args=(downstream, upstream, None, pending), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, downstream, stream, pending), daemon=True).start()

    def _pump(self, source, target, stream, pending):
        while True:
            try:
                data = source.recv(65536)
            except OSError:
                data = b""
            if stream is not None:
                answers = stream.feed(data, closed=not data)
                with self.lock:
                    self.answers += [a for a in answers if not (isinstance(a.status, int) and a.status < 200)]
            elif data and self.keep_sent:
                with self.lock:
                    self.sent += data
            if not data:
                break
            try:
                target.sendall(data)
            except OSError:
                break
        try:
            target.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        with self.lock:
            pending[0] -= 1
            done = pending[0] == 0
        if done:
            source.close()
            target.close()

    def snapshot(self):
        with self.lock:
            return len(self.answers), len(self.sent)

    def stop(self):
        try:
            self.listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.listener.close()
        with self.lock:
            for sock in self.sockets:
                try:
                    sock.close()
                except OSError:
                    pass


# ---------------------------------------------------------------- fronts and logs

# One worker, one thread, connections to the gateway kept and reused (HAProxy: by any client), so that what
# one client leaves on a connection to the gateway meets the next client's request.
NGINX = """
worker_processes 1;
pid {dir}/nginx-desync.pid;
error_log {dir}/nginx-error.log info;
events {{ worker_connections 256; }}
http {{
    log_format desync 'XI $remote_port "$request" $status up=[$upstream_addr]';
    access_log {dir}/nginx-access.log desync;
    client_body_temp_path {dir}/nginx-body;
    proxy_temp_path {dir}/nginx-proxy;
    upstream gateway {{ server 127.0.0.1:{tap}; keepalive 16; }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://gateway;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_request_buffering off;
            proxy_connect_timeout 2s;
            proxy_send_timeout 4s;
            proxy_read_timeout 4s;
        }}
    }}
}}
"""

HAPROXY = """
global
    nbthread 1
    log stdout format raw local0
defaults
    mode http
    log global
    log-format "XI %cp %{{+Q}}r %ST %b/%s %rc"
    option http-keep-alive
    option abortonclose
    http-reuse always
    timeout connect 2s
    timeout client 4s
    timeout server 4s
backend gateway
    server gateway 127.0.0.1:{tap}
frontend web
    bind 127.0.0.1:{port}
    default_backend gateway
"""

FRONT_LINE = re.compile(r'^XI (\d+) "(.*)" (\d+) (.*)$')


class LogFile:
    """New lines of a file that another process appends to."""

    def __init__(self, path):
        self.path = path
        self.offset = 0
        self.partial = b""

    def size(self):
        try:
            return os.path.getsize(self.path)
        except OSError:
            return 0

    def new_lines(self):
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read()
        except OSError:
            return []
        self.offset += len(data)
        data = self.partial + data
        lines = data.split(b"\n")
        self.partial = lines.pop()
        return [line.decode("utf-8", "replace") for line in lines]


FrontRequest = collections.namedtuple("FrontRequest", "client_port request status forwarded markers")


def parse_front_line(kind, line):
    """A front proxy's log line, or None: its client port, request line, status and how many times it was
    sent to the gateway (nginx: one upstream address per try; HAProxy: a server, plus its retries)."""
    match = FRONT_LINE.match(line)
    if not match:
        return None
    port, request, status, rest = match.groups()
    if kind == "nginx":
        forwarded = len(re.findall(r"\d+\.\d+\.\d+\.\d+:\d+", rest))
    else:
        server, _, retries = rest.rpartition(" ")
        forwarded = 0 if server.endswith("<NOSRV>") else 1 + int(retries.lstrip("+") or 0)
    return FrontRequest(int(port), request, status, forwarded, markers_in(request.encode()))


def access_markers(lines):
    """The markers in the paths of the gateway's access log lines."""
    found = []
    for line in lines:
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if entry.get("label") == "access":
            found += markers_in(entry.get("path", "").encode())
    return found


def request_markers(sent):
    """The markers in request lines the gateway sent the upstream."""
    return [m for line in re.findall(rb"(?:^|\r\n)[A-Z]+ (\S+) HTTP/1\.[01]\r\n", bytes(sent))
            for m in markers_in(line)]


# ---------------------------------------------------------------- lanes

class Lane:
    """One gateway, alone (`direct`) or behind a front proxy, with its taps and logs."""

    def __init__(self, procs, name, letter, upstream_port):
        self.name, self.letter = name, letter
        self.upstream_tap = Tap(upstream_port, keep_sent=True)
        gateway_port, _ = bench.start_gateway(procs, self.upstream_tap.port, ACCESS_LOG="on",
                                              IDLE_TIMEOUT_SECONDS=10, REQUEST_HEAD_TIMEOUT_SECONDS=5)
        self.gateway_log = LogFile(os.path.join(bench.WORK, f"xi-gateway-{gateway_port}.log"))
        self.gateway_log.new_lines()  # the start-up line
        self.front_tap = None
        self.front_log = None
        # Every marker the front proxy sent the gateway (straight: every marker an attempt allows).
        self.sent_markers = set()
        if name == "direct":
            self.port = gateway_port
            return
        self.front_tap = Tap(gateway_port)
        self.port = free_port()
        if name == "nginx":
            conf = os.path.join(bench.WORK, "nginx-desync.conf")
            with open(conf, "w") as f:
                f.write(NGINX.format(dir=bench.WORK, tap=self.front_tap.port, port=self.port))
            procs.start("nginx-desync", ["nginx", "-p", bench.WORK, "-c", conf, "-g", "daemon off;"])
            self.front_log = LogFile(os.path.join(bench.WORK, "nginx-access.log"))
        else:
            conf = os.path.join(bench.WORK, "haproxy-desync.cfg")
            with open(conf, "w") as f:
                f.write(HAPROXY.format(tap=self.front_tap.port, port=self.port))
            procs.start("haproxy-desync", ["haproxy", "-f", conf, "-db"])
            self.front_log = LogFile(os.path.join(bench.WORK, "haproxy-desync.log"))
        wait_for_port(self.port)

    def quiet_state(self):
        state = [self.gateway_log.size(), self.upstream_tap.snapshot()]
        if self.front_tap:
            state += [self.front_log.size(), self.front_tap.snapshot()]
        return state

    def settle(self, least=0.3, quiet=0.3, cap=3.0):
        """Waits until logs and taps have been still for `quiet` seconds (the gateway writes its log every
        100 ms), at least `least` seconds in all, at most `cap`."""
        started = time.monotonic()
        state, since = self.quiet_state(), started
        while time.monotonic() - started < cap:
            time.sleep(0.05)
            now_state = self.quiet_state()
            if now_state != state:
                state, since = now_state, time.monotonic()
            elif time.monotonic() - since >= quiet and time.monotonic() - started >= least:
                return


Row = collections.namedtuple("Row", "attempt lane front_status gateway_saw verdict failed")


def short_roles(markers, index):
    """`A S VB` for the markers of attempt `index` (others named in full)."""
    out = []
    for marker in markers:
        role, number = marker.split("-")[0], int(marker.split("-")[1][1:])
        name = ROLE_SHORT[role] if number == index else marker
        if name not in out:
            out.append(name)
    return " ".join(out) or "-"


def subsequence(received, allowed):
    it = iter(allowed)
    return all(any(marker == candidate for candidate in it) for marker in received)


def check_client(client, allowed, label, failures):
    """Every answer's markers were asked for on this connection, in the order asked."""
    received = []
    for answer in client.stream.answers:
        for marker in dict.fromkeys(answer.markers):
            if marker not in allowed:
                failures.append(f"{label} got the answer for {marker}")
        if answer.markers and answer.markers[0] in allowed:
            received.append(answer.markers[0])
    if not subsequence(received, allowed):
        failures.append(f"{label}'s answers do not follow its requests: {' '.join(received)}")


def run_attempt(lane, index, attempt):
    roles = {"A": "ATTACK", "S": "SMUGGLED", "P": "PIPED", "VA": "VICTIMA", "VB": "VICTIMB"}
    m = {key: f"{role}-{lane.letter}{index:02d}" for key, role in roles.items()}
    before_answers = lane.front_tap.snapshot()[0] if lane.front_tap else 0
    before_sent = lane.upstream_tap.snapshot()[1]
    built = attempt.build(m)
    pieces = built if isinstance(built, list) else [built]
    waits = attempt.waits or ()
    attack = Client(lane.port)
    victim_b = None
    try:
        for number, piece in enumerate(pieces):
            attack.send(piece.encode("latin-1"))
            read_answers([attack], first=waits[number] if number < len(waits) else FIRST)
        attack_answers = list(attack.stream.answers)
        attack_closed = attack.closed
        victim_b = Client(lane.port)
        victim_b.send(get(m["VB"]).encode())
        attack.send(get(m["VA"]).encode())
        read_answers([attack, victim_b], first=1.5)
    finally:
        attack.close()
        if victim_b:
            victim_b.close()
    lane.settle()

    failures = []
    gateway_lines = lane.gateway_log.new_lines()
    gateway_markers = access_markers(gateway_lines)
    with lane.upstream_tap.lock:
        upstream_markers = request_markers(lane.upstream_tap.sent[before_sent:])
    front_status = statuses(attack_answers) + (" close" if attack_closed else "")

    if not any(m["VB"] in a.markers for a in victim_b.stream.answers):
        failures.append(f"victim B got no answer of its own ({statuses(victim_b.stream.answers)})")

    if lane.front_tap is None:
        allowed_attack = [x for x in markers_in(attack.sent) if x != m["S"] or attempt.s_next]
        check_client(attack, allowed_attack, "attack connection", failures)
        check_client(victim_b, [m["VB"]], "victim B", failures)
        for marker in dict.fromkeys(gateway_markers + upstream_markers):
            if marker not in allowed_attack + [m["VB"]]:
                failures.append(f"gateway answered {marker}")
        lane.sent_markers.update(allowed_attack + [m["VB"]])
        answered = len(attack.stream.answers) + len(victim_b.stream.answers)
        saw = f"{answered} answered; log {short_roles(gateway_markers, index)}"
        got = statuses(attack_answers)
        if failures:
            verdict = "FAIL: " + "; ".join(failures)
        elif re.fullmatch(attempt.direct, got):
            verdict = "pass"
        else:
            verdict = f"FAIL: answered {got}, a strict reader answers {attempt.direct}"
        return Row(attempt.name, lane.name, front_status, saw, verdict, verdict.startswith("FAIL"))

    front = [r for r in (parse_front_line(lane.name, line) for line in lane.front_log.new_lines()) if r]
    answers = lane.front_tap.answers[before_answers:]
    forwarded = sum(r.forwarded for r in front)
    if len(answers) > forwarded:
        # A front proxy logs a request when it ends: wait for late lines before calling it a failure.
        deadline = time.monotonic() + 6
        while time.monotonic() < deadline and len(answers) > forwarded:
            time.sleep(0.25)
            front += [r for r in (parse_front_line(lane.name, line) for line in lane.front_log.new_lines()) if r]
            forwarded = sum(r.forwarded for r in front)
            answers = lane.front_tap.answers[before_answers:]
    front_markers = [x for r in front for x in r.markers]
    lane.sent_markers.update(front_markers)
    for client, label in ((attack, "attack connection"), (victim_b, "victim B")):
        allowed = [x for r in front if r.client_port == client.port for x in r.markers[:1]]
        check_client(client, allowed, label, failures)
    for marker in dict.fromkeys(gateway_markers + upstream_markers):
        if marker not in front_markers:
            failures.append(f"gateway answered {marker}, which {lane.name} never sent")
    if len(answers) > forwarded:
        failures.append(f"gateway wrote {len(answers)} answers, {lane.name} forwarded {forwarded} requests")
    notes = []
    if m["S"] in front_markers and not attempt.s_next:
        notes.append(f"{lane.name} itself read the smuggled request as a request")
    saw = (f"{len(answers)} answered ({statuses(answers)}) of {forwarded} sent; "
           f"log {short_roles(gateway_markers, index)}")
    verdict = ("FAIL: " + "; ".join(failures)) if failures else "pass" + (f" ({'; '.join(notes)})" if notes else "")
    return Row(attempt.name, lane.name, front_status, saw, verdict, bool(failures))


def run_lane(lane, attempts, rows, deadline):
    for index, attempt in attempts:
        if time.time() > deadline:
            rows[(index, lane.name)] = Row(attempt.name, lane.name, "-", "-", "FAIL: not run (time budget)", True)
            continue
        try:
            rows[(index, lane.name)] = run_attempt(lane, index, attempt)
        except Exception as error:  # one attempt's trouble is its row's failure, not the run's
            rows[(index, lane.name)] = Row(attempt.name, lane.name, "-", "-", f"FAIL: {type(error).__name__}: {error}",
                                           True)


def final_sweep(lanes, rows):
    """After the gateways stopped (their last log lines written): every marker in a gateway's log is one its
    front proxy sent (or, straight, one the attempt allows)."""
    for lane in lanes:
        if lane.front_log:
            lane.sent_markers.update(x for line in lane.front_log.new_lines()
                                     for r in [parse_front_line(lane.name, line)] if r for x in r.markers)
        for marker in dict.fromkeys(access_markers(lane.gateway_log.new_lines())):
            index = int(marker.split("-")[1][1:])
            row = rows.get((index, lane.name))
            if row and marker not in lane.sent_markers:
                rows[(index, lane.name)] = row._replace(verdict=f"FAIL: gateway answered {marker} (late log line)",
                                                        failed=True)


def interrupted(number, _frame):
    raise KeyboardInterrupt(f"signal {number}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bin-dir", default=os.path.join(ROOT, ".build", "release"))
    parser.add_argument("--only", default="", help="comma-separated attempt names")
    parser.add_argument("--lanes", default="nginx,haproxy,direct")
    args = parser.parse_args()
    for tool in ("nginx", "haproxy"):
        if not shutil.which(tool):
            sys.exit(f"desync: {tool} is missing (make desync installs it)")
    for product in ("xi-gateway", "xi-fake-upstream"):
        if not os.path.exists(os.path.join(args.bin_dir, product)):
            sys.exit(f"desync: {os.path.join(args.bin_dir, product)} is missing (make desync builds it)")
    # SIGTERM and SIGHUP end the run like Ctrl-C: through the `finally` that stops everything.
    for number in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(number, interrupted)
    bench.BIN = args.bin_dir
    bench.WORK = tempfile.mkdtemp(prefix="xi-desync-")
    os.chmod(bench.WORK, 0o755)  # nginx's workers run as another user
    bench.CLEANUP = [bench.WORK]
    if not set(args.lanes.split(",")) <= {"nginx", "haproxy", "direct"}:
        sys.exit(f"desync: --lanes takes nginx, haproxy and direct, got {args.lanes}")
    wanted = set(filter(None, args.only.split(",")))
    unknown = wanted - {a.name for a in ATTEMPTS}
    if unknown:
        sys.exit(f"desync: no attempt named {', '.join(sorted(unknown))}")
    attempts = [(i, a) for i, a in enumerate(ATTEMPTS) if not wanted or a.name in wanted]
    started = time.time()
    procs = bench.Processes()
    lanes, taps, rows = [], [], {}
    try:
        upstream = bench.start_fake(procs, latency_ms=0)
        letters = {"nginx": "n", "haproxy": "h", "direct": "d"}
        for name in args.lanes.split(","):
            lane = Lane(procs, name, letters[name], upstream)
            lanes.append(lane)
            taps += [t for t in (lane.upstream_tap, lane.front_tap) if t]
        deadline = started + BUDGET_SECONDS
        threads = [threading.Thread(target=run_lane, args=(lane, attempts, rows, deadline), daemon=True)
                   for lane in lanes]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(max(1, deadline + 10 - time.time()))
        procs.stop_all()
        final_sweep(lanes, rows)
    except KeyboardInterrupt as interruption:
        sys.exit(f"desync: stopped by {interruption or 'Ctrl-C'}; everything started was stopped")
    except Exception:
        for log in sorted(os.listdir(bench.WORK)):
            if log.endswith(".log"):
                with open(os.path.join(bench.WORK, log), errors="replace") as f:
                    print(f"--- {log}\n{f.read()[-1500:]}", file=sys.stderr)
        raise
    finally:
        procs.stop_all()
        for tap in taps:
            tap.stop()
        shutil.rmtree(bench.WORK, ignore_errors=True)

    table = [("attempt", "front", "front status", "gateway saw", "verdict")]
    for index, attempt in attempts:
        for lane in lanes:
            row = rows.get((index, lane.name)) or Row(attempt.name, lane.name, "-", "-", "FAIL: no result", True)
            table.append((row.attempt, row.lane, row.front_status, row.gateway_saw, row.verdict))
    widths = [max(len(r[i]) for r in table) for i in range(4)]
    print(f"xi-gateway desync check, {len(attempts)} attempts x {len(lanes)} lanes "
          f"({', '.join(lane.name for lane in lanes)}), loopback only, {time.time() - started:.0f} s")
    for r in table:
        print(" | ".join(c.ljust(w) for c, w in zip(r[:4], widths)) + " | " + r[4])
    all_rows = [rows.get((i, lane.name)) for i, _ in attempts for lane in lanes]
    failed = sum(1 for r in all_rows if r is None or r.failed)
    print(f"{len(all_rows) - failed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
