"""Drives one tracking workload against `mlship server` and `mlflow server` (both on SQLite, started
here in fresh folders) and prints each line's times, the servers' own CPU time and the ratios.

    tracking.py MLSHIP_BINARY MLFLOW_EXECUTABLE

Lines (sizes from the environment, defaults in brackets):
  log runs       the fluent client logs RUNS [1000] runs of 10 params and 10 metrics of 10 steps
  log-batch      THREADS [4] raw HTTP clients post BATCHES [200] log-batch requests of 1,000 points
  history        one metric of HISTORY [100000] points is written, then read back by the client
  search N       search_runs with a filter and an order over SEARCH [10000,100000] seeded runs
  cold start     a stopped server is started on its existing store, until /health answers
  memory         the server's memory (PSS, all its processes) after the workload

Wall times include the client (the same Python on both sides); `server cpu` is the CPU time the
server's processes spent, read from /proc before and after, which is the server's own share.
Search runs are seeded straight into each server's database with the same rows (the API would take
hours on MLflow's side); every other line goes through the REST API.
"""
import contextlib
import http.client
import io
import json
import os
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid

RUNS = int(os.environ.get("RUNS", 1000))
THREADS = int(os.environ.get("THREADS", 4))
BATCHES = int(os.environ.get("BATCHES", 200))
HISTORY = int(os.environ.get("HISTORY", 100_000))
SEARCH = [int(n) for n in os.environ.get("SEARCH", "10000,100000").split(",")]
REPEAT = int(os.environ.get("REPEAT", 10))
TICKS = os.sysconf("SC_CLK_TCK")

import mlflow  # noqa: E402  (after the sizes, so --help-like failures are quick)
from mlflow import MlflowClient  # noqa: E402


def tree(root):
    """The pid and every descendant (MLflow's server runs workers under uvicorn)."""
    children = {}
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                ppid = int(open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
            children.setdefault(ppid, []).append(int(p))
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def cpu(root):
    """CPU seconds (user + system) of the process tree, the reaped children's included."""
    total = 0
    for p in tree(root):
        try:
            f = open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(x) for x in f[11:15])
    return total / TICKS


def pss_mib(root):
    """Proportional set size of the process tree: pages shared by forked workers are counted
    once in all (summing their resident sizes would count them once per worker)."""
    total = 0
    for p in tree(root):
        try:
            for line in open(f"/proc/{p}/smaps_rollup"):
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


