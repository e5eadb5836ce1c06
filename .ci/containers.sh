#!/usr/bin/env bash
# Installs the tools the image and deployment tests check mlship's output with, none of them ours:
# skopeo, umoci, runc and the docker-registry server (Debian packages); kubernetes-validate (the
# Kubernetes OpenAPI schemas) and botocore (the ECS API model) from PyPI in a venv; terraform is
# on the machine. Prints `export` lines.
set -euo pipefail
VENV=${DEPLOY_VENV:-/tmp/mlship-deploytools}
need=()
for tool in skopeo umoci runc docker-registry; do
  command -v "$tool" >/dev/null || need+=("$tool")
done
if ((${#need[@]})); then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
fi
if ! "$VENV/bin/python" -c "import kubernetes_validate, botocore" 2>/dev/null; then
  python3 -m venv "$VENV" >&2
  "$VENV/bin/pip" install -q kubernetes-validate==1.37.0 botocore==1.44.8 >&2
fi
command -v terraform >/dev/null || echo "warning: terraform is not on this machine; terraform fmt -check will not run" >&2
echo "export MLSHIP_TEST_CONTAINERS=1"
echo "export MLSHIP_TEST_DEPLOY_PYTHON=$VENV/bin/python"
echo "export MLSHIP_TEST_KUBERNETES_VALIDATE=$VENV/bin/kubernetes-validate"
if command -v terraform >/dev/null; then echo "export MLSHIP_TEST_TERRAFORM=$(command -v terraform)"; fi
