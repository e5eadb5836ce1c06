"""Talks to `mlship serve` with NVIDIA's tritonclient (the Open Inference Protocol's HTTP client).

usage: triton_v2.py HOST:PORT CORPUS_DIR
The server must serve `fraud` (random_forest_classifier) and `onehot` (pipeline_onehot_logreg).
Exits non-zero on the first mismatch.
"""
import csv
import json
import sys

import numpy as np
import tritonclient.http as httpclient

url, corpus = sys.argv[1], sys.argv[2]
client = httpclient.InferenceServerClient(url=url)
assert client.is_server_live(), "server not live"
assert client.is_server_ready(), "server not ready"
assert client.is_model_ready("fraud"), "fraud not ready"
meta = client.get_model_metadata("onehot")
assert [i["name"] for i in meta["inputs"]] == ["num_a", "num_b", "num_c", "color"], meta
assert client.get_server_metadata()["name"] == "mlship"


def load(case):
    with open(f"{corpus}/{case}/input.csv") as f:
        rows = list(csv.reader(f))
    with open(f"{corpus}/{case}/expected.json") as f:
        exp = json.load(f)
    return rows[0], rows[1:], exp


# One 2-D FP32 tensor for the forest.
cols, rows, exp = load("random_forest_classifier")
x = np.array([[float(v) for v in r] for r in rows], dtype=np.float32)
inp = httpclient.InferInput("x", list(x.shape), "FP32")
inp.set_data_from_numpy(x)
res = client.infer("fraud", [inp], outputs=[httpclient.InferRequestedOutput("predictions"), httpclient.InferRequestedOutput("probabilities")])
assert res.as_numpy("predictions").tolist() == exp["predictions"], res.as_numpy("predictions")
assert np.allclose(res.as_numpy("probabilities"), np.array(exp["probabilities"]), atol=1e-12)

# One tensor per column, with a BYTES column, for the pipeline.
cols, rows, exp = load("pipeline_onehot_logreg")
inputs = []
for j, c in enumerate(cols):
    if c == "color":
        arr = np.array([r[j] for r in rows], dtype=object)
        t = httpclient.InferInput(c, [len(rows)], "BYTES")
    else:
        arr = np.array([float(r[j]) for r in rows], dtype=np.float64)
        t = httpclient.InferInput(c, [len(rows)], "FP64")
    t.set_data_from_numpy(arr)
    inputs.append(t)
res = client.infer("onehot", inputs, model_version="1")
got = [v.decode() if isinstance(v, bytes) else v for v in res.as_numpy("predictions").tolist()]
assert got == exp["predictions"], got

# A bad request is an error, not a crash.
try:
    client.infer("nope", [inp])
    raise SystemExit("an unknown model was answered")
except httpclient.InferenceServerException as e:
    assert "nope" in str(e), e
print("tritonclient: ok")
