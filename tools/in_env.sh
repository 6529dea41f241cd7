#!/usr/bin/env bash
# Run a command inside the bootstrapped environment (see tools/env.sh).
set -euo pipefail
# shellcheck disable=SC1091
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/env.sh"
exec "$@"
