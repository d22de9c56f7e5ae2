#!/usr/bin/env python3
"""Connection storms (issue 21): kvserver and Debian's redis-server side by side.

For each count, and for each server in alternating rounds, one client opens that many
connections one after another as fast as it can and keeps them open. The table reports the
wall time of the burst, how many times the kernel found the server's accept queue full
(TcpExt ListenOverflows and ListenDrops, from /proc/net/netstat, plus the SYNs the client had to
resend), the server's RSS growth per connection, and the median and worst PING round trip of a
fresh client with all of them open.

  python3 benches/connstorm.py                     # 8,000 and 19,500, 3 rounds
  python3 benches/connstorm.py --counts 3000 --rounds 5
  python3 benches/connstorm.py --churn             # also a new connection per request at
                                                   # -c 20 / 200: redis-benchmark -k 0 and
                                                   # kvbench --reconnect

The counters are machine-wide: run it on a quiet machine. Needs redis-server (and for
--churn redis-benchmark) on PATH and `cargo build --release -p kvserver` (or KVSERVER_BIN).
The file-descriptor limit is raised to the hard limit; each count needs that many descriptors
in this process and in the server.
"""
import argparse
import os
import resource
import socket
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from compare import KVBENCH, KVSERVER, Servers, rss_bytes  # noqa: E402  (same directory)


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time the process has used."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tcp_counters() -> dict:
    """TcpExt ListenOverflows, ListenDrops and TCPSynRetrans, machine-wide."""
    wanted = ("ListenOverflows", "ListenDrops", "TCPSynRetrans")
    with open("/proc/net/netstat") as f:
        lines = f.read().splitlines()
    for names, values in zip(lines[::2], lines[1::2]):
        if names.startswith("TcpExt:"):
            row = dict(zip(names.split()[1:], values.split()[1:]))
            return {name: int(row.get(name, 0)) for name in wanted}
    return {name: 0 for name in wanted}


