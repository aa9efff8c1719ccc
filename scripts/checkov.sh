#!/usr/bin/env bash
# Static checks of the Bicep in infra/ with checkov, offline.
#
# checkov pins pycep-parser 0.5.1 (the project's .venv has 0.7.1 for the syntax gate), so it lives
# in its own virtualenv, .venv-checkov, created here when missing or when the pinned version changes.
# `--skip-download` keeps checkov from calling its vendor API. Exit status: checkov's (0 = no failed
# check), or 2 when the virtualenv cannot be made.
#   scripts/checkov.sh                 check infra/
#   scripts/checkov.sh [checkov args]  override what follows `checkov` (e.g. -f infra/main.bicep)
set -euo pipefail
cd "$(dirname "$0")/.."

CHECKOV_VERSION=3.3.30
VENV=.venv-checkov
die() { printf 'checkov.sh: %s\n' "$*" >&2; exit 2; }

if [ "$("$VENV/bin/checkov" --version 2>/dev/null)" != "$CHECKOV_VERSION" ]; then
  command -v python3 >/dev/null || die "python3 is missing: install Python 3.11 (Debian: apt-get install python3 python3-venv)."
  echo "checkov.sh: installing checkov==$CHECKOV_VERSION into $VENV" >&2
  [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV" \
    || die "could not create $VENV: install the venv module (Debian: apt-get install python3-venv)."
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check "checkov==$CHECKOV_VERSION" \
    || die "pip could not install checkov==$CHECKOV_VERSION into $VENV (is PyPI reachable?)."
fi

if [ $# -eq 0 ]; then
  set -- -d infra --framework bicep --skip-download --compact --quiet
fi
# A file checkov cannot parse is a failure, not a silent pass; no update check against PyPI.
export CKV_PARSE_ERROR_FAIL=true CKV_SKIP_PACKAGE_UPDATE_CHECK=true
exec "$VENV/bin/checkov" "$@"
