#!/usr/bin/env bash
# Installs what the web UI tests drive: Debian's Chromium, and @playwright/test, axe-core and
# uPlot from npm (pinned by crates/mlship/tests/ui/package-lock.json) in a folder outside the clone.
# `playwright install` cannot download here; the tests launch Chromium by its path. Prints `export`
# lines.
set -euo pipefail
DIR=${UI_NODE:-/tmp/mlship-ui}
LOCK=crates/mlship/tests/ui/package-lock.json
if ! command -v chromium >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends chromium >&2
fi
if ! cmp -s "$LOCK" "$DIR/package-lock.json" || [[ ! -x $DIR/node_modules/.bin/playwright ]]; then
  mkdir -p "$DIR"
  cp crates/mlship/tests/ui/package.json "$LOCK" "$DIR/"
  (cd "$DIR" && npm ci --silent --no-audit --no-fund >&2)
fi
echo "export MLSHIP_TEST_PLAYWRIGHT=$DIR"
echo "export MLSHIP_CHROMIUM=$(command -v chromium)"
