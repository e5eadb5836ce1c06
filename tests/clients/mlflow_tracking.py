"""The stock `mlflow` client against `mlship server`: a realistic training script.

Run by crates/mlship/tests/tracking.rs with MLFLOW_TRACKING_URI pointing at mlship. It uses the
fluent and client APIs, nested runs, scikit-learn autolog, log_model with registration, aliases,
search with filters and orders, loading by models:/NAME@ALIAS and runs:/RUN/model, artifacts
round trips and the error paths the client depends on. It writes what the Rust test checks next
(the registered model's name, the rows it scored and the Python model's predictions) to the JSON
file named by its first argument.
"""

import json
import math
import os
import sys
import tempfile

import mlflow
import numpy as np
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from sklearn.datasets import make_classification
from sklearn.ensemble import RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

out_path = sys.argv[1]
client = MlflowClient()

X, y = make_classification(n_samples=300, n_features=6, random_state=0)
cols = [f"f{i}" for i in range(6)]

# set_experiment creates on 404, and finds it again the second time.
exp = mlflow.set_experiment("demo")
assert mlflow.set_experiment("demo").experiment_id == exp.experiment_id
client.set_experiment_tag(exp.experiment_id, "team", "risk")

# A realistic run: params, step metrics, tags, artifacts, a dataset, a model with registration.
with mlflow.start_run(run_name="train") as run:
    mlflow.log_params({"alpha": "0.1", "max_iter": 200})
    for step in range(10):
        mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
    mlflow.log_metrics({"rmse": 0.42, "nan_metric": float("nan"), "inf_metric": float("inf")})
    mlflow.set_tags({"stage": "dev", "owner": "ann"})
    mlflow.log_dict({"a": 1, "b": [1, 2]}, "config/params.json")
    mlflow.log_text("hello from mlship\n", "reports/summary.txt")
    with tempfile.TemporaryDirectory() as d:
        os.makedirs(os.path.join(d, "sub"))
        with open(os.path.join(d, "a.txt"), "w") as f:
            f.write("A" * 1000)
        with open(os.path.join(d, "sub", "b.bin"), "wb") as f:
            f.write(bytes(range(256)) * 100)
        mlflow.log_artifacts(d, artifact_path="dirlog")
    import pandas as pd

    df = pd.DataFrame(X, columns=cols)
    csv_path = os.path.join(tempfile.mkdtemp(), "train.csv")
    df.to_csv(csv_path, index=False)
    mlflow.log_input(mlflow.data.from_pandas(df, source=csv_path, name="train"), context="training")
    model = make_pipeline(SimpleImputer(), StandardScaler(), LogisticRegression(max_iter=200))
    model.fit(df, y)
    info = mlflow.sklearn.log_model(
        model,
        name="model",
        registered_model_name="fraud",
        input_example=df.iloc[:5],
        skops_trusted_types=["numpy.dtype"],
    )
    # Nested runs.
    with mlflow.start_run(run_name="child", nested=True) as child:
        mlflow.log_metric("rmse", 0.5)
run_id = run.info.run_id

# The run as stored.
got = client.get_run(run_id)
assert got.data.params["alpha"] == "0.1", got.data.params
assert got.data.params["max_iter"] == "200"
assert got.data.metrics["loss"] == 0.1, got.data.metrics
assert math.isnan(got.data.metrics["nan_metric"])
assert got.data.metrics["inf_metric"] == float("inf") or got.data.metrics["inf_metric"] > 1e308
assert got.data.tags["owner"] == "ann"
assert got.info.status == "FINISHED"
assert got.inputs.dataset_inputs[0].dataset.name == "train"
history = client.get_metric_history(run_id, "loss")
assert [m.step for m in history] == list(range(10)), history
assert [m.value for m in history][:2] == [1.0, 0.5]

# Params are immutable: the same value is fine, a change is a 409 the client raises at once.
mlflow.start_run(run_id=run_id)
mlflow.log_param("alpha", "0.1")
try:
    mlflow.log_param("alpha", "0.9")
    raise AssertionError("a changed param was accepted")
except MlflowException as e:
    assert e.error_code == "INVALID_PARAMETER_VALUE", e.error_code
mlflow.end_run()

# Artifacts round trip byte for byte.
d = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="dirlog")
with open(os.path.join(d, "sub", "b.bin"), "rb") as f:
    assert f.read() == bytes(range(256)) * 100
