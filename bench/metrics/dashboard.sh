#!/usr/bin/env bash
# bench/metrics/dashboard.sh: how many panels of a Grafana dashboard show
# data from hostd, and how many from Prometheus scraping node_exporter, on
# this machine.
#
# Runs bench/metrics/run.sh (hostd with only the metrics service, and the
# Debian node_exporter scraped by the Debian Prometheus, side by side) for
# DURATION seconds, then bench/metrics/dashcheck against both: every panel
# of the dashboard, rows' nested panels included, with its template
# variables resolved against each stack's own label values.
#
# Usage: bench/metrics/dashboard.sh DASHBOARD_JSON [DURATION_SECONDS=120] [INTERVAL=1s]
#
# Node Exporter Full (grafana.com dashboard 1860) is another project's
# file: keep it outside this repository.
set -euo pipefail
if [ $# -lt 1 ] || [ ! -f "$1" ]; then
	echo "usage: $0 DASHBOARD_JSON [DURATION_SECONDS] [INTERVAL]" >&2
	exit 2
fi
DASHBOARD=$(realpath "$1")
export DASHBOARD
exec bash "$(dirname "$0")/run.sh" "${2:-120}" "${3:-1s}"
