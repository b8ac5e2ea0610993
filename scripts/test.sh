#!/usr/bin/env bash
# Runs the pytest and Robot Framework suites and prints one closing line
# covering both: "N passed, N failed, N skipped". Exits non-zero if either
# suite failed. TFLM-dependent tests skip (with their reason) unless
# SIMRUN_SOURCES_DIR points at local source trees.
set -uo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
out=${SIMRUN_TEST_OUT:-build/test-results}
mkdir -p "$out"

$PYTHON -m pytest -q -rs --junitxml="$out/pytest.xml" "$@"
pytest_rc=$?

# The scenario kept in robot_tests/expected_failures fails on purpose (tests/test_robot.py runs it).
$PYTHON -m robot --outputdir "$out/robot" --xunit xunit.xml --consolewidth 100 --exclude expected-failure robot_tests/
robot_rc=$?

# Counts come from both JUnit files, so the closing line is the same
# whichever runner failed.
$PYTHON - "$out/pytest.xml" "$out/robot/xunit.xml" <<'PY'
import sys, xml.etree.ElementTree as ET
passed = failed = skipped = 0
for path in sys.argv[1:]:
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError) as err:
        print(f"test.sh: no results from {path}: {err}")
        failed += 1
        continue
    for case in root.iter("testcase"):
        kinds = {child.tag for child in case}
        if kinds & {"failure", "error"}:
            failed += 1
        elif "skipped" in kinds:
            skipped += 1
        else:
            passed += 1
print(f"{passed} passed, {failed} failed, {skipped} skipped")
PY

# pytest's 5 means "no tests collected": that is a failure here, not a pass.
[ "$pytest_rc" -eq 0 ] && [ "$robot_rc" -eq 0 ]
