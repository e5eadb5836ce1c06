"""Logs what the web UI tests look at, with the stock `mlflow` client against `mlship server`.

Run by crates/mlship/tests/ui.rs with MLFLOW_TRACKING_URI set. One experiment holds a parent run
with two nested children, runs with different parameters and step metrics (one metric of 500
points), artifacts of every previewable kind, a run whose name and tag hold HTML, and two versions
of a registered pipeline with a categorical column (so the "try it" form offers a list). Writes
the ids the browser test needs to the JSON file named by its first argument.
"""

import json
import os
import struct
import sys
import tempfile
import zlib

import mlflow
import numpy as np
import pandas as pd
from mlflow import MlflowClient
from sklearn.compose import make_column_transformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

out_path = sys.argv[1]
client = MlflowClient()
exp = mlflow.set_experiment("ui-demo")
rng = np.random.default_rng(0)
ids = {"experiment_id": exp.experiment_id}


def png(width, height):
    """A small valid PNG (a gradient), for the image preview."""
    rows = b"".join(b"\x00" + b"".join(bytes((x * 255 // width, y * 255 // height, 128)) for x in range(width)) for y in range(height))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


with mlflow.start_run(run_name="sweep") as parent:
    ids["parent"] = parent.info.run_id
    mlflow.log_param("kind", "sweep")
    for i, alpha in enumerate(["0.1", "1.0"]):
        with mlflow.start_run(run_name=f"sweep-child-{i}", nested=True) as child:
            ids[f"child{i}"] = child.info.run_id
            mlflow.log_params({"alpha": alpha, "depth": i + 3})
            mlflow.log_metric("rmse", 0.5 - 0.1 * i)
            for step in range(20):
                mlflow.log_metric("loss", (1.0 + i) / (step + 1), step=step)

with mlflow.start_run(run_name="long-training") as run:
    ids["long"] = run.info.run_id
    mlflow.log_params({"alpha": "0.01", "depth": 6})
    loss = [float(2.0 * np.exp(-s / 80.0) + 0.01 * rng.random()) for s in range(500)]
    client.log_batch(run.info.run_id, metrics=[mlflow.entities.Metric("loss", v, 1_700_000_000_000 + s * 1000, s) for s, v in enumerate(loss)])
    mlflow.log_metric("rmse", 0.21)
    mlflow.log_dict({"layers": [64, 32], "dropout": 0.1}, "config/model.json")
    mlflow.log_text("epoch,loss\n1,0.9\n2,0.5\n3,0.3\n", "metrics/curve.csv")
    mlflow.log_text("a short report\n", "reports/summary.txt")
    with tempfile.TemporaryDirectory() as d:
        p = os.path.join(d, "plot.png")
        with open(p, "wb") as f:
            f.write(png(40, 30))
        mlflow.log_artifact(p, "plots")
        big = os.path.join(d, "big.log")
        with open(big, "w") as f:
            f.write("x" * 2_600_000)
        mlflow.log_artifact(big, "logs")
    ids["loss_points"] = len(loss)
    ids["loss_sum"] = sum(loss)

with mlflow.start_run(run_name="<img src=x onerror=alert(1)><script>window.pwned=1</script>") as run:
    ids["html"] = run.info.run_id
    mlflow.set_tag("note", "<b>bold?</b><script>window.pwned=2</script>")
    mlflow.log_metric("rmse", 0.9)

# A run still running: its page refreshes by itself.
running = client.create_run(exp.experiment_id, run_name="still-running")
ids["running"] = running.info.run_id
client.log_metric(running.info.run_id, "progress", 1.0, step=0)

# A pipeline with a categorical column, two versions, registered through the MLflow API.
n = 300
df = pd.DataFrame({
    "age": rng.integers(18, 80, n).astype(float),
    "income": rng.normal(50, 15, n),
    "city": rng.choice(["Lisbon", "Oslo", "Paris"], n),
})
y = ((df["income"] > 50) ^ (df["city"] == "Oslo")).astype(int)
pre = make_column_transformer((StandardScaler(), ["age", "income"]), (OneHotEncoder(handle_unknown="ignore"), ["city"]))
for v, c in enumerate([1.0, 0.1]):
    with mlflow.start_run(run_name=f"credit-v{v + 1}") as run:
        mlflow.log_param("C", c)
        model = make_pipeline(pre, LogisticRegression(C=c)).fit(df, y)
        mlflow.log_metric("accuracy", float(model.score(df, y)))
        mlflow.sklearn.log_model(model, name="model", input_example=df.head(3), registered_model_name="credit")
client.set_registered_model_alias("credit", "production", "1")
ids["model"] = "credit"

with open(out_path, "w") as f:
    json.dump(ids, f)
print(json.dumps(ids))
