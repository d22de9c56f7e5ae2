#!/usr/bin/env python3
"""Side-by-side comparison of kvserver and Debian's redis-server on this machine.

Both servers run at the same time on loopback; every measurement alternates between them
with identical client settings, and the table reports medians over the rounds and the
ratio kvserver / redis. Machines are shared and noisy: look at ratios, not absolutes.

  python3 benches/compare.py throughput --pinned     # both servers on core 1, client on core 0
  python3 benches/compare.py throughput              # unpinned: kvserver may use both cores
  python3 benches/compare.py memory                  # RSS after 1M keys, and after deleting them

Needs: redis-server, redis-benchmark, redis-cli on PATH; `cargo build --release -p kvserver`.
"""
import argparse
import csv
import io
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KVSERVER = os.path.join(ROOT, "target", "release", "kvserver")
TESTS = "ping,set,get,incr,mset"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(port: int) -> None:
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            out = subprocess.run(["redis-cli", "-p", str(port), "ping"], capture_output=True,
                                 text=True, timeout=2).stdout
            if "PONG" in out:
                return
        except subprocess.TimeoutExpired:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"server on port {port} did not start")


class Servers:
    """Starts redis-server and kvserver (optionally pinned) and stops them on exit."""

    def __init__(self, pin: str | None):
        self.ports = {"redis": free_port(), "kvstore": free_port()}
        prefix = ["taskset", "-c", pin] if pin else []
        self.procs = [
            subprocess.Popen(prefix + ["redis-server", "--port", str(self.ports["redis"]),
                                       "--save", "", "--appendonly", "no"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
            subprocess.Popen(prefix + [KVSERVER, "--port", str(self.ports["kvstore"]),
                                       "--loglevel", "warning"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
        ]
        for port in self.ports.values():
            wait_ready(port)

    def pids(self) -> dict:
        return {"redis": self.procs[0].pid, "kvstore": self.procs[1].pid}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


def run_benchmark(port: int, pipeline: int, requests: int, clients: int, client_pin: str | None):
    cmd = ["redis-benchmark", "-p", str(port), "-t", TESTS, "-n", str(requests),
           "-c", str(clients), "-P", str(pipeline), "--csv"]
    if client_pin:
        cmd = ["taskset", "-c", client_pin] + cmd
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=1800).stdout
    results = {}
    for row in csv.DictReader(io.StringIO(out)):
        results[row["test"]] = (float(row["rps"]), float(row["p99_latency_ms"]))
    return results


def throughput(args) -> None:
    pin = "1" if args.pinned else None
    client_pin = "0" if args.pinned else None
    with Servers(pin) as servers:
        for pipeline in args.pipelines:
            samples = {}  # (server, test) -> [(rps, p99)]
            for _ in range(args.rounds):
                for name in ("redis", "kvstore"):
                    results = run_benchmark(servers.ports[name], pipeline, args.requests,
                                            args.clients, client_pin)
                    for test, value in results.items():
                        samples.setdefault((name, test), []).append(value)
            mode = "pinned to one core" if args.pinned else "unpinned"
            print(f"\n### -P {pipeline}, -c {args.clients}, -n {args.requests}, {mode}, "
                  f"median of {args.rounds} alternating rounds\n")
            print("| test | redis rps | kvstore rps | ratio | redis p99 ms | kvstore p99 ms |")
            print("| --- | ---: | ---: | ---: | ---: | ---: |")
            tests = [t for (n, t) in samples if n == "redis"]
            for test in tests:
                r = samples[("redis", test)]
                k = samples.get(("kvstore", test), [(0.0, 0.0)])
                r_rps, k_rps = statistics.median(x[0] for x in r), statistics.median(x[0] for x in k)
                r_p99, k_p99 = statistics.median(x[1] for x in r), statistics.median(x[1] for x in k)
                ratio = k_rps / r_rps if r_rps else float("nan")
                print(f"| {test} | {r_rps:,.0f} | {k_rps:,.0f} | {ratio:.2f} | {r_p99:.3f} | {k_p99:.3f} |")


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def pipe_load(port: int, payload: bytes) -> None:
    out = subprocess.run(["redis-cli", "-p", str(port), "--pipe"], input=payload,
                         capture_output=True, timeout=600).stdout.decode()
    if "errors: 0" not in out:
        raise RuntimeError(f"redis-cli --pipe reported errors: {out}")


def memory(args) -> None:
    value = b"x" * 32
    sets, dels = [], []
    for i in range(args.keys):
        key = b"key:%012d" % i
        sets.append(b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$32\r\n%s\r\n" % (len(key), key, value))
        dels.append(b"*2\r\n$3\r\nDEL\r\n$%d\r\n%s\r\n" % (len(key), key))
    sets, dels = b"".join(sets), b"".join(dels)
    with Servers(None) as servers:
        pids = servers.pids()
        rows = []
        for name in ("redis", "kvstore"):
            port = servers.ports[name]
            empty = rss_bytes(pids[name])
            pipe_load(port, sets)
            time.sleep(1)
            loaded = rss_bytes(pids[name])
            pipe_load(port, dels)
            time.sleep(args.settle)
            deleted = rss_bytes(pids[name])
            rows.append((name, empty, loaded, deleted))
        print(f"\n### RSS, {args.keys:,} keys key:NNNNNNNNNNNN with 32-byte values\n")
        print("| server | empty MB | loaded MB | after DEL of all keys MB |")
        print("| --- | ---: | ---: | ---: |")
        for name, empty, loaded, deleted in rows:
            print(f"| {name} | {empty / 1e6:.1f} | {loaded / 1e6:.1f} | {deleted / 1e6:.1f} |")
        ratio = rows[1][2] / rows[0][2]
        print(f"\nloaded RSS ratio kvstore / redis: {ratio:.2f}")


def main() -> None:
    for tool in ("redis-server", "redis-benchmark", "redis-cli", "taskset"):
        if not shutil.which(tool):
            sys.exit(f"{tool} not found (apt-get install redis-server redis-tools util-linux)")
    if not os.path.exists(KVSERVER):
        sys.exit("build kvserver first: cargo build --release -p kvserver")
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="mode", required=True)
    t = sub.add_parser("throughput")
    t.add_argument("--pinned", action="store_true", help="servers on core 1, client on core 0")
    t.add_argument("--requests", type=int, default=1_000_000)
    t.add_argument("--clients", type=int, default=50)
    t.add_argument("--rounds", type=int, default=3)
    t.add_argument("--pipelines", type=int, nargs="+", default=[1, 16])
    m = sub.add_parser("memory")
    m.add_argument("--keys", type=int, default=1_000_000)
    m.add_argument("--settle", type=float, default=3.0, help="seconds to wait after deleting")
    args = parser.parse_args()
    throughput(args) if args.mode == "throughput" else memory(args)


if __name__ == "__main__":
    main()