class Server:
    def __init__(self, name, command, env, port, db):
        self.name, self.command, self.env, self.port, self.db = name, command, env, port, db
        self.url = f"http://127.0.0.1:{port}"
        self.proc = None

    def start(self):
        t0 = time.perf_counter()
        self.proc = subprocess.Popen(
            self.command,
            env={**os.environ, **self.env},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = t0 + 300
        while time.perf_counter() < deadline:
            try:
                with urllib.request.urlopen(self.url + "/health", timeout=1) as r:
                    if r.status == 200:
                        return time.perf_counter() - t0
            except OSError:
                time.sleep(0.002)
        raise SystemExit(f"{self.name} did not answer /health within 300 s")

    def stop(self):
        os.killpg(self.proc.pid, 15)
        self.proc.wait(timeout=60)


def measured(server, work):
    """(wall seconds, server CPU seconds, work's result)."""
    c0, t0 = cpu(server.proc.pid), time.perf_counter()
    result = work()
    return time.perf_counter() - t0, cpu(server.proc.pid) - c0, result


def log_runs(server):
    mlflow.set_tracking_uri(server.url)
    mlflow.set_experiment("bench-log")
    rng = random.Random(1)

    def work():
        # The fluent client prints two "View run" lines per run on stdout, where the table goes.
        with contextlib.redirect_stdout(io.StringIO()):
            runs()

    def runs():
        for i in range(RUNS):
            with mlflow.start_run(run_name=f"run-{i}"):
                mlflow.log_params({f"p{k}": rng.choice(["0.1", "0.2", "0.5"]) for k in range(10)})
                for step in range(10):
                    mlflow.log_metrics({f"m{k}": rng.random() for k in range(10)}, step=step)

    return measured(server, work)


def post(conn, path, body):
    conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
    r = conn.getresponse()
    data = r.read()
    if r.status != 200:
        raise SystemExit(f"{path}: {r.status} {data[:300]!r}")
    return json.loads(data or b"{}")


def batch(run_id, key, start, n):
    now = int(time.time() * 1000)
    return {
        "run_id": run_id,
        "metrics": [
            {"key": key, "value": (start + i) * 0.5, "timestamp": now, "step": start + i}
            for i in range(n)
        ],
    }


def log_batches(server):
    client = MlflowClient(server.url)
    exp = client.create_experiment("bench-batch")
    runs = [client.create_run(exp).info.run_id for _ in range(THREADS)]
    bodies = [[batch(run, f"m{j % 10}", j * 1000, 1000) for j in range(BATCHES // THREADS)] for run in runs]

    def one(i):
        conn = http.client.HTTPConnection("127.0.0.1", server.port)
        for b in bodies[i]:
            post(conn, "/api/2.0/mlflow/runs/log-batch", b)
        conn.close()

    def work():
        threads = [threading.Thread(target=one, args=(i,)) for i in range(THREADS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return THREADS * (BATCHES // THREADS) * 1000

    return measured(server, work)


def history(server):
    client = MlflowClient(server.url)
    exp = client.create_experiment("bench-history")
    run = client.create_run(exp).info.run_id
    conn = http.client.HTTPConnection("127.0.0.1", server.port)
    for start in range(0, HISTORY, 1000):
        post(conn, "/api/2.0/mlflow/runs/log-batch", batch(run, "loss", start, min(1000, HISTORY - start)))
    conn.close()
    times = []
    for _ in range(3):
        wall, scpu, points = measured(server, lambda: client.get_metric_history(run, "loss"))
        assert len(points) == HISTORY, (server.name, len(points))
        times.append((wall, scpu))
    return med(times)


def med(pairs):
    return statistics.median(p[0] for p in pairs), statistics.median(p[1] for p in pairs)


def seed(server, n):
    """Creates an experiment through the API and writes `n` runs into the server's database."""
    client = MlflowClient(server.url)
    exp = client.create_experiment(f"bench-search-{n}")
    rng = random.Random(n)
    now = int(time.time() * 1000)
    runs, params, metrics, tags = [], [], [], []
    for i in range(n):
        rid = uuid.UUID(int=rng.getrandbits(128)).hex
        runs.append((rid, f"run-{i}", now - i))
        params.append((rid, "alpha", rng.choice(["0.1", "0.2", "0.5", "1.0"])))
        params.extend((rid, f"p{k}", str(rng.randint(0, 9))) for k in range(1, 10))
        metrics.append((rid, "rmse", rng.random()))
        metrics.extend((rid, f"m{k}", rng.random()) for k in range(1, 10))
        tags.append((rid, "mlflow.runName", f"run-{i}"))
        tags.append((rid, "mlflow.user", "bench"))
    db = sqlite3.connect(server.db, timeout=60)
    if server.name == "mlflow":
        insert(db, "runs", [
            dict(run_uuid=r, name=name, source_type="LOCAL", source_name="", entry_point_name="",
                 user_id="bench", status="FINISHED", start_time=t, end_time=t + 1,
                 source_version="", lifecycle_stage="active",
                 artifact_uri=f"mlflow-artifacts:/{exp}/{r}/artifacts", experiment_id=int(exp))
            for r, name, t in runs])
        insert(db, "params", [dict(run_uuid=r, key=k, value=v) for r, k, v in params])
        insert(db, "metrics", [dict(run_uuid=r, key=k, value=v, timestamp=now, step=0, is_nan=False)
                               for r, k, v in metrics])
        insert(db, "latest_metrics", [dict(run_uuid=r, key=k, value=v, timestamp=now, step=0,
                                           is_nan=False) for r, k, v in metrics])
        insert(db, "tags", [dict(run_uuid=r, key=k, value=v) for r, k, v in tags])
    else:
        insert(db, "runs", [
            dict(run_id=r, experiment_id=int(exp), name=name, user_id="bench", status="FINISHED",
                 start_time=t, end_time=t + 1, lifecycle_stage="active",
                 artifact_uri=f"mlflow-artifacts:/{exp}/{r}/artifacts")
            for r, name, t in runs])
        insert(db, "params", [dict(run_id=r, key=k, value=v) for r, k, v in params])
        insert(db, "metrics", [dict(run_id=r, key=k, value=v, is_nan=0, timestamp=now, step=0)
                               for r, k, v in metrics])
        insert(db, "latest_metrics", [dict(run_id=r, key=k, value=v, is_nan=0, timestamp=now,
                                           step=0) for r, k, v in metrics])
        insert(db, "run_tags", [dict(run_id=r, key=k, value=v) for r, k, v in tags])
    db.commit()
    db.close()
    return exp


def insert(db, table, rows):
    """Inserts dict rows, refusing a table with a required column the rows do not fill (a
    changed schema must fail loudly, not seed rows the server cannot read)."""
    cols = list(rows[0])
    for _, name, _, notnull, default, pk in db.execute(f"PRAGMA table_info({table})"):
        if notnull and default is None and not pk and name not in cols:
            raise SystemExit(f"{table}.{name} is required and not seeded; update bench/tracking.py")
    db.executemany(
        f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
        [tuple(r[c] for c in cols) for r in rows],
    )


FILTER = "metrics.rmse < 0.5 and params.alpha = '0.1'"


def search(server, exp):
    client = MlflowClient(server.url)
    times, found = [], None
    started = time.perf_counter()
    # REPEAT searches, or at least 3 when they are slow (MLflow's take minutes over 100,000 runs).
    while len(times) < REPEAT and (len(times) < 3 or time.perf_counter() - started < 60):
        wall, scpu, runs = measured(
            server,
            lambda: client.search_runs([exp], FILTER, order_by=["metrics.rmse ASC"], max_results=100),
        )
        found = [round(r.data.metrics["rmse"], 12) for r in runs]
        times.append((wall, scpu))
    return med(times), found


def main():
    mlship_bin, mlflow_exe = sys.argv[1], sys.argv[2]
    work = tempfile.mkdtemp(prefix="mlship-bench-tracking-")
    home = os.path.join(work, "mlship")
    mf = os.path.join(work, "mlflow")
    os.makedirs(mf)
    servers = [
        Server("mlship", [mlship_bin, "server", "--port", "15001"], {"MLSHIP_HOME": home}, 15001,
               os.path.join(home, "registry.db")),
        Server("mlflow", [mlflow_exe, "server", "--backend-store-uri", f"sqlite:///{mf}/mlflow.db",
                          "--artifacts-destination", f"{mf}/artifacts", "--host", "127.0.0.1",
                          "--port", "15002"], {}, 15002, f"{mf}/mlflow.db"),
    ]
    rows = {}  # line -> {server: (wall, server_cpu)}
    extra = {}
    for s in servers:
        print(f"# {s.name}: first start (creates its schema) {s.start():.2f} s", file=sys.stderr)
        wall, scpu, _ = log_runs(s)
        rows.setdefault(f"log {RUNS} runs (s)", {})[s.name] = (wall, scpu)
        print(f"# {s.name}: logged {RUNS} runs in {wall:.1f} s", file=sys.stderr)
        wall, scpu, points = log_batches(s)
        rows.setdefault(f"log-batch {points // 1000}k points (s)", {})[s.name] = (wall, scpu)
        rows.setdefault(f"history {HISTORY // 1000}k points read (s)", {})[s.name] = history(s)
        for n in SEARCH:
            exp = seed(s, n)
            t, found = search(s, exp)
            rows.setdefault(f"search {n // 1000}k runs (s)", {})[s.name] = t
            extra.setdefault(n, {})[s.name] = found
        extra.setdefault("rss", {})[s.name] = pss_mib(s.proc.pid)
        s.stop()
        starts = []
        for _ in range(3):
            starts.append(s.start())
            s.stop()
        extra.setdefault("start", {})[s.name] = statistics.median(starts)
    for n in SEARCH:
        a, b = extra[n]["mlship"], extra[n]["mlflow"]
        if a != b:
            raise SystemExit(f"search over {n} runs: the servers disagree ({len(a)} vs {len(b)} runs)")
    print(f"{'line':32} {'mlship':>9} {'mlflow':>9} {'ratio':>7} {'mlship cpu':>11} {'mlflow cpu':>11} {'cpu ratio':>9}")
    for line, r in rows.items():
        (mw, mc), (fw, fc) = r["mlship"], r["mlflow"]
        print(f"{line:32} {mw:9.3f} {fw:9.3f} {fw / mw:6.1f}x {mc:11.3f} {fc:11.3f} {fc / max(mc, 1e-3):8.1f}x")
    st, rs = extra["start"], extra["rss"]
    print(f"{'cold start to /health (s)':32} {st['mlship']:9.3f} {st['mlflow']:9.3f} {st['mlflow'] / st['mlship']:6.1f}x")
    print(f"{'memory, PSS (MiB)':32} {rs['mlship']:9.1f} {rs['mlflow']:9.1f} {rs['mlflow'] / rs['mlship']:6.1f}x")
    print(f"# medians of up to {REPEAT} searches (at least 3) and of 3 history reads and starts; both servers agree on every search")


if __name__ == "__main__":
    main()
