#!/usr/bin/env python3
"""Side-by-side comparison of kvserver and Debian's redis-server on this machine.

Both servers run at the same time on loopback; every measurement alternates between them
with identical client settings, and the table reports medians over the rounds and the
ratio kvserver / redis. Machines are shared and noisy: look at ratios, not absolutes.

  python3 benches/compare.py throughput --pinned     # both servers on core 1, client on core 0
  python3 benches/compare.py throughput              # unpinned: kvserver may use both cores
  python3 benches/compare.py throughput --kvstore-args="--threads 2"   # other kvserver flags
  python3 benches/compare.py throughput --pinned --client kvbench     # a cheaper client
  python3 benches/compare.py throughput --pinned --neighbour 19  # a `nice 19` busy loop
                                                     # sharing the servers' core
  python3 benches/compare.py throughput --pinned --acl-user "~key:* ~counter:* +@all -@dangerous"
                                                     # as an ACL user with these rules on both
                                                     # servers (the cost of permission checks)
  python3 benches/compare.py memory                  # RSS after 1M keys, and after deleting them
  python3 benches/compare.py persistence             # SET -P 16 with AOF off/everysec/always,
                                                     # recovery time, longest stall in BGSAVE
  python3 benches/compare.py throughput --pinned --tests collections
                                                     # the list, set, hash and sorted-set tests
  python3 benches/compare.py collection-memory       # RSS of big and of many small collections
  python3 benches/compare.py large                   # ZRANGE, ZRANK, LINDEX, SINTER, HGETALL on
                                                     # large collections
  python3 benches/compare.py transactions --pinned   # kvbench's multi (MULTI + 10 SETs + EXEC),
                                                     # evalsha (INCR+EXPIRE script) and cas
                                                     # (WATCH/GET/MULTI/SET/EXEC on 10 keys)
  python3 benches/compare.py pubsub --pinned         # kvbench's publish: 1, 100, 1000 subscribers
                                                     # on one channel; 1000 channels x 1; then
                                                     # delivery latency with both servers paced
                                                     # at 80% of the slower one's rate
  python3 benches/compare.py pubsub --servers redis  # one server only (e.g. before kvserver has
                                                     # SUBSCRIBE)
  python3 benches/compare.py pubsub-memory           # RSS over time, 10k subscribers, one of
                                                     # which never reads

Needs: redis-server, redis-benchmark, redis-cli on PATH; `cargo build --release -p kvserver`
(or KVSERVER_BIN=<path to a kvserver binary>, to measure another build); for `--client kvbench`,
`transactions`, `pubsub` and `pubsub-memory`, `cargo build --release -p kvcli` (kvbench).
"""
import argparse
import csv
import io
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# KVSERVER_BIN=<path> measures another build (e.g. the previous commit's, for before/after runs).
KVSERVER = os.environ.get("KVSERVER_BIN") or os.path.join(ROOT, "target", "release", "kvserver")
KVBENCH = os.path.join(ROOT, "target", "release", "kvbench")
TESTS = "ping,set,get,incr,mset"
# `--tests collections`: redis-benchmark's tests of the collection types (issue 16). Run one at a
# time in this order, so the pops find what the pushes left (the same on both servers).
COLLECTION_TESTS = ("lpush,rpush,lpop,rpop,sadd,hset,spop,zadd,zpopmin,"
                    "lrange_100,lrange_300,lrange_600")
# kvbench's tests under the row names redis-benchmark reports them as.
KVBENCH_ROWS = {"ping": "PING_MBULK", "set": "SET", "get": "GET", "incr": "INCR",
                "mset": "MSET (10 keys)"}
# `transactions`: kvbench's tests of issue 17, with what one request of each is.
TRANSACTION_TESTS = {
    "multi": "MULTI + 10 SET + EXEC",
    "evalsha": "EVALSHA INCR+EXPIRE",
    "cas": "WATCH/GET/MULTI/SET/EXEC",
}


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

    def __init__(self, pin: str | None, extra: list | None = None, dirs: dict | None = None,
                 kvstore_extra: list | None = None, names: tuple = ("redis", "kvstore")):
        self.names = tuple(names)
        self.ports = {name: free_port() for name in self.names}
        prefix = ["taskset", "-c", pin] if pin else []
        extra = extra or ["--appendonly", "no"]
        self.tmp = tempfile.TemporaryDirectory(prefix="kvcompare-")
        dirs = dirs or {}
        self.dirs = {name: dirs.get(name) or os.path.join(self.tmp.name, name)
                     for name in ("redis", "kvstore")}
        for d in self.dirs.values():
            os.makedirs(d, exist_ok=True)
        commands = {
            "redis": ["redis-server", "--port", str(self.ports.get("redis")),
                      "--save", "", "--dir", self.dirs["redis"]] + extra,
            "kvstore": [KVSERVER, "--port", str(self.ports.get("kvstore")),
                        "--loglevel", "warning", "--save", "",
                        "--dir", self.dirs["kvstore"]] + extra + (kvstore_extra or []),
        }
        self.procs = [subprocess.Popen(prefix + commands[name], stdout=subprocess.DEVNULL,
                                       stderr=subprocess.DEVNULL)
                      for name in self.names]
        try:
            for port in self.ports.values():
                wait_ready(port)
        except RuntimeError:
            # Not started (a port taken between choosing and binding it): none is left behind.
            self.__exit__()
            raise

    def pids(self) -> dict:
        return {name: proc.pid for name, proc in zip(self.names, self.procs)}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
        self.tmp.cleanup()


# `--acl-user`: redis-benchmark logs in as this user (created on both servers) when set.
BENCH_LOGIN: list[str] = []


def create_acl_user(port: int, rules: str) -> None:
    """Creates the user `bench` (password `bench`) with `rules` on the server at `port`."""
    subprocess.run(["redis-cli", "-p", str(port), "ACL", "SETUSER", "bench", "on", ">bench"]
                   + rules.split(), check=True, capture_output=True)


