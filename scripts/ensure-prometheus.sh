#!/usr/bin/env bash
# Install Debian's prometheus package (server and promtool) when it is missing.
# Tests start their own server on 127.0.0.1; nothing is started here.
set -euo pipefail
if command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" != "0" ]; then
    echo "prometheus and promtool are missing; install them with: sudo apt-get install -y prometheus" >&2
    exit 1
fi
echo "Installing Debian's prometheus package (server and promtool) for the tests..."
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends prometheus >/dev/null
# The package's service is not needed: tests start their own server on a free port.
if command -v systemctl >/dev/null 2>&1; then
    systemctl stop prometheus >/dev/null 2>&1 || true
fi
