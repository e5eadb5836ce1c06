"""Imports every DAG in a folder with Airflow's own DagBag; exits 1 on an import error or none.

    check_dags.py FOLDER

Run with AIRFLOW_HOME set to a scratch folder (the first import writes airflow.cfg there) and
AIRFLOW__CORE__LOAD_EXAMPLES=False.
"""
import sys

from airflow.models.dagbag import DagBag

bag = DagBag(sys.argv[1])
for path, err in bag.import_errors.items():
    print(f"import error in {path}: {err}")
if bag.import_errors or not bag.dags:
    sys.exit(1)
for dag_id, dag in bag.dags.items():
    print(dag_id, sorted(t.task_id for t in dag.tasks))
    for t in dag.tasks:
        print(" ", t.task_id, "after", sorted(t.upstream_task_ids))
