"""The soak behind bench/soak.sh: mlship serve under mixed traffic with an alias flip every 100 ms,
and a model that panics on every request (`bad`, through the fault-injection build) among the good
ones: each of its requests must answer 500, every other request 200.

Usage: soak.py MLSHIP_BINARY SECONDS
"""
import http.client
import json
import os
import subprocess
import sys
import tempfile
import threading
import time

MLSHIP, SECONDS = sys.argv[1], float(sys.argv[2])
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
CORPUS = os.path.join(ROOT, "fixtures", "corpus")
home = tempfile.mkdtemp(prefix="mlship-soak-")
env = dict(os.environ, MLSHIP_HOME=home, RUST_LOG="error", MLSHIP_FAULT_PANIC_MODEL="bad")
env.pop("MLSHIP_STORE", None)
env.pop("MLSHIP_ARTIFACTS", None)


def mlship(*args):
    subprocess.run([MLSHIP, *args], env=env, check=True, stdout=subprocess.DEVNULL)


forest = os.path.join(CORPUS, "random_forest_classifier", "model.pkl")
logreg = os.path.join(CORPUS, "pipeline_scaler_logreg", "model.pkl")
onehot = os.path.join(CORPUS, "pipeline_onehot_logreg", "model.pkl")
mlship("models", "register", "fraud", forest, "--alias", "production")
mlship("models", "register", "fraud", logreg)
server = subprocess.Popen(
    [MLSHIP, "serve", "fraud=models:/fraud@production", f"onehot={onehot}", f"bad={logreg}",
     "--port", "0",
     "--reload-interval-ms", "50"],
    env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
addr = server.stdout.readline().strip().removeprefix("listening on http://")
host, port = addr.rsplit(":", 1)
for _ in range(400):
    try:
        c = http.client.HTTPConnection(host, int(port), timeout=5)
        c.request("GET", "/v2/health/ready")
        if c.getresponse().status == 200:
            break
    except OSError:
        pass
    time.sleep(0.025)

row = [0.1, -1.2, 0.4, 2.0, -0.3, 1.1, 0.0, 0.5]
cols = [f"f{i}" for i in range(8)]
REQUESTS = [
    ("fraud", "/models/fraud/invocations", {"dataframe_split": {"columns": cols, "data": [row]}}),
    ("fraud", "/v1/models/fraud:predict", {"instances": [dict(zip(cols, row))]}),
    ("fraud", "/v2/models/fraud/infer",
     {"inputs": [{"name": "x", "shape": [1, 8], "datatype": "FP64", "data": row}]}),
    ("onehot", "/models/onehot/invocations",
     {"dataframe_records": [{"num_a": 0.5, "num_b": 4.0, "num_c": 2.0, "color": "red"}]}),
    ("bad", "/v2/models/bad/infer",
     {"inputs": [{"name": "x", "shape": [1, 8], "datatype": "FP64", "data": row}]}),
]
# What each model must answer: the panicking one 500 (in its protocol's shape), the others 200.
EXPECTED = {"fraud": 200, "onehot": 200, "bad": 500}
BODIES = [(m, p, json.dumps(b).encode()) for m, p, b in REQUESTS]
stop = threading.Event()
lock = threading.Lock()
counts = {m: [0, 0] for m in EXPECTED}


def worker(i):
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    n = i
    while not stop.is_set():
        model, path, body = BODIES[n % len(BODIES)]
        n += 1
        try:
            conn.request("POST", path, body, {"Content-Type": "application/json"})
            r = conn.getresponse()
            r.read()
            ok = r.status == EXPECTED[model]
        except (OSError, http.client.HTTPException):
            ok = False
            conn.close()
            conn = http.client.HTTPConnection(host, int(port), timeout=30)
        with lock:
            counts[model][0 if ok else 1] += 1


def flipper():
    version = 1
    while not stop.is_set():
        version = 3 - version
        mlship("models", "alias", "fraud", "production", str(version))
        time.sleep(0.1)


def rss_kib():
    with open(f"/proc/{server.pid}/status") as f:
        return int(next(l for l in f if l.startswith("VmRSS")).split()[1])


threads = [threading.Thread(target=worker, args=(i,)) for i in range(64)]
threads.append(threading.Thread(target=flipper))
for t in threads:
    t.start()
time.sleep(min(10.0, SECONDS / 10))
start_rss = rss_kib()
time.sleep(max(0.0, SECONDS - min(10.0, SECONDS / 10)))
end_rss = rss_kib()
stop.set()
for t in threads:
    t.join()
server.terminate()
server.wait()
total = sum(ok + bad for ok, bad in counts.values())
print(f"seconds={SECONDS:.0f} connections=64 requests={total} "
      f"per_second={total / SECONDS:.0f}")
for model, (ok, bad) in counts.items():
    print(f"model={model} answered_{EXPECTED[model]}={ok} otherwise={bad}")
print(f"rss_after_warmup_mib={start_rss / 1024:.1f} rss_end_mib={end_rss / 1024:.1f}")
sys.exit(1 if any(bad for _, bad in counts.values()) else 0)
