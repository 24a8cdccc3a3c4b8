#!/usr/bin/env bash
# The OS tools the test suite needs, installed when missing (root with apt-get), else one line saying what to
# install. `make test` runs this first, so `make test` alone passes on a fresh machine (CI calls make test too).
#   ffprobe (ffmpeg)   checks that downloads play
#   chromium           drives the dashboard's browser tests (Playwright never downloads a browser here)
#   jq                 runs in the grpcurl recipes of docs/ops.md
#   nginx, curl, aria2c, h2load   the benchmarks' origin and baselines (their smoke tests run in make test)
# MEDIADL_INSTALL_OS_TOOLS=0 turns the installer off (then missing tools only fail the check).
set -uo pipefail

missing=()
command -v ffprobe >/dev/null 2>&1 || missing+=(ffmpeg)
command -v chromium >/dev/null 2>&1 || missing+=(chromium chromium-driver)
command -v jq >/dev/null 2>&1 || missing+=(jq)
command -v nginx >/dev/null 2>&1 || missing+=(nginx-light)
command -v curl >/dev/null 2>&1 || missing+=(curl)
command -v aria2c >/dev/null 2>&1 || missing+=(aria2)
command -v h2load >/dev/null 2>&1 || missing+=(nghttp2-client)
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "${MEDIADL_INSTALL_OS_TOOLS:-1}" != "0" ] && [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing ${missing[*]} (the test suite needs them)"
  if (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null); then
    exit 0
  fi
  echo "installing ${missing[*]} with apt-get failed" >&2
fi
echo "make test needs OS packages that are missing: ${missing[*]} (as root: apt-get install ${missing[*]})" >&2
exit 1
