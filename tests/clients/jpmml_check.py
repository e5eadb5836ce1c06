"""Scores PMML documents written by `mlship convert --to pmml` with JPMML-Evaluator (the PMML
engine of the sklearn2pmml authors) and compares with scikit-learn's own outputs.

usage: jpmml_check.py LIST.json   (a list of {"pmml": path, "case": corpus case folder})
Labels must match exactly (rows where scikit-learn's top probabilities tie aside), numbers to
1e-9 (relative, or absolute below 1). Rows where JPMML returns NaN (Gaussian naive Bayes on the
corpus's +-1e6 rows, as the corpus README notes) are counted and skipped. Exit 1 on a difference.
"""
import json
import math
import sys

import jpmml_evaluator
import pandas as pd

TOL = 1e-9


def close(a, b):
    return abs(a - b) <= TOL * max(1.0, abs(b))


def main():
    jobs = json.load(open(sys.argv[1]))
    failed = 0
    for job in jobs:
        ev = jpmml_evaluator.make_evaluator(job["pmml"]).verify()
        case = job["case"]
        exp = json.load(open(f"{case}/expected.json"))
        info = json.load(open(f"{case}/case.json"))
        ties = set(info.get("probability_tie_rows") or [])
        df = pd.read_csv(f"{case}/input.csv")
        names = [f.getName() for f in ev.getInputFields()]
        if not set(names) <= set(df.columns):
            df.columns = names[: len(df.columns)] + list(df.columns[len(names):])
        out = ev.evaluateAll(df)
        target = out.columns[0]
        preds = exp["predictions"]
        probs = exp.get("probabilities")
        classes = exp.get("classes")
        problems, nan_rows = [], 0
        for i, want in enumerate(preds):
            got = out[target][i]
            row_probs = None
            if probs is not None and classes is not None:
                cols = [f"probability({c})" for c in classes]
                if all(c in out.columns for c in cols):
                    row_probs = [out[c][i] for c in cols]
            if (isinstance(got, float) and math.isnan(got)) or (
                row_probs and any(isinstance(p, float) and math.isnan(p) for p in row_probs)
            ):
                nan_rows += 1
                continue
            if isinstance(want, float):
                if not close(float(got), want):
                    problems.append(f"row {i}: {got} vs {want}")
            elif str(got) != str(want) and i not in ties:
                problems.append(f"row {i}: label {got!r} vs {want!r}")
            if row_probs is not None and i not in ties:
                for k, (g, w) in enumerate(zip(row_probs, probs[i])):
                    if abs(g - w) > TOL:
                        problems.append(f"row {i}: probability {k} {g} vs {w}")
        status = "ok" if not problems else "DIFFERS"
        print(f"{status} {job['pmml']}: {len(preds) - nan_rows} rows compared, {nan_rows} NaN rows skipped")
        for p in problems[:5]:
            print("   ", p)
        failed += bool(problems)
    sys.exit(1 if failed else 0)


main()