def run_benchmark(port: int, pipeline: int, requests: int, clients: int, client_pin: str | None,
                  tests: str = TESTS, keyspace: int | None = None):
    cmd = ["redis-benchmark", "-p", str(port), "-t", tests, "-n", str(requests),
           "-c", str(clients), "-P", str(pipeline), "--csv"] + BENCH_LOGIN
    if keyspace:
        cmd += ["-r", str(keyspace)]
    if client_pin:
        cmd = ["taskset", "-c", client_pin] + cmd
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=1800).stdout
    results = {}
    for row in csv.DictReader(io.StringIO(out)):
        results[row["test"]] = (float(row["rps"]), float(row["p99_latency_ms"]))
    return results


def run_kvbench(port: int, pipeline: int, requests: int, clients: int, client_pin: str | None,
                tests: str = TESTS):
    """As run_benchmark, with kvbench as the client: it spends less CPU per request than
    redis-benchmark, so where redis-benchmark saturates its core first, this measures the
    servers instead. kvbench's `ping` is PING_MBULK; it has no inline PING."""
    cmd = [KVBENCH, "-p", str(port), "-t", tests, "-n", str(requests),
           "-c", str(clients), "-P", str(pipeline), "--csv"]
    if client_pin:
        cmd = ["taskset", "-c", client_pin] + cmd
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=1800).stdout
    return {KVBENCH_ROWS.get(row["test"], row["test"]): (float(row["rps"]), float(row["p99_ms"]))
            for row in csv.DictReader(io.StringIO(out))}


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, all its threads included."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children_cpu_seconds() -> float:
    usage = os.times()
    return usage.children_user + usage.children_system


def measured_run(pid: int, port: int, pipeline: int, args, client_pin: str | None, test: str):
    """One redis-benchmark run of one test, with the CPU both sides spent on it.

    Returns {row: (rps, p99 ms, server CPU us per request, server busy, client busy)}; busy
    is CPU seconds over wall seconds (1.0 = one core). A client near 1.0 while the server
    is below it means the client, not the server, set the pace: compare CPU per request.
    """
    server_before, client_before = cpu_seconds(pid), children_cpu_seconds()
    started = time.perf_counter()
    client = run_kvbench if args.client == "kvbench" else run_benchmark
    results = client(port, pipeline, args.requests, args.clients, client_pin, tests=test)
    wall = time.perf_counter() - started
    server_cpu = cpu_seconds(pid) - server_before
    client_cpu = children_cpu_seconds() - client_before
    requests = args.requests * max(len(results), 1)
    return {row: (rps, p99, server_cpu * 1e6 / requests, server_cpu / wall, client_cpu / wall)
            for row, (rps, p99) in results.items()}


class Neighbour:
    """A busy loop at niceness `nice` (on core `pin` if given) for the life of the block:
    another process wanting the servers' core, as a batch job or a noisy neighbour would."""

    def __init__(self, nice: int | None, pin: str | None):
        self.proc = None
        if nice is not None:
            prefix = ["taskset", "-c", pin] if pin else []
            self.proc = subprocess.Popen(prefix + ["nice", "-n", str(nice), "sh", "-c",
                                                   "while :; do :; done"])
        self.started = time.perf_counter()

    def busy(self) -> float | None:
        """Cores the loop has used on average so far."""
        if self.proc is None:
            return None
        return cpu_seconds(self.proc.pid) / (time.perf_counter() - self.started)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()


def throughput(args) -> None:
    if args.tests == "collections":
        args.tests = COLLECTION_TESTS
    pin = "1" if args.pinned else None
    client_pin = "0" if args.pinned else None
    with Servers(pin, kvstore_extra=args.kvstore_args.split()) as servers, \
            Neighbour(args.neighbour, pin) as neighbour:
        pids = servers.pids()
        if args.acl_user:
            for port in servers.ports.values():
                create_acl_user(port, args.acl_user)
            BENCH_LOGIN[:] = ["--user", "bench", "-a", "bench"]
        for pipeline in args.pipelines:
            samples = {}  # (server, row) -> [(rps, p99, cpu us/request, server busy, client busy)]
            rows = []
            for _ in range(args.rounds):
                for test in args.tests.split(","):
                    for name in ("redis", "kvstore"):
                        results = measured_run(pids[name], servers.ports[name], pipeline, args,
                                               client_pin, test)
                        for row, value in results.items():
                            samples.setdefault((name, row), []).append(value)
                            if row not in rows:
                                rows.append(row)
            mode = "pinned to one core" if args.pinned else "unpinned"
            if args.kvstore_args:
                mode += f", kvserver {args.kvstore_args}"
            if args.acl_user:
                mode += f", as ACL user `{args.acl_user}`"
            if args.client == "kvbench":
                mode += ", client kvbench"
            if args.neighbour is not None:
                mode += f", a nice {args.neighbour} busy loop on {f'core {pin}' if pin else 'any core'}"
            print(f"\n### -P {pipeline}, -c {args.clients}, -n {args.requests}, {mode}, "
                  f"median of {args.rounds} alternating rounds\n")
            print("| test | redis rps | kvstore rps | ratio | redis p99 ms | kvstore p99 ms "
                  "| redis CPU us/req | kvstore CPU us/req | CPU ratio "
                  "| busy redis / client | busy kvstore / client |")
            print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
            for row in rows:
                med = {}
                for name in ("redis", "kvstore"):
                    values = samples.get((name, row), [(0.0,) * 5])
                    med[name] = [statistics.median(v[i] for v in values) for i in range(5)]
                r, k = med["redis"], med["kvstore"]
                ratio = k[0] / r[0] if r[0] else float("nan")
                # CPU time is counted in clock ticks (10 ms): a tiny run may show none.
                cpu_ratio = f"{k[2] / r[2]:.2f}" if r[2] else "n/a"
                print(f"| {row} | {r[0]:,.0f} | {k[0]:,.0f} | {ratio:.2f} | {r[1]:.3f} | "
                      f"{k[1]:.3f} | {r[2]:.2f} | {k[2]:.2f} | {cpu_ratio} | "
                      f"{r[3]:.2f} / {r[4]:.2f} | {k[3]:.2f} / {k[4]:.2f} |")
            print("\nCPU us/req: the server's user+system CPU per request (lower is better; "
                  "ratio kvstore / redis).\nbusy: CPU seconds per wall second (1.00 = one core "
                  "saturated); a client at ~1.00 means the client set the pace.")
            if neighbour.busy() is not None:
                print(f"The busy loop used {neighbour.busy():.2f} of a core on average so far.")


