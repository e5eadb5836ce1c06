"""Values for the tracking server's search grammars, which no JSON Schema states.

`mlship server`'s OpenAPI document gives each search filter and order-by clause a named string
`format` (`mlflow-run-filter`, ...); schemathesis draws values of those formats from the
strategies below, so its "schema-valid requests are accepted" check sends real filters. Each
strategy writes only what MLflow's grammar allows for that search; the server must accept all
of them. Loaded through SCHEMATHESIS_HOOKS by crates/mlship/tests/openapi.rs.
"""

import schemathesis
from hypothesis import strategies as st

key = st.from_regex(r"[a-z_][a-z0-9_]{0,6}", fullmatch=True)
word = st.from_regex(r"[a-z0-9%_ ]{0,6}", fullmatch=True)
number = st.one_of(
    st.integers(-(10**6), 10**6).map(str),
    st.floats(-1e6, 1e6, allow_nan=False).map(lambda f: f"{f:.3f}"),
)
quoted = word.map(lambda s: f"'{s}'")
text_op = st.sampled_from(["=", "!=", "LIKE", "ILIKE"])
num_op = st.sampled_from(["=", "!=", "<", "<=", ">", ">="])


def clause(prefix, op, value):
    return st.tuples(key, op, value).map(lambda t: f"{prefix}.{t[0]} {t[1]} {t[2]}")


def attribute(names, op, value):
    return st.tuples(st.sampled_from(names), op, value).map(lambda t: f"{t[0]} {t[1]} {t[2]}")


in_list = st.lists(quoted, min_size=1, max_size=3).map(lambda v: "(" + ", ".join(v) + ")")
tag_clauses = st.one_of(
    clause("tags", text_op, quoted),
    clause("tags", st.sampled_from(["IN", "NOT IN"]), in_list),
    key.map(lambda k: f"tags.`{k}` IS NULL"),
)


def conjunction(*clauses):
    return st.lists(st.one_of(*clauses), max_size=3).map(" and ".join)


run_filter = conjunction(
    clause("metrics", num_op, number),
    clause("params", text_op, quoted),
    tag_clauses,
    attribute(["attributes.status"], st.just("="), st.sampled_from(["'RUNNING'", "'FINISHED'"])),
    attribute(["attributes.run_name", "attributes.user_id"], text_op, quoted),
    attribute(["attributes.start_time", "attributes.end_time"], num_op, number),
)
experiment_filter = conjunction(
    attribute(["name", "attributes.name"], text_op, quoted),
    attribute(["creation_time", "last_update_time"], num_op, number),
    tag_clauses,
)
model_filter = conjunction(attribute(["name"], text_op, quoted), tag_clauses)
version_filter = conjunction(
    attribute(["name", "run_id", "source_path"], text_op, quoted),
    tag_clauses,
)
logged_model_filter = conjunction(
    attribute(["name", "model_type", "status"], text_op, quoted),
    clause("params", text_op, quoted),
    clause("metrics", num_op, number),
)


def order(keys):
    return st.tuples(keys, st.sampled_from(["", " ASC", " DESC"])).map("".join)


run_order = order(
    st.one_of(
        key.map(lambda k: f"metrics.{k}"),
        key.map(lambda k: f"params.{k}"),
        key.map(lambda k: f"tags.{k}"),
        st.sampled_from(["attributes.start_time", "attributes.run_name", "attributes.status"]),
    )
)
experiment_order = order(
    st.sampled_from(["name", "creation_time", "last_update_time", "experiment_id"])
)
model_order = order(st.sampled_from(["name", "creation_timestamp", "last_updated_timestamp"]))

for name, strategy in {
    "mlflow-run-filter": run_filter,
    "mlflow-experiment-filter": experiment_filter,
    "mlflow-registered-model-filter": model_filter,
    "mlflow-model-version-filter": version_filter,
    "mlflow-logged-model-filter": logged_model_filter,
    "mlflow-run-order": run_order,
    "mlflow-experiment-order": experiment_order,
    "mlflow-registered-model-order": model_order,
}.items():
    schemathesis.openapi.format(name, strategy)
