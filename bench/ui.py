"""Times the web UI with 100,000 runs in one experiment, beside MLflow's UI on the same data.

    ui.py MLSHIP_BINARY MLFLOW_EXECUTABLE NODE_MODULES

Both servers run on SQLite in fresh folders and hold the same rows, seeded as bench/tracking.py
seeds them (RUNS [100000] runs of 10 params and 10 metrics), plus one run with a metric of POINTS
[100000] steps logged through the API. Lines:
  first page, server    the runs search the runs table sends first (50 runs, newest first),
                        median of 20 requests
  first page, browser   headless Chromium from navigation to the first row shown (median of TURNS [5])
  chart, browser        the run page until its chart of POINTS points is drawn, and the chart's
                        own draw time (mlship only: MLflow's chart page is not addressed by URL)
"""
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tracking  # noqa: E402  (the servers, seeding and batches of bench/tracking.py)

RUNS = int(os.environ.get("RUNS", 100_000))
POINTS = int(os.environ.get("POINTS", 100_000))


def first_page(server, exp):
    conn = http.client.HTTPConnection("127.0.0.1", server.port)
    body = {"experiment_ids": [exp], "order_by": ["attributes.start_time DESC"], "max_results": 50}
    times = []
    for _ in range(20):
        t0 = time.perf_counter()
        r = tracking.post(conn, "/ajax-api/2.0/mlflow/runs/search", body)
        times.append(time.perf_counter() - t0)
        assert len(r["runs"]) == 50, server.name
    conn.close()
    return statistics.median(times) * 1000


def big_metric(server, exp):
    conn = http.client.HTTPConnection("127.0.0.1", server.port)
    run = tracking.post(conn, "/api/2.0/mlflow/runs/create", {"experiment_id": exp, "run_name": "big"})["run"]["info"]["run_id"]
    for start in range(0, POINTS, 1000):
        tracking.post(conn, "/api/2.0/mlflow/runs/log-batch", tracking.batch(run, "loss", start, min(1000, POINTS - start)))
    conn.close()
    return run


def browser(node_modules, targets):
    out = subprocess.run(
        ["node", os.path.join(os.path.dirname(os.path.abspath(__file__)), "ui_browser.js"), *targets],
        env={**os.environ, "NODE_PATH": node_modules}, stdout=subprocess.PIPE, text=True, check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    mlship_bin, mlflow_exe, node_modules = sys.argv[1], sys.argv[2], sys.argv[3]
    work = tempfile.mkdtemp(prefix="mlship-bench-ui-")
    home = os.path.join(work, "mlship")
    mf = os.path.join(work, "mlflow")
    os.makedirs(mf)
    servers = [
        tracking.Server("mlship", [mlship_bin, "server", "--port", "15011"], {"MLSHIP_HOME": home}, 15011,
                        os.path.join(home, "registry.db")),
        tracking.Server("mlflow", [mlflow_exe, "server", "--backend-store-uri", f"sqlite:///{mf}/mlflow.db",
                                   "--artifacts-destination", f"{mf}/artifacts", "--host", "127.0.0.1",
                                   "--port", "15012"], {}, 15012, f"{mf}/mlflow.db"),
    ]
    rows = {}
    for s in servers:
        s.start()
        exp = tracking.seed(s, RUNS)
        run = big_metric(s, exp) if s.name == "mlship" else None
        rows.setdefault("first page of runs, server (ms)", {})[s.name] = first_page(s, exp)
        if s.name == "mlship":
            targets = [f"page|{s.url}/#/experiments/{exp}|#runs tbody tr",
                       f"chart|{s.url}/#/runs/{run}|figure[data-metric=\"loss\"] canvas|chart"]
        else:
            # MLflow's runs table shows run names; the newest seeded run is run-0.
            targets = [f"page|{s.url}/#/experiments/{exp}/runs|text=run-0"]
        got = browser(node_modules, targets)
        page = got["page"]
        rows.setdefault("first page of runs, browser (ms)", {})[s.name] = page.get("ms", float("nan"))
        if "error" in page:
            print(f"# {s.name}: the runs page did not show a run: {page['error']}", file=sys.stderr)
        if s.name == "mlship":
            chart = got["chart"]
            if "error" in chart:
                print(f"# mlship: the chart was not drawn: {chart['error']}", file=sys.stderr)
            rows[f"chart of {POINTS // 1000}k points, page (ms)"] = {"mlship": chart.get("ms", float("nan"))}
            rows[f"chart of {POINTS // 1000}k points, draw (ms)"] = {"mlship": chart.get("draw_ms", float("nan"))}
        s.stop()
    print(f"# {RUNS} runs in one experiment; a metric of {POINTS} points; medians")
    print(f"{'line':36} {'mlship':>9} {'mlflow':>9} {'ratio':>7}")
    for line, r in rows.items():
        m, f = r.get("mlship", float("nan")), r.get("mlflow", float("nan"))
        ratio = f"{f / m:6.1f}x" if m and f == f else "      -"
        print(f"{line:36} {m:9.1f} {f:9.1f} {ratio}")


if __name__ == "__main__":
    main()