def run_kvbench_test(port: int, test: str, args, client_pin: str | None, keyspace: int,
                     pipeline: int) -> dict:
    """One kvbench run of one test, as its JSON result row (rps, p50_ms, p99_ms, errors,
    first_error, retries, ...). A run kvbench could not complete (server unreachable, broken
    connection) gives {"failure": its message} instead of an exception."""
    cmd = [KVBENCH, "-p", str(port), "-t", test, "-n", str(args.requests),
           "-c", str(args.clients), "-P", str(pipeline), "-r", str(keyspace), "--json"]
    if client_pin:
        cmd = ["taskset", "-c", client_pin] + cmd
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    try:
        return json.loads(proc.stdout)["results"][0]
    except (ValueError, KeyError, IndexError):
        message = proc.stderr.strip().splitlines()
        return {"failure": message[-1] if message else f"kvbench exited with {proc.returncode}"}


def transactions(args) -> None:
    """Issue 17's figures side by side: kvbench's multi, evalsha and cas tests against both
    servers, alternating, with medians of throughput (transactions, script calls, committed
    increments per second), p50/p99 and the servers' CPU per request. A server whose replies
    were errors (kvserver without scripting, say) gets no throughput: its error is printed."""
    pin = "1" if args.pinned else None
    client_pin = "0" if args.pinned else None
    tests = args.tests.split(",")
    for test in tests:
        if test not in TRANSACTION_TESTS:
            sys.exit(f"unknown test {test!r}: choose from {', '.join(TRANSACTION_TESTS)}")
    keyspaces = {test: args.cas_keys if test == "cas" else args.keyspace for test in tests}
    samples = {}  # (server, test) -> [result row with cpu_us added]
    with Servers(pin, kvstore_extra=args.kvstore_args.split()) as servers:
        pids = servers.pids()
        for _ in range(args.rounds):
            for test in tests:
                for name in ("redis", "kvstore"):
                    before = cpu_seconds(pids[name])
                    row = run_kvbench_test(servers.ports[name], test, args, client_pin,
                                           keyspaces[test], args.pipeline)
                    spent = cpu_seconds(pids[name]) - before
                    row["cpu_us"] = spent * 1e6 / row["requests"] if row.get("requests") else 0.0
                    samples.setdefault((name, test), []).append(row)
    mode = "pinned to one core" if args.pinned else "unpinned"
    if args.kvstore_args:
        mode += f", kvserver {args.kvstore_args}"
    print(f"\n### Transactions and scripts: kvbench -c {args.clients} -n {args.requests} "
          f"-P {args.pipeline} (cas: -P 1), {mode}, median of {args.rounds} alternating rounds\n")
    print("| test | keys | redis rps | kvstore rps | ratio | redis p50 ms | kvstore p50 ms "
          "| redis p99 ms | kvstore p99 ms | redis CPU us/req | kvstore CPU us/req "
          "| redis retries/req | kvstore retries/req |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: "
          "| ---: | ---: |")
    problems = []
    for test in tests:
        med = {}
        for name in ("redis", "kvstore"):
            rows = samples.get((name, test), [])
            failed = [row for row in rows if "failure" in row]
            erred = [row for row in rows if row.get("errors")]
            if failed:
                problems.append(f"{name} {test}: kvbench failed: {failed[0]['failure']}")
            for row in erred:
                problems.append(f"{name} {test}: {row['errors']:,} of {row['requests']:,} "
                                f"requests had error replies (first: {row.get('first_error')})")
                break
            if failed or erred or not rows:
                med[name] = None
                continue
            med[name] = {key: statistics.median(row[key] for row in rows)
                         for key in ("rps", "p50_ms", "p99_ms", "cpu_us")}
            med[name]["retries"] = statistics.median(row["retries"] / row["requests"]
                                                     for row in rows)
        cells = {}
        for name in ("redis", "kvstore"):
            m = med[name]
            cells[name] = (["errors"] * 5 if m is None else
                           [f"{m['rps']:,.0f}", f"{m['p50_ms']:.3f}", f"{m['p99_ms']:.3f}",
                            f"{m['cpu_us']:.2f}", f"{m['retries']:.2f}"])
        r, k = med["redis"], med["kvstore"]
        ratio = f"{k['rps'] / r['rps']:.2f}" if r and k and r["rps"] else "n/a"
        rc, kc = cells["redis"], cells["kvstore"]
        print(f"| {test} ({TRANSACTION_TESTS[test]}) | {keyspaces[test]:,} | {rc[0]} | {kc[0]} | "
              f"{ratio} | {rc[1]} | {kc[1]} | {rc[2]} | {kc[2]} | {rc[3]} | {kc[3]} | "
              f"{rc[4]} | {kc[4]} |")
    print("\nrps: transactions (multi), script calls (evalsha) or committed increments (cas) per "
          "second; latency per request, cas retries included. ratio: kvstore / redis.\n"
          "CPU us/req: the server's user+system CPU per request. retries/req: aborted EXECs per "
          "committed increment.")
    if problems:
        print("\nNot measured (errors are not throughput):")
        for problem in problems:
            print(f"- {problem}")


# `pubsub`: issue 18's configurations as (subscribers, channels, share of --requests): each
# PUBLISH to a channel of 100 or 1000 subscribers is that many deliveries, so those runs make
# fewer PUBLISHes.
PUBSUB_CONFIGS = [
    (1, 1, 1), (100, 1, 10), (1000, 1, 50), (1000, 1000, 1),
]


def raise_open_files(needed: int) -> None:
    """Raises this process's soft open-file limit (inherited by the servers and kvbench)."""
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        if hard != resource.RLIM_INFINITY and hard < needed:
            sys.exit(f"{needed} open files are needed but the hard limit is {hard}: "
                     f"run `ulimit -n {needed}` in a root shell first")
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


