#!/usr/bin/env bash
# Make sure the system packages the book needs are present.
#
#   tools/require-system.sh 'PACKAGE=TEST' ...
#
# For each pair, TEST is a shell command that succeeds when the Debian PACKAGE is usable.
# Missing packages are installed with apt-get when we are root on Debian/Ubuntu; otherwise we
# stop with one line saying exactly what to install.
set -euo pipefail

missing=()
for pair in "$@"; do
    package=${pair%%=*}
    check=${pair#*=}
    bash -c "$check" >/dev/null 2>&1 || missing+=("$package")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "Installing system packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    for pair in "$@"; do
        bash -c "${pair#*=}" >/dev/null 2>&1 || { echo "installed ${pair%%=*} but '${pair#*=}' still fails" >&2; exit 1; }
    done
else
    echo "Missing system packages: ${missing[*]}. Install them (e.g. 'sudo apt-get install ${missing[*]}') and re-run make." >&2
    exit 1
fi
