"""Times scikit-learn on the same rows as mlship's `score` bench: 10,000 rows and one row.

Prints one line per model, in the format of the Rust bench: medians in microseconds.
"""
import pickle
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

root = Path(sys.argv[1])
n = int(sys.argv[2]) if len(sys.argv) > 2 else 10_000
for case in ["random_forest_classifier", "random_forest_regressor", "gradient_boosting_classifier", "gradient_boosting_regressor"]:
    est = pickle.load(open(root / case / "model.pkl", "rb"))
    X = pd.read_csv(root / case / "input.csv")
    big = pd.concat([X] * (n // len(X) + 1), ignore_index=True).iloc[:n]
    one = X.iloc[:1]
    f = est.predict_proba if hasattr(est, "predict_proba") else est.predict
    batch, single = [], []
    for _ in range(15):
        t = time.perf_counter(); f(big); batch.append((time.perf_counter() - t) * 1e6)
    for _ in range(300):
        t = time.perf_counter(); f(one); single.append((time.perf_counter() - t) * 1e6)
    print(f"sklearn {case} rows={n} batch_us={np.median(batch):.1f} one_row_us={np.median(single):.2f}", flush=True)
