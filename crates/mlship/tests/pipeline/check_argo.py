"""Validates Argo Workflows documents against Hera's models of Argo's API, strictly: besides the
models' own validation, every key at every depth must be a field of the model at that place
(Hera's models ignore unknown keys, which would let a typo such as `templat` through).

    check_argo.py FILE...
"""
import sys
import typing

import yaml
from pydantic import BaseModel

from hera.workflows import models as m


def models_in(annotation):
    """The pydantic models an annotation can hold (through Optional, List, Dict, Union)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    out = []
    for arg in typing.get_args(annotation):
        out.extend(models_in(arg))
    return out


def unknown_keys(model, data, path):
    errors = []
    if isinstance(data, list):
        for i, item in enumerate(data):
            errors += unknown_keys(model, item, f"{path}[{i}]")
        return errors
    if not isinstance(data, dict):
        return errors
    fields = {}
    for name, f in model.model_fields.items():
        fields[f.alias or name] = f
        fields[name] = f
    for key, value in data.items():
        f = fields.get(key)
        if f is None:
            errors.append(f"{path}.{key}: not a field of {model.__name__}")
            continue
        for sub in models_in(f.annotation):
            errors += unknown_keys(sub, value, f"{path}.{key}")
            break
    return errors


failed = False
for path in sys.argv[1:]:
    with open(path) as f:
        doc = yaml.safe_load(f)
    kind = doc.get("kind")
    model = getattr(m, kind, None)
    if model is None:
        print(f"{path}: unknown kind {kind!r}")
        failed = True
        continue
    try:
        model.model_validate(doc)
    except Exception as e:  # pydantic's ValidationError lists every field
        print(f"{path}: {e}")
        failed = True
        continue
    errors = unknown_keys(model, doc, kind)
    for e in errors:
        print(f"{path}: {e}")
    if errors:
        failed = True
    else:
        print(f"ok {path} {kind} {doc['metadata']['name']}")
sys.exit(1 if failed else 0)
