"""Times the libraries' own predict on the same rows as mlship's `score` bench (10,000 rows and
one row), single-threaded: XGBoost and LightGBM boosters, onnxruntime, and JPMML-Evaluator (the
PMML engine, through its Python package). Prints one line per file, medians in microseconds.
"""
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

root = Path(sys.argv[1])
n = int(sys.argv[2]) if len(sys.argv) > 2 else 10_000


def timeit(f, arg, reps):
    out = []
    for _ in range(reps):
        t = time.perf_counter()
        f(arg)
        out.append((time.perf_counter() - t) * 1e6)
    return float(np.median(out))


def frames(case):
    X = pd.read_csv(root / case / "input.csv")
    big = pd.concat([X] * (n // len(X) + 1), ignore_index=True).iloc[:n]
    return big, X.iloc[:1]


def report(name, lib, f, big, one, reps=15, one_reps=300):
    f(big)
    print(f"{lib} {name} rows={n} batch_us={timeit(f, big, reps):.1f} one_row_us={timeit(f, one, one_reps):.2f}", flush=True)


import xgboost as xgb

b = xgb.Booster(model_file=str(root / "xgb_classifier/model.json"))
b.set_param({"nthread": 1})
big, one = frames("xgb_classifier")
report("xgb_classifier/model.json", "xgboost", lambda d: b.inplace_predict(d.to_numpy(np.float32)), big, one)

import lightgbm as lgb

lb = lgb.Booster(model_file=str(root / "lgbm_classifier/model.txt"))
big, one = frames("lgbm_classifier")
report("lgbm_classifier/model.txt", "lightgbm", lambda d: lb.predict(d.to_numpy(), num_threads=1), big, one)

import onnxruntime as ort

opts = ort.SessionOptions()
opts.intra_op_num_threads = 1
opts.inter_op_num_threads = 1
for case in ["random_forest_classifier", "gradient_boosting_regressor"]:
    s = ort.InferenceSession(str(root / case / "model.onnx"), opts, providers=["CPUExecutionProvider"])
    name = s.get_inputs()[0].name
    big, one = frames(case)
    report(f"{case}/model.onnx", "onnxruntime", lambda d: s.run(None, {name: d.to_numpy(np.float32)}), big, one)

import jpmml_evaluator

for case in ["random_forest_classifier", "logistic_binary"]:
    ev = jpmml_evaluator.make_evaluator(str(root / case / "model.pmml")).verify()
    big, one = frames(case)
    report(f"{case}/model.pmml", "jpmml", ev.evaluateAll, big, one, reps=5, one_reps=100)
