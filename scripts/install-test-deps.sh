#!/usr/bin/env bash
# Installs the Debian packages hostd's tests and benchmarks run against.
# Idempotent: packages already installed are not touched, and apt-get is
# not called at all when nothing is missing. Each file in scripts/deps/
# lists the packages one part of hostd needs, one per line ('#' comments).
set -euo pipefail
cd "$(dirname "$0")"

mapfile -t wanted < <(cat deps/*.txt | sed -e 's/#.*//' -e 's/[[:space:]]//g' | grep -v '^$' | sort -u)
missing=()
for p in "${wanted[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing+=("$p")
	fi
done
if ((${#missing[@]} == 0)); then
	echo "install-test-deps: all ${#wanted[@]} packages present"
	exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
	SUDO=sudo
else
	SUDO=
fi
echo "install-test-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-test-deps: installed ${#missing[@]} packages"
