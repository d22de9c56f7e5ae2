#!/usr/bin/env python3
"""A normal client's latency while hostile clients abuse the server (issue 19, section 4).

For each abuse, and for kvserver and Debian's redis-server side by side (alternating), a
well-behaved client opens a connection and sends SET/GET pairs one at a time; the table
reports its p50, p99 and worst round trip, and each server's RSS at the end of the abuse.

  python3 benches/abuse.py                 # every abuse, 2 rounds
  python3 benches/abuse.py --abuse slowloris --rounds 3

Abuses:
  none       baseline
  idle       5,000 idle connections
  slowloris  300 connections each sending a request one byte every 5 ms
  half-open  2,000 connections each leaving a request cut off mid-way
  no-read    10 connections each pipelining 400 GETs of a 256 KB value and never reading
             (Redis's default `client-output-buffer-limit normal 0 0 0` lets it buffer up
             to 1 GB; kvserver stops reading a client whose replies are not read)

Needs redis-server on PATH and `cargo build --release -p kvserver` (or KVSERVER_BIN).
Bounded: every abuse stops after the measurement (a few seconds each).
"""
import argparse
import os
import resource
import socket
import statistics
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from compare import Servers  # noqa: E402  (same directory)


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def command(*args: bytes) -> bytes:
    out = b"*%d\r\n" % len(args)
    for a in args:
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out


def read_reply(f) -> bytes:
    line = f.readline()
    if line[:1] == b"$":
        n = int(line[1:-2])
        if n >= 0:
            f.read(n + 2)
    return line


def normal_client(port: int, pairs: int) -> list:
    """Round-trip times (ms) of `pairs` SET+GET pairs, one request at a time."""
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    f = s.makefile("rb")
    times = []
    for i in range(pairs):
        for req in (command(b"SET", b"normal:%d" % (i % 100), b"v" * 32),
                    command(b"GET", b"normal:%d" % (i % 100))):
            started = time.perf_counter()
            s.sendall(req)
            read_reply(f)
            times.append((time.perf_counter() - started) * 1000)
    s.close()
    return times


class Abuse:
    """Runs one abuse against `port` in background threads until stopped."""

    def __init__(self, kind: str, port: int):
        self.kind, self.port = kind, port
        self.stop = threading.Event()
        self.sockets = []
        self.threads = []

    def connect(self, count: int) -> list:
        made = []
        for _ in range(count):
            try:
                s = socket.create_connection(("127.0.0.1", self.port), timeout=5)
            except OSError:
                break
            made.append(s)
        self.sockets += made
        return made

    def start(self):
        if self.kind == "idle":
            self.connect(5000)
        elif self.kind == "half-open":
            for s in self.connect(2000):
                s.sendall(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$100\r\nabc")
        elif self.kind == "slowloris":
            socks = self.connect(300)
            request = command(b"SET", b"slow", b"x" * 64)

            def drip():
                pos = 0
                while not self.stop.is_set():
                    byte = request[pos % len(request):pos % len(request) + 1]
                    for s in socks:
                        try:
                            s.send(byte)
                        except OSError:
                            pass
                    pos += 1
                    time.sleep(0.005)
            self.threads.append(threading.Thread(target=drip, daemon=True))
        elif self.kind == "no-read":
            setup = socket.create_connection(("127.0.0.1", self.port))
            setup.sendall(command(b"SET", b"big", b"x" * (256 << 10)))
            setup.recv(100)
            setup.close()
            socks = self.connect(10)
            requests = command(b"GET", b"big") * 400

            def flood(s):
                s.setblocking(False)
                sent = 0
                while not self.stop.is_set() and sent < len(requests):
                    try:
                        sent += s.send(requests[sent:])
                    except BlockingIOError:
                        time.sleep(0.01)
                    except OSError:
                        return
            self.threads += [threading.Thread(target=flood, args=(s,), daemon=True)
                             for s in socks]
        for t in self.threads:
            t.start()
        time.sleep(0.5)

    def finish(self):
        self.stop.set()
        for t in self.threads:
            t.join(timeout=5)
        for s in self.sockets:
            try:
                s.close()
            except OSError:
                pass
        time.sleep(0.5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--abuse", default="none,idle,slowloris,half-open,no-read")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--pairs", type=int, default=2000, help="SET+GET pairs per measurement")
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 65536), hard))
    with Servers(None, extra=["--appendonly", "no", "--maxclients", "20000"]) as servers:
        pids = servers.pids()
        print(f"\n### A normal client's SET/GET round trips (ms) during each abuse, "
              f"{args.pairs * 2} requests, median of {args.rounds} alternating rounds\n")
        print("| abuse | redis p50 | kvstore p50 | redis p99 | kvstore p99 | redis max "
              "| kvstore max | redis RSS MB | kvstore RSS MB |")
        print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        for kind in args.abuse.split(","):
            samples = {name: [] for name in ("redis", "kvstore")}
            for _ in range(args.rounds):
                for name in ("redis", "kvstore"):
                    abuse = Abuse(kind, servers.ports[name])
                    abuse.start()
                    try:
                        times = sorted(normal_client(servers.ports[name], args.pairs))
                    except OSError as err:
                        print(f"{name} during {kind}: the normal client failed: {err}")
                        times = [float("nan")]
                    rss = rss_kb(pids[name]) / 1024
                    abuse.finish()
                    samples[name].append((times[len(times) // 2],
                                          times[int(len(times) * 0.99)], times[-1], rss))
            med = {name: [statistics.median(s[i] for s in samples[name]) for i in range(4)]
                   for name in samples}
            r, k = med["redis"], med["kvstore"]
            print(f"| {kind} | {r[0]:.3f} | {k[0]:.3f} | {r[1]:.3f} | {k[1]:.3f} | "
                  f"{r[2]:.2f} | {k[2]:.2f} | {r[3]:.0f} | {k[3]:.0f} |", flush=True)


if __name__ == "__main__":
    main()
