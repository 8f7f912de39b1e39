#!/usr/bin/env bash
# Installs everything the tests need on a fresh Debian machine:
# Debian's redis-server and redis-tools 7.0.15 (the reference peer, redis-cli and redis-benchmark).
# Safe to run again; does nothing when they are already there.
set -euo pipefail

need=()
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v redis-cli >/dev/null 2>&1 || need+=(redis-tools)
command -v redis-benchmark >/dev/null 2>&1 || need+=(redis-tools)

if [ ${#need[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  # Keep the package from starting a system redis-server on port 6379: tests start their own.
  policy=/usr/sbin/policy-rc.d
  had_policy=0
  [ -e "$policy" ] && had_policy=1
  if [ $had_policy -eq 0 ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
    $SUDO chmod +x "$policy"
  fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends redis-server redis-tools
  [ $had_policy -eq 1 ] || $SUDO rm -f "$policy"
fi

redis-server --version
redis-cli --version
