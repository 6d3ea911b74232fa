#!/usr/bin/env bash
# The one place that fetches Prometheus: Debian's packages, downloaded (apt-get download, no
# root needed) and unpacked (dpkg-deb -x) into .tools/prometheus/, with the binaries linked into
# .tools/bin/. Used by deploy/check.sh (promtool), `make observe` and the live observability
# check of `make test` (prometheus, prometheus-postgres-exporter).
#
#   bash deploy/prometheus-tools.sh         # prometheus, promtool, prometheus-postgres-exporter
#   bash deploy/prometheus-tools.sh --ui    # also the JavaScript libraries of Prometheus's web UI
#
# Idempotent and quiet when everything is there; only the first run needs the package registry.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="$ROOT/.tools"
PREFIX="$TOOLS/prometheus"  # a private root: the packages' relative symlinks resolve inside it
BIN="$TOOLS/bin"
SERVER_PACKAGES=(prometheus prometheus-postgres-exporter)
# What prometheus's classic web UI links to (its Depends), only for a browser: --ui.
UI_PACKAGES=(libjs-jquery libjs-popper.js libjs-bootstrap4 fonts-glyphicons-halflings libjs-d3 libjs-rickshaw
  libjs-moment libjs-moment-timezone libjs-eonasdan-bootstrap-datetimepicker libjs-mustache libjs-jquery-hotkeys)

want=("${SERVER_PACKAGES[@]}")
[[ "${1:-}" == "--ui" ]] && want+=("${UI_PACKAGES[@]}")

missing=()
for package in "${want[@]}"; do
  [[ -f "$PREFIX/.installed/$package" ]] || missing+=("$package")
done
if ((${#missing[@]} == 0)); then
  exit 0
fi

echo "setup: extracting Debian's ${missing[*]} into ${PREFIX#"$ROOT"/}" >&2
work="$(mktemp -d "${TMPDIR:-/tmp}/picture-prometheus.XXXXXX")"
trap 'rm -rf "$work"' EXIT
if ! (cd "$work" && apt-get download "${missing[@]}" >/dev/null 2>&1); then
  apt-get update -qq >/dev/null
  (cd "$work" && apt-get download "${missing[@]}" >/dev/null)
fi
mkdir -p "$PREFIX/.installed" "$BIN"
for package in "${missing[@]}"; do
  dpkg-deb -x "$work/${package}"_*.deb "$PREFIX"
  touch "$PREFIX/.installed/$package"
done
for tool in prometheus promtool prometheus-postgres-exporter; do
  ln -sf "$PREFIX/usr/bin/$tool" "$BIN/$tool"
done