def ping_times(port: int, count: int) -> list:
    """Round trips (ms) of `count` PINGs on a fresh connection."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    times = []
    for _ in range(count):
        started = time.perf_counter()
        s.sendall(b"*1\r\n$4\r\nPING\r\n")
        got = b""
        while not got.endswith(b"\r\n"):
            chunk = s.recv(64)
            if not chunk:
                raise RuntimeError("server closed the PING connection")
            got += chunk
        times.append((time.perf_counter() - started) * 1000)
    s.close()
    return times


# Each burst connects from a loopback address of its own, so that the ports an earlier burst
# left in TIME_WAIT do not slow this one's connects down (a client-side cost).
SOURCES = iter(f"127.1.{i // 250}.{i % 250 + 1}" for i in range(100_000))
IP_BIND_ADDRESS_NO_PORT = getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24)


def storm(port: int, pid: int, count: int) -> dict:
    """Opens `count` connections one after another; measures while they are all open."""
    time.sleep(0.3)
    before_rss = rss_bytes(pid)
    before = tcp_counters()
    sockets = []
    started = time.perf_counter()
    for i in range(count):
        # A new source address every 4,000 connections: the kernel's search for a free
        # port grows with the ports a source address already uses.
        if i % 4000 == 0:
            source = next(SOURCES)
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
        s.bind((source, 0))
        s.connect(("127.0.0.1", port))
        sockets.append(s)
    # Every connection has been served once the server answers a PING on each of the last
    # few (a connect returns once the kernel queued it, not once the server took it).
    for s in sockets[-20:]:
        s.sendall(b"*1\r\n$4\r\nPING\r\n")
        if not s.recv(64).startswith(b"+PONG"):
            raise RuntimeError("a connection of the burst was not served")
    elapsed = time.perf_counter() - started
    after = tcp_counters()
    time.sleep(0.5)
    rss = rss_bytes(pid)
    pings = ping_times(port, 200)
    for s in sockets:
        s.close()
    return {
        "seconds": elapsed,
        "overflows": after["ListenOverflows"] - before["ListenOverflows"],
        "drops": after["ListenDrops"] - before["ListenDrops"],
        "syn_retrans": after["TCPSynRetrans"] - before["TCPSynRetrans"],
        "bytes_per_conn": (rss - before_rss) / count,
        "ping_p50": statistics.median(pings),
        "ping_max": max(pings),
    }


def churn(port: int, clients: int, requests: int, client: str) -> float:
    """Requests per second with a new connection per request: redis-benchmark -k 0, or
    kvbench --reconnect (less client CPU per connection)."""
    if client == "kvbench":
        command = [KVBENCH, "-p", str(port), "-t", "ping", "-c", str(clients),
                   "-n", str(requests), "--reconnect", "--csv"]
        row = "ping"
    else:
        command = ["redis-benchmark", "-p", str(port), "-t", "ping_mbulk", "-c",
                   str(clients), "-n", str(requests), "-k", "0", "--csv"]
        row = "PING_MBULK"
    out = subprocess.run(command, capture_output=True, text=True, timeout=600).stdout
    lines = out.splitlines()
    header = [f.strip('"') for f in lines[0].split(",")] if lines else []
    rps_column = header.index("rps") if "rps" in header else 1
    for line in lines[1:]:
        fields = [f.strip('"') for f in line.split(",")]
        if fields and fields[0].lower().startswith(row.lower()):
            return float(fields[rps_column])
    raise RuntimeError(f"no {row} row in {command[0]}'s output: {out!r}")


def servers(extra: list) -> Servers:
    """Servers, retried: a free port chosen for one may be taken before it binds it."""
    for attempt in range(3):
        try:
            return Servers(None, extra=extra)
        except RuntimeError:
            if attempt == 2:
                raise
            time.sleep(1)
    raise AssertionError("unreachable")


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    # 19,500: a process here may hold 20,000 descriptors, and the client holds them all.
    parser.add_argument("--counts", default="8000,19500")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--churn", action="store_true",
                        help="also measure redis-benchmark -k 0 at -c 20 and -c 200")
    parser.add_argument("--churn-requests", type=int, default=20000)
    args = parser.parse_args()
    counts = [int(c) for c in args.counts.split(",") if c]
    # This process and each server need a descriptor per connection (the servers inherit
    # the limit); root may raise the hard limit too.
    needed = max(counts, default=0) + 200
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(needed, hard), max(needed, hard)))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        if hard < needed:
            sys.exit(f"the descriptor limit {hard} is below {needed}: raise it (ulimit -Hn)")
    with open("/proc/sys/net/core/somaxconn") as f:
        print(f"net.core.somaxconn = {f.read().strip()}; both servers ask for a backlog of 511")
    # Bursts come from 127.1.x.y (see SOURCES): loopback, but Redis 7.0 serves only
    # 127.0.0.1 and ::1 in protected mode. Both servers listen on 127.0.0.1 only anyway.
    limit = ["--maxclients", str(max(counts, default=10000) + 100), "--protected-mode", "no"]
    print(f"fresh servers each round, kvstore={KVSERVER}")
    results = {}
    churn_clients = ("redis-benchmark", "kvbench")
    for rnd in range(args.rounds):
        for count in counts:
            # Fresh servers for each burst: bytes per connection from a cold start.
            with servers(["--appendonly", "no"] + limit) as running:
                pids = running.pids()
                order = running.names if rnd % 2 == 0 else running.names[::-1]
                for name in order:
                    row = storm(running.ports[name], pids[name], count)
                    results.setdefault((count, name), []).append(row)
                    print(f"round {rnd + 1} {count:>6} {name:<8} {row['seconds']:.2f} s "
                          f"overflows {row['overflows']} drops {row['drops']} "
                          f"syn-retrans {row['syn_retrans']} "
                          f"{row['bytes_per_conn']:.0f} B/conn "
                          f"ping p50 {row['ping_p50']:.3f} ms max {row['ping_max']:.3f} ms",
                          flush=True)
                    time.sleep(1)
        if args.churn:
            with servers(["--appendonly", "no"] + limit) as running:
                order = running.names if rnd % 2 == 0 else running.names[::-1]
                for client in churn_clients:
                    for clients in (20, 200):
                        for name in order:
                            pid = running.pids()[name]
                            cpu_before = cpu_seconds(pid)
                            rps = churn(running.ports[name], clients, args.churn_requests,
                                        client)
                            # The server's CPU per connection: on one machine the client
                            # and the kernel's loopback set the rate, not the server.
                            cpu_us = (cpu_seconds(pid) - cpu_before) * 1e6 / args.churn_requests
                            key = (f"churn-{client}-c{clients}", name)
                            results.setdefault(key, []).append(rps)
                            results.setdefault(key + ("cpu",), []).append(cpu_us)
                            print(f"round {rnd + 1} churn {client} -c {clients} {name:<8} "
                                  f"{rps:.0f} req/s, server CPU {cpu_us:.1f} us/conn",
                                  flush=True)
    print()
    print(f"medians over {args.rounds} rounds")
    print("| connections | server | wall s | overflows | syn resent | bytes/conn "
          "| PING p50 ms | PING max ms |")
    print("|---|---|---|---|---|---|---|---|")
    for count in counts:
        for name in ("redis", "kvstore"):
            rows = results[(count, name)]
            med = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
            print(f"| {count} | {name} | {med['seconds']:.2f} | {med['overflows']:.0f} "
                  f"| {med['syn_retrans']:.0f} | {med['bytes_per_conn']:.0f} "
                  f"| {med['ping_p50']:.3f} | {med['ping_max']:.3f} |")
    if args.churn:
        for client in churn_clients:
            for clients in (20, 200):
                redis = statistics.median(results[(f"churn-{client}-c{clients}", "redis")])
                kv = statistics.median(results[(f"churn-{client}-c{clients}", "kvstore")])
                redis_cpu = statistics.median(
                    results[(f"churn-{client}-c{clients}", "redis", "cpu")])
                kv_cpu = statistics.median(
                    results[(f"churn-{client}-c{clients}", "kvstore", "cpu")])
                print(f"churn ({client}, new connection per request) -c {clients}: redis "
                      f"{redis:.0f} req/s, kvstore {kv:.0f} req/s, ratio {kv / redis:.2f}; "
                      f"server CPU per connection redis {redis_cpu:.1f} us, kvstore "
                      f"{kv_cpu:.1f} us, ratio {redis_cpu / kv_cpu:.2f}")


if __name__ == "__main__":
    main()
