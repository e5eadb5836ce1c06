"""Checks ECS request files against the ECS API's own model (botocore's service definition).

usage: validate_ecs.py task-definition.json service.json
Exit 0 when both are valid RegisterTaskDefinition and CreateService inputs; 1 with the errors.
"""
import json
import sys

import botocore.session
from botocore.exceptions import ParamValidationError
from botocore.validate import ParamValidator


def main():
    model = botocore.session.get_session().get_service_model("ecs")
    failed = False
    for path, op in zip(sys.argv[1:], ["RegisterTaskDefinition", "CreateService"]):
        params = json.load(open(path))
        report = ParamValidator().validate(params, model.operation_model(op).input_shape)
        if report.has_errors():
            print(f"{path}: {ParamValidationError(report=report.generate_report())}")
            failed = True
        else:
            print(f"{path}: a valid {op} request")
    sys.exit(1 if failed else 0)


main()