assert mlflow.artifacts.load_text(f"runs:/{run_id}/reports/summary.txt") == "hello from mlship\n"
assert mlflow.artifacts.load_dict(f"runs:/{run_id}/config/params.json") == {"a": 1, "b": [1, 2]}
names = sorted(a.path for a in client.list_artifacts(run_id))
assert names == ["config", "dirlog", "reports"], names

# Search with filters and orders, nested runs by their parent tag.
runs = mlflow.search_runs(
    experiment_ids=[exp.experiment_id],
    filter_string="metrics.rmse < 0.45 and params.alpha = '0.1'",
    order_by=["metrics.rmse DESC"],
)
assert list(runs["run_id"]) == [run_id], runs
children = client.search_runs(
    [exp.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{run_id}'"
)
assert [r.info.run_name for r in children] == ["child"]
try:
    client.search_runs([exp.experiment_id], filter_string="metrics.rmse <")
    raise AssertionError("a bad filter was accepted")
except MlflowException as e:
    assert e.error_code == "INVALID_PARAMETER_VALUE"

# Autolog: a second model, not registered.
mlflow.sklearn.autolog()
with mlflow.start_run(run_name="autolog") as auto_run:
    RandomForestClassifier(n_estimators=5, random_state=0).fit(df, y)
mlflow.sklearn.autolog(disable=True)
auto = client.get_run(auto_run.info.run_id)
assert "training_accuracy_score" in auto.data.metrics, auto.data.metrics

# The registry: register tolerates RESOURCE_ALREADY_EXISTS, aliases, loading by alias.
mv2 = mlflow.register_model(f"runs:/{auto_run.info.run_id}/model", "fraud")
assert mv2.version == "2", mv2.version
client.set_registered_model_alias("fraud", "production", "1")
client.set_registered_model_alias("fraud", "challenger", "2")
assert client.get_model_version_by_alias("fraud", "production").version == "1"
client.update_registered_model("fraud", description="catches fraud")
client.set_model_version_tag("fraud", "1", "validated", "yes")
client.update_model_version("fraud", "1", description="first")
rm = client.get_registered_model("fraud")
assert rm.description == "catches fraud"
assert rm.aliases == {"production": "1", "challenger": "2"}, rm.aliases
mvs = client.search_model_versions("name = 'fraud'")
assert sorted(v.version for v in mvs) == ["1", "2"]
assert [m.name for m in client.search_registered_models("name = 'fraud'")] == ["fraud"]
try:
    client.get_model_version_by_alias("fraud", "nope")
    raise AssertionError("an unknown alias resolved")
except MlflowException as e:
    assert e.error_code == "INVALID_PARAMETER_VALUE", e.error_code
try:
    client.get_registered_model("nope")
    raise AssertionError("an unknown model was found")
except MlflowException as e:
    assert e.error_code == "RESOURCE_DOES_NOT_EXIST"

# Loading by alias and by run predicts as the in-memory model did.
rows = df.iloc[:20]
want = model.predict_proba(rows)[:, 1]
by_alias = mlflow.sklearn.load_model("models:/fraud@production")
assert np.allclose(by_alias.predict_proba(rows)[:, 1], want)
by_run = mlflow.pyfunc.load_model(info.model_uri)
assert np.array_equal(by_run.predict(rows), model.predict(rows))

# Less common calls.
client.rename_experiment(exp.experiment_id, "demo-renamed")
client.rename_experiment(exp.experiment_id, "demo")
tmp = client.create_experiment("scratch")
client.delete_experiment(tmp)
client.restore_experiment(tmp)
r = client.create_run(tmp)
client.set_tag(r.info.run_id, "k", "v")
client.delete_tag(r.info.run_id, "k")
client.delete_run(r.info.run_id)
client.restore_run(r.info.run_id)
client.set_terminated(r.info.run_id)
assert [e.name for e in client.search_experiments(filter_string="name = 'scratch'")] == ["scratch"]
client.create_registered_model("tmp-model")
client.set_registered_model_tag("tmp-model", "k", "v")
client.delete_registered_model_tag("tmp-model", "k")
client.rename_registered_model("tmp-model", "tmp-model-2")
client.delete_registered_model("tmp-model-2")
client.delete_registered_model_alias("fraud", "challenger")
client.transition_model_version_stage("fraud", "2", "Staging")
assert client.get_latest_versions("fraud", stages=["Staging"])[0].version == "2"

with open(out_path, "w") as f:
    json.dump(
        {
            "run_id": run_id,
            "rows": rows.to_dict(orient="split"),
            "predictions": [int(p) for p in model.predict(rows)],
            "probabilities": model.predict_proba(rows).tolist(),
        },
        f,
    )
print("mlflow client script: ok")
