#!/usr/bin/env bash
# Debian packages the tests and the demo need: Prometheus (and promtool), and chromium
# (the browser tests and `make demo` drive it headless through Playwright).
# --bench: also wrk, the HTTP load generator of bench/bench_relay.py.
set -euo pipefail
need=()
command -v prometheus >/dev/null 2>&1 || need+=(prometheus)
[ -x /usr/bin/chromium ] || need+=(chromium)
if [ "${1:-}" = "--bench" ]; then
  command -v wrk >/dev/null 2>&1 || need+=(wrk)
fi
if [ ${#need[@]} -gt 0 ]; then
  echo "setup-system: installing ${need[*]} from Debian" >&2
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
  # The package starts a system Prometheus on :9090; the tests run their own.
  $SUDO systemctl disable --now prometheus >/dev/null 2>&1 || true
  $SUDO pkill -x prometheus >/dev/null 2>&1 || true
fi
