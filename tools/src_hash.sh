#!/usr/bin/env bash
# Prints the hash of everything the colcon build of this package depends on (messages, services,
# Python modules, installed data, CMakeLists.txt, package.xml, the pinned requirements). The
# bootstrap rebuilds when it changes; tests/test_foundation.py reads the bootstrap's build log only
# when the build was of these very sources.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
req_hash=$(cat requirements.txt constraints.txt 2>/dev/null | sha256sum | cut -d' ' -f1)
(find msg srv scripts launch config policies calibration robot_stack -type f \
  \( -name '*.msg' -o -name '*.srv' -o -name '*.py' -o -name '*.yaml' -o -name '*_node' -o -name 'robot-stack' -o -name '*.json' \) \
  -not -path '*/__pycache__/*' | LC_ALL=C sort | xargs sha256sum; sha256sum CMakeLists.txt package.xml; echo "$req_hash") \
  | sha256sum | cut -d' ' -f1