def subscribe_refusal(port: int) -> str | None:
    """None if the server confirms a SUBSCRIBE, else what it answered instead."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(command("SUBSCRIBE", "compare:probe"))
            reply = b""
            # Enough to tell a confirmation (`*3\r\n$9\r\nsubscribe\r\n...`) from an error line.
            while b"\r\n" not in reply or (reply.startswith(b"*") and len(reply) < 20):
                chunk = sock.recv(4096)
                if not chunk:
                    break
                reply += chunk
    except OSError as err:
        return str(err)
    if reply.startswith(b"*3\r\n$9\r\nsubscribe\r\n"):
        return None
    return reply.decode(errors="replace").strip() or "connection closed"


def server_names(args) -> tuple:
    names = tuple(name.strip() for name in args.servers.split(","))
    for name in names:
        if name not in ("redis", "kvstore"):
            sys.exit(f"unknown server {name!r}: choose from redis, kvstore")
    return names


def run_kvbench_publish(port: int, args, client_pin: str | None, subscribers: int,
                        channels: int, requests: int, rate: int = 0) -> dict:
    """One `kvbench -t publish` run as its JSON result row, or {"failure": message}; with
    `rate`, the publishers are paced at that many PUBLISHes per second."""
    cmd = [KVBENCH, "-p", str(port), "-t", "publish", "-n", str(requests),
           "-c", str(args.clients), "-P", str(args.pipeline), "-d", str(args.data_size),
           "--subscribers", str(subscribers), "--channels", str(channels), "--json",
           "--rate", str(rate)]
    if client_pin:
        cmd = ["taskset", "-c", client_pin] + cmd
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    try:
        return json.loads(proc.stdout)["results"][0]
    except (ValueError, KeyError, IndexError):
        message = proc.stderr.strip().splitlines()
        return {"failure": message[-1] if message else f"kvbench exited with {proc.returncode}"}


def pubsub(args) -> None:
    """Issue 18's Pub/Sub figures side by side: kvbench's publish test with 1, 100 and 1000
    subscribers on one channel and with 1000 channels of one subscriber each, alternating
    between the servers, with medians of PUBLISH throughput, publish-to-delivery latency
    and the servers' CPU per PUBLISH. A server that refuses SUBSCRIBE is reported, not run."""
    names = server_names(args)
    pin = "1" if args.pinned else None
    client_pin = "0" if args.pinned else None
    raise_open_files(max(s for s, _, _ in PUBSUB_CONFIGS) + args.clients + 256)
    samples = {}  # (server, config) -> [result row with cpu_us added]
    problems = []
    with Servers(pin, kvstore_extra=args.kvstore_args.split(), names=names) as servers:
        pids = servers.pids()
        refused = {}
        for name in names:
            answer = subscribe_refusal(servers.ports[name])
            if answer is not None:
                refused[name] = answer
                problems.append(f"{name}: refuses SUBSCRIBE ({answer}): not measured")
        for _ in range(args.rounds):
            for subscribers, channels, share in PUBSUB_CONFIGS:
                requests = max(args.requests // share, 100)
                for name in names:
                    if name in refused:
                        continue
                    before = cpu_seconds(pids[name])
                    row = run_kvbench_publish(servers.ports[name], args, client_pin,
                                              subscribers, channels, requests)
                    spent = cpu_seconds(pids[name]) - before
                    row["cpu_us"] = spent * 1e6 / row["requests"] if row.get("requests") else 0.0
                    samples.setdefault((name, subscribers, channels), []).append(row)
        # Unpaced, a faster server also lets the publishers outrun the subscribers (who
        # share the client's core) further, and deliveries queue in the client's sockets:
        # latency is compared at the same load too, a share of the slower server's rate.
        paced = {}  # config -> rate
        if args.paced > 0 and len(names) == 2 and not refused:
            for subscribers, channels, share in PUBSUB_CONFIGS:
                rates = [statistics.median(row["rps"] for row in samples[(name, subscribers,
                                                                           channels)]
                                           if "rps" in row and "failure" not in row)
                         for name in names if samples.get((name, subscribers, channels))]
                if len(rates) == 2:
                    paced[(subscribers, channels)] = int(args.paced * min(rates))
            for _ in range(args.rounds):
                for subscribers, channels, share in PUBSUB_CONFIGS:
                    rate = paced.get((subscribers, channels))
                    if not rate:
                        continue
                    requests = max(args.requests // share, 100)
                    for name in names:
                        row = run_kvbench_publish(servers.ports[name], args, client_pin,
                                                  subscribers, channels, requests, rate)
                        samples.setdefault((name, "paced", subscribers, channels),
                                           []).append(row)
    mode = "pinned to one core" if args.pinned else "unpinned"
    if args.kvstore_args:
        mode += f", kvserver {args.kvstore_args}"
    print(f"\n### Pub/Sub: kvbench -t publish -c {args.clients} -P {args.pipeline} "
          f"-d {args.data_size}, {mode}, median of {args.rounds} alternating rounds\n")
    print("| subscribers x channels | publishes | redis pub/s | kvstore pub/s | ratio "
          "| redis dlv/s | kvstore dlv/s | redis dlv p50 ms | kvstore dlv p50 ms "
          "| redis dlv p99 ms | kvstore dlv p99 ms | redis CPU us/pub | kvstore CPU us/pub |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: "
          "| ---: |")
    keys = ("rps", "deliveries_per_s", "delivery_p50_ms", "delivery_p99_ms", "cpu_us")
    for subscribers, channels, share in PUBSUB_CONFIGS:
        med = {}
        for name in ("redis", "kvstore"):
            rows = samples.get((name, subscribers, channels), [])
            failed = [row for row in rows if "failure" in row]
            erred = [row for row in rows if row.get("errors")]
            if failed:
                problems.append(f"{name} {subscribers}x{channels}: kvbench failed: "
                                f"{failed[0]['failure']}")
            if erred:
                row = erred[0]
                problems.append(f"{name} {subscribers}x{channels}: {row['errors']:,} errors in "
                                f"{row['requests']:,} publishes (first: {row.get('first_error')})")
            if failed or erred or not rows:
                med[name] = None
                continue
            med[name] = {key: statistics.median(row[key] for row in rows) for key in keys}
        cells = {}
        for name in ("redis", "kvstore"):
            m = med[name]
            if m is None:
                cells[name] = ["-"] * 5
            else:
                cells[name] = [f"{m['rps']:,.0f}", f"{m['deliveries_per_s']:,.0f}",
                               f"{m['delivery_p50_ms']:.3f}", f"{m['delivery_p99_ms']:.3f}",
                               f"{m['cpu_us']:.2f}"]
        r, k = med["redis"], med["kvstore"]
        ratio = f"{k['rps'] / r['rps']:.2f}" if r and k and r["rps"] else "n/a"
        rc, kc = cells["redis"], cells["kvstore"]
        requests = max(args.requests // share, 100)
        print(f"| {subscribers:,} x {channels:,} | {requests:,} | {rc[0]} | {kc[0]} | {ratio} | "
              f"{rc[1]} | {kc[1]} | {rc[2]} | {kc[2]} | {rc[3]} | {kc[3]} | {rc[4]} | {kc[4]} |")
    if paced:
        print(f"\n### Delivery latency at the same load: publishers paced at {args.paced:.0%} of "
              f"the slower server's rate, median of {args.rounds} alternating rounds\n")
        print("| subscribers x channels | pub/s | redis dlv p50 ms | kvstore dlv p50 ms "
              "| redis dlv p99 ms | kvstore dlv p99 ms | p99 ratio |")
        print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
        for subscribers, channels, _ in PUBSUB_CONFIGS:
            rate = paced.get((subscribers, channels))
            if not rate:
                continue
            med = {}
            for name in ("redis", "kvstore"):
                rows = [row for row in samples.get((name, "paced", subscribers, channels), [])
                        if "failure" not in row and not row.get("errors")]
                med[name] = ({key: statistics.median(row[key] for row in rows)
                              for key in ("delivery_p50_ms", "delivery_p99_ms")}
                             if rows else None)
            r, k = med["redis"], med["kvstore"]
            if not r or not k:
                problems.append(f"{subscribers}x{channels} paced: a run failed")
                continue
            ratio = k["delivery_p99_ms"] / r["delivery_p99_ms"] if r["delivery_p99_ms"] else 0
            print(f"| {subscribers:,} x {channels:,} | {rate:,} | {r['delivery_p50_ms']:.3f} | "
                  f"{k['delivery_p50_ms']:.3f} | {r['delivery_p99_ms']:.3f} | "
                  f"{k['delivery_p99_ms']:.3f} | {ratio:.2f} |")
    print("\npub/s: PUBLISHes per second (answered); ratio: kvstore / redis. dlv/s: messages "
          "received by the subscribers per second.\ndlv p50/p99: publish-to-delivery latency "
          "(send time stamped in the payload to the subscriber's read). CPU us/pub: the "
          "server's\nuser+system CPU per PUBLISH, fan-out included.")
    if problems:
        print("\nNot measured (errors are not throughput):")
        for problem in problems:
            print(f"- {problem}")


def flood(port: int, size: int, rate: float, stop: threading.Event, out: dict) -> None:
    """PUBLISHes `size`-byte messages on `compare:flood` at `rate` MB/s until `stop`; records
    in `out` when PUBLISH first reached no receiver (the non-reader was cut off)."""
    payload = b"f" * size
    message = command("PUBLISH", "compare:flood", payload)
    started = time.perf_counter()
    sent = 0
    with socket.create_connection(("127.0.0.1", port)) as sock:
        reader = sock.makefile("rb")
        while not stop.is_set():
            due = started + sent / (rate * 1e6)
            pause = due - time.perf_counter()
            if pause > 0:
                time.sleep(min(pause, 0.1))
                continue
            sock.sendall(message)
            reply = reader.readline()
            sent += size
            out["sent_mb"] = sent / 1e6
            if reply.startswith(b":0") and "cut_at" not in out:
                out["cut_at"] = time.perf_counter() - started
                out["cut_mb"] = sent / 1e6
            if not reply.startswith(b":"):
                out["error"] = reply.decode(errors="replace").strip()
                return


def numsub(port: int, channel: str) -> int:
    out = subprocess.run(["redis-cli", "-p", str(port), "pubsub", "numsub", channel],
                         capture_output=True, text=True, timeout=30).stdout.split()
    return int(out[1]) if len(out) > 1 else -1


def pubsub_memory(args) -> None:
    """RSS over time with --subscribers subscribers on one channel, one of which never reads:
    kvbench keeps the others reading while it publishes for --seconds, and this script's
    non-reader also listens on `compare:flood`, where a second publisher sends --flood-size
    messages at --flood-rate MB/s, so that its output buffer grows unless the server cuts it
    off (Redis: client-output-buffer-limit pubsub 32mb 8mb 60)."""
    names = server_names(args)
    readers = args.subscribers - 1
    # Per process: each server and kvbench hold one descriptor per subscriber.
    raise_open_files(args.subscribers + 512)
    extra = ["--appendonly", "no", "--maxclients", str(args.subscribers + 100)]
    series, notes = {}, []
    with Servers(None, extra, names=names) as servers:
        pids = servers.pids()
        for name in names:
            port = servers.ports[name]
            answer = subscribe_refusal(port)
            if answer is not None:
                notes.append(f"{name}: refuses SUBSCRIBE ({answer}): not measured")
                continue
            # The non-reader: a small receive buffer, so that what it does not read stays in
            # the server; it subscribes and never calls recv.
            lazy = socket.socket()
            lazy.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            lazy.connect(("127.0.0.1", port))
            lazy.sendall(command("SUBSCRIBE", "channel:000000000000", "compare:flood"))
            bench = subprocess.Popen(
                [KVBENCH, "-p", str(port), "-t", "publish", "--subscribers", str(readers),
                 "-c", "1", "-d", str(args.data_size), "--duration", f"{args.seconds}s",
                 "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            stop, flooded = threading.Event(), {}
            flooder = threading.Thread(target=flood, args=(port, args.flood_size,
                                                           args.flood_rate, stop, flooded))
            flooder.start()
            samples = []
            started = time.perf_counter()
            while bench.poll() is None or time.perf_counter() - started < args.seconds:
                samples.append(rss_bytes(pids[name]))
                time.sleep(1)
            stop.set()
            flooder.join()
            out, err = bench.communicate()
            samples.append(rss_bytes(pids[name]))
            series[name] = samples
            remaining = numsub(port, "channel:000000000000")
            try:
                result = json.loads(out)["results"][0]
                # PUBLISH counts the non-reader too (one more receiver than kvbench's
                # subscribers): kvbench reports each reply as an error; only its
                # subscribers' errors matter here.
                bench_note = (f"kvbench published {result['requests']:,} messages, its "
                              f"{readers:,} subscribers got {result['deliveries']:,} of "
                              f"{result['expected_deliveries']:,} with "
                              f"{result['delivery_errors']:,} errors")
            except (ValueError, KeyError, IndexError):
                bench_note = f"kvbench failed: {err.strip().splitlines()[-1:]}"
            cut = (f"cut off after {flooded['cut_at']:.1f}s, {flooded['cut_mb']:.0f} MB into "
                   f"the flood" if "cut_at" in flooded else "never cut off")
            notes.append(f"{name}: {bench_note}; the non-reader was {cut} "
                         f"({flooded.get('sent_mb', 0):.0f} MB flooded"
                         f"{', flood error: ' + flooded['error'] if 'error' in flooded else ''}); "
                         f"subscribers left on the channel after kvbench exited: {remaining} "
                         f"(1 = the non-reader is still connected)")
            lazy.close()
    print(f"\n### Pub/Sub memory: {args.subscribers:,} subscribers on one channel, one never "
          f"reads; kvbench -c 1 -d {args.data_size} for {args.seconds}s, flood "
          f"{args.flood_size:,}-byte messages at {args.flood_rate} MB/s to the non-reader\n")
    shown = [name for name in names if name in series]
    print("| second | " + " | ".join(f"{name} RSS MB" for name in shown) + " |")
    print("| ---: | " + " | ".join("---:" for _ in shown) + " |")
    for second in range(max((len(v) for v in series.values()), default=0)):
        cells = [f"{series[name][second] / 1e6:.1f}" if second < len(series[name]) else ""
                 for name in shown]
        print(f"| {second} | " + " | ".join(cells) + " |")
    print()
    for note in notes:
        print(f"- {note}")


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


def command(*args) -> bytes:
    """One RESP command."""
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        arg = arg if isinstance(arg, bytes) else str(arg).encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(arg), arg))
    return b"".join(parts)


def batched(name: bytes, key: bytes, items: list, per_command: int = 1000) -> bytes:
    """`name key item... ` commands of up to `per_command` items (items are lists of args)."""
    out = []
    for start in range(0, len(items), per_command):
        args = [a for item in items[start:start + per_command] for a in item]
        out.append(command(name, key, *args))
    return b"".join(out)


def collection_payload(kind: str, keys: int, size: int) -> bytes:
    """`keys` keys each holding a `kind` collection of `size` elements. Elements are
    non-numeric 16-byte strings (`member:NNNNNNNN`), scores and hash values small integers
    as text, so both servers store the same bytes."""
    out = []
    for k in range(keys):
        key = b"%s:%08d" % (kind.encode(), k)
        members = [b"member:%08d" % i for i in range(size)]
        if kind == "list":
            out.append(batched(b"RPUSH", key, [[m] for m in members]))
        elif kind == "set":
            out.append(batched(b"SADD", key, [[m] for m in members]))
        elif kind == "hash":
            out.append(batched(b"HSET", key, [[m, b"%d" % i] for i, m in enumerate(members)]))
        elif kind == "zset":
            out.append(batched(b"ZADD", key, [[b"%d" % i, m] for i, m in enumerate(members)]))
    return b"".join(out)


def collection_memory(args) -> None:
    """RSS growth from loading the same collections into each server, one fresh pair of
    servers per row: one key holding a 1M-element collection, and 100k keys each holding a
    10-element one, of each type."""
    rows = []
    for keys, size in ((1, args.big), (args.small_keys, args.small_size)):
        for kind in ("list", "hash", "set", "zset"):
            payload = collection_payload(kind, keys, size)
            with Servers(None) as servers:
                pids = servers.pids()
                grown = {}
                for name in ("redis", "kvstore"):
                    empty = rss_bytes(pids[name])
                    pipe_load(servers.ports[name], payload)
                    time.sleep(1)
                    grown[name] = rss_bytes(pids[name]) - empty
            rows.append((f"{keys:,} x {kind} of {size:,}", keys * size, grown))
    print("\n### RSS growth after loading collections (elements `member:NNNNNNNN`)\n")
    print("| data | redis MB | kvstore MB | ratio | redis B/element | kvstore B/element |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for label, elements, grown in rows:
        r, k = grown["redis"], grown["kvstore"]
        print(f"| {label} | {r / 1e6:.1f} | {k / 1e6:.1f} | {k / r:.2f} | "
              f"{r / elements:.1f} | {k / elements:.1f} |")


# Commands on large collections (the list), with how many requests each run makes.
LARGE_COMMANDS = [
    (["ZRANGE", "zset:00000000", "500000", "500009"], 100_000),
    (["ZRANGE", "zset:00000000", "(500000", "500010", "BYSCORE"], 100_000),
    (["ZRANK", "zset:00000000", "member:00500000"], 100_000),
    (["LINDEX", "list:00000000", "500000"], 100_000),
    (["SINTER", "set:00000000", "set:00000001"], 200),
    (["HGETALL", "hash:00000000"], 20_000),
]


def large(args) -> None:
    """Throughput of reads on large collections, side by side: a 1M-member sorted set and
    list, two 100k-member sets sharing half their members, a 1k-field hash."""
    payload = (collection_payload("zset", 1, 1_000_000) + collection_payload("list", 1, 1_000_000)
               + collection_payload("hash", 1, 1_000))
    for k, offset in ((0, 0), (1, 50_000)):
        members = [[b"member:%08d" % (offset + i)] for i in range(100_000)]
        payload += batched(b"SADD", b"set:%08d" % k, members)
    with Servers(None) as servers:
        for name in ("redis", "kvstore"):
            pipe_load(servers.ports[name], payload)
        samples = {}
        for _ in range(args.rounds):
            for cmd, requests in LARGE_COMMANDS:
                for name in ("redis", "kvstore"):
                    bench = ["redis-benchmark", "-p", str(servers.ports[name]), "-n",
                             str(requests), "-c", str(args.clients), "-P", "1", "--csv"] + cmd
                    out = subprocess.run(bench, capture_output=True, text=True,
                                         timeout=1800).stdout
                    for row in csv.DictReader(io.StringIO(out)):
                        samples.setdefault((" ".join(cmd), name), []).append(
                            (float(row["rps"]), float(row["p99_latency_ms"])))
    print(f"\n### Large collections, -c {args.clients} -P 1, median of {args.rounds} "
          "alternating rounds\n")
    print("| command | redis rps | kvstore rps | ratio | redis p99 ms | kvstore p99 ms |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for cmd, _ in LARGE_COMMANDS:
        label = " ".join(cmd)
        med = {name: [statistics.median(v[i] for v in samples.get((label, name), [(0, 0)]))
                      for i in range(2)] for name in ("redis", "kvstore")}
        r, k = med["redis"], med["kvstore"]
        ratio = k[0] / r[0] if r[0] else float("nan")
        print(f"| `{label}` | {r[0]:,.0f} | {k[0]:,.0f} | {ratio:.2f} | {r[1]:.3f} | {k[1]:.3f} |")


def set_payload(keys: int) -> bytes:
    value = b"x" * 32
    return b"".join(b"*3\r\n$3\r\nSET\r\n$16\r\nkey:%012d\r\n$32\r\n%s\r\n" % (i, value)
                    for i in range(keys))


def wait_persistence_idle(port: int) -> None:
    while True:
        info = subprocess.run(["redis-cli", "-p", str(port), "info", "persistence"],
                              capture_output=True, text=True).stdout
        if "rdb_bgsave_in_progress:0" in info and "aof_rewrite_in_progress:0" in info:
            return
        time.sleep(0.05)


def probe_stalls(port: int, stop: threading.Event, out: list) -> None:
    """PINGs back to back on one connection; records each round trip in ms."""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        while not stop.is_set():
            started = time.perf_counter()
            sock.sendall(b"PING\r\n")
            reply = b""
            while not reply.endswith(b"\r\n"):
                reply += sock.recv(64)
            out.append((time.perf_counter() - started) * 1000)


def timed_start(name: str, directory: str, extra: list) -> float:
    """Starts one server on `directory` alone and returns the seconds until it answers PING."""
    port = free_port()
    binary = "redis-server" if name == "redis" else KVSERVER
    cmd = [binary, "--port", str(port), "--save", "", "--dir", directory] + extra
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(64).startswith(b"+PONG"):
                        break
            except OSError:
                pass
            time.sleep(0.005)
        return time.perf_counter() - started
    finally:
        proc.terminate()
        proc.wait(timeout=120)


def persistence(args) -> None:
    # 1. Write throughput under each fsync policy, side by side.
    print(f"\n### SET -P 16 -c 50 -n {args.requests} -r 1000000 by appendfsync, "
          f"median of {args.rounds} alternating rounds\n")
    print("| appendonly / appendfsync | redis rps | kvstore rps | ratio | "
          "redis vs its AOF off | kvstore vs its AOF off |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    base = {}
    for policy in ("off", "everysec", "always"):
        extra = (["--appendonly", "no"] if policy == "off"
                 else ["--appendonly", "yes", "--appendfsync", policy])
        requests = args.requests if policy != "always" else args.requests // 4
        samples = {"redis": [], "kvstore": []}
        with Servers(None, extra) as servers:
            for _ in range(args.rounds):
                for name in ("redis", "kvstore"):
                    result = run_benchmark(servers.ports[name], 16, requests, 50, None,
                                           tests="set", keyspace=1_000_000)
                    samples[name].append(result.get("SET", (0.0, 0.0))[0])
        med = {name: statistics.median(v) for name, v in samples.items()}
        if policy == "off":
            base = med
        cost = {name: med[name] / base[name] for name in med}
        print(f"| {policy} | {med['redis']:,.0f} | {med['kvstore']:,.0f} | "
              f"{med['kvstore'] / med['redis']:.2f} | {cost['redis']:.2f} | {cost['kvstore']:.2f} |")

    # 2. Recovery time for N keys, from the snapshot and from the log.
    payload = set_payload(args.keys)
    rows = []
    for source in ("snapshot", "log"):
        extra = (["--appendonly", "no"] if source == "snapshot"
                 else ["--appendonly", "yes", "--appendfsync", "everysec",
                       "--auto-aof-rewrite-percentage", "0"])
        with tempfile.TemporaryDirectory(prefix="kvrecover-") as tmp:
            dirs = {name: os.path.join(tmp, name) for name in ("redis", "kvstore")}
            with Servers(None, extra, dirs) as servers:
                for name in ("redis", "kvstore"):
                    pipe_load(servers.ports[name], payload)
                    if source == "snapshot":
                        subprocess.run(["redis-cli", "-p", str(servers.ports[name]), "save"],
                                       capture_output=True, timeout=600)
            times = {}
            for name in ("redis", "kvstore"):
                times[name] = timed_start(name, dirs[name], extra)
            rows.append((source, times))
    print(f"\n### Start-up with {args.keys:,} keys (32-byte values): time until PING answers\n")
    print("| loaded from | redis s | kvstore s | ratio |")
    print("| --- | ---: | ---: | ---: |")
    for source, times in rows:
        print(f"| {source} | {times['redis']:.2f} | {times['kvstore']:.2f} | "
              f"{times['kvstore'] / times['redis']:.2f} |")

    # 3. Longest PING round trip while BGSAVE writes N keys.
    print(f"\n### Longest client stall during BGSAVE of {args.keys:,} keys\n")
    print("| server | BGSAVE s | PINGs | max ms | p99.9 ms |")
    print("| --- | ---: | ---: | ---: | ---: |")
    with Servers(None) as servers:
        for name in ("redis", "kvstore"):
            port = servers.ports[name]
            pipe_load(port, payload)
            stop, stalls = threading.Event(), []
            probe = threading.Thread(target=probe_stalls, args=(port, stop, stalls))
            probe.start()
            time.sleep(0.3)
            started = time.perf_counter()
            subprocess.run(["redis-cli", "-p", str(port), "bgsave"], capture_output=True)
            time.sleep(0.05)
            wait_persistence_idle(port)
            elapsed = time.perf_counter() - started
            stop.set()
            probe.join()
            stalls.sort()
            p999 = stalls[int(len(stalls) * 0.999) - 1] if stalls else 0.0
            print(f"| {name} | {elapsed:.2f} | {len(stalls):,} | {max(stalls):.2f} | {p999:.2f} |")


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
    t.add_argument("--acl-user", default="",
                   help="ACL rules of a user the client logs in as, on both servers")
    t.add_argument("--requests", type=int, default=1_000_000)
    t.add_argument("--clients", type=int, default=50)
    t.add_argument("--rounds", type=int, default=3)
    t.add_argument("--pipelines", type=int, nargs="+", default=[1, 16])
    t.add_argument("--tests", default=TESTS,
                   help="comma-separated redis-benchmark tests, or `collections`")
    t.add_argument("--client", choices=("redis-benchmark", "kvbench"), default="redis-benchmark",
                   help="load generator (kvbench: `cargo build --release -p kvcli` first)")
    t.add_argument("--kvstore-args", default="",
                   help="extra kvserver flags, e.g. '--threads 2'")
    t.add_argument("--neighbour", type=int, metavar="NICE",
                   help="run a busy loop at this niceness beside the servers (on their core "
                        "with --pinned) for the whole run")
    m = sub.add_parser("memory")
    m.add_argument("--keys", type=int, default=1_000_000)
    m.add_argument("--settle", type=float, default=3.0, help="seconds to wait after deleting")
    c = sub.add_parser("collection-memory")
    c.add_argument("--big", type=int, default=1_000_000, help="elements of the one big key")
    c.add_argument("--small-keys", type=int, default=100_000)
    c.add_argument("--small-size", type=int, default=10)
    lg = sub.add_parser("large")
    lg.add_argument("--rounds", type=int, default=3)
    lg.add_argument("--clients", type=int, default=50)
    p = sub.add_parser("persistence")
    p.add_argument("--requests", type=int, default=1_000_000)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--keys", type=int, default=1_000_000)
    tx = sub.add_parser("transactions",
                        help="kvbench's multi, evalsha and cas tests (issue 17), side by side")
    tx.add_argument("--pinned", action="store_true", help="servers on core 1, client on core 0")
    tx.add_argument("--requests", type=int, default=100_000,
                    help="requests per run: transactions, script calls, committed increments")
    tx.add_argument("--rounds", type=int, default=3)
    tx.add_argument("--clients", type=int, default=50)
    tx.add_argument("--tests", default=",".join(TRANSACTION_TESTS),
                    help="comma-separated subset of " + ", ".join(TRANSACTION_TESTS))
    tx.add_argument("--pipeline", type=int, default=1,
                    help="-P for multi and evalsha (cas is never pipelined)")
    tx.add_argument("--keyspace", type=int, default=100_000,
                    help="-r for multi and evalsha: keys spread over every shard")
    tx.add_argument("--cas-keys", type=int, default=10,
                    help="-r for cas: few keys, so that the clients contend")
    tx.add_argument("--kvstore-args", default="",
                    help="extra kvserver flags, e.g. '--threads 2'")
    ps = sub.add_parser("pubsub", help="kvbench's publish test (issue 18), side by side")
    ps.add_argument("--pinned", action="store_true", help="servers on core 1, client on core 0")
    ps.add_argument("--requests", type=int, default=100_000,
                    help="PUBLISHes per run with 1 subscriber per channel (N/10 with 100 "
                         "subscribers on the channel, N/50 with 1000)")
    ps.add_argument("--rounds", type=int, default=3)
    ps.add_argument("--paced", type=float, default=0.8,
                    help="then compare delivery latency with the publishers paced at this share "
                         "of the slower server's rate (0: skip)")
    ps.add_argument("--clients", type=int, default=50, help="publishers (-c)")
    ps.add_argument("--pipeline", type=int, default=1, help="-P of the publishers")
    ps.add_argument("--data-size", type=int, default=3,
                    help="-d (payloads are at least kvbench's 40-byte stamp)")
    ps.add_argument("--servers", default="redis,kvstore",
                    help="comma-separated servers to run: redis, kvstore")
    ps.add_argument("--kvstore-args", default="",
                    help="extra kvserver flags, e.g. '--threads 2'")
    pm = sub.add_parser("pubsub-memory",
                        help="RSS over time with 10k subscribers, one of which never reads")
    pm.add_argument("--subscribers", type=int, default=10_000,
                    help="subscribers on the channel, the non-reader included")
    pm.add_argument("--seconds", type=int, default=20, help="how long kvbench publishes")
    pm.add_argument("--data-size", type=int, default=100, help="-d of kvbench's PUBLISHes")
    pm.add_argument("--flood-size", type=int, default=262144,
                    help="bytes per message on the non-reader's flood channel")
    pm.add_argument("--flood-rate", type=float, default=8.0,
                    help="MB/s published on the flood channel")
    pm.add_argument("--servers", default="redis,kvstore",
                    help="comma-separated servers to run: redis, kvstore")
    args = parser.parse_args()
    if ((getattr(args, "client", None) == "kvbench"
         or args.mode in ("transactions", "pubsub", "pubsub-memory"))
            and not os.path.exists(KVBENCH)):
        sys.exit("build kvbench first: cargo build --release -p kvcli")
    modes = {"throughput": throughput, "memory": memory, "persistence": persistence,
             "collection-memory": collection_memory, "large": large,
             "transactions": transactions, "pubsub": pubsub, "pubsub-memory": pubsub_memory}
    modes[args.mode](args)


if __name__ == "__main__":
    main()
