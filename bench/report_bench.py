"""Report generation and page rendering on a detector-shaped synthetic run.

    python bench/report_bench.py [--ops 200] [--inputs 10] [--values 4096] [--keep DIR]

A YOLO-style graph of about OPS operators and three backends, one of which adds ±1 in one
stage and passes it on (tests/synthetic_graph.py). Prints the time of write_reports (summary.json, junit.xml, report.html,
plots, Model Explorer overlays) and, with Chromium on PATH, how long report.html takes to load
and lay out in headless Chromium (the issue asks for under a second). The share of a real diff
that report generation takes is printed by bench/diff_bench.py.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from simrun.analysis.policy import Policy
from simrun.analysis.result import DiffResult, exit_code
from simrun.report import write_reports

# The synthetic detector is shared with the report tests.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from synthetic_graph import synthetic_run  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine  # noqa: E402

_PROBE = """<script>
window.addEventListener('load', () => { setTimeout(() => {
  const t = performance.getEntriesByType('navigation')[0];
  const out = document.createElement('pre'); out.id = 'timing';
  out.textContent = JSON.stringify({load: t.loadEventStart, boxes: document.querySelectorAll('svg.opgraph rect').length,
                                    rows: document.querySelectorAll('table.agg tr').length});
  document.body.appendChild(out); }, 0); });
</script></body>"""


def browser_load_ms(html: Path, tmp: Path) -> dict | None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if not browser:
        return None
    probe = tmp / "probe.html"
    probe.write_text(html.read_text(encoding="utf-8").replace("</body>", _PROBE), encoding="utf-8")
    cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
           f"--user-data-dir={tmp / 'profile'}", "--window-size=1400,900", "--dump-dom", probe.as_uri()]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        dom = proc.communicate(timeout=120)[0].decode(errors="replace")
    except subprocess.TimeoutExpired:
        return None
    finally:
        if proc.poll() is None:                             # the browser and its renderers
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    match = re.search(r'<pre id="timing">(.*?)</pre>', dom)
    return json.loads(match.group(1)) if match else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ops", type=int, default=200)
    ap.add_argument("--inputs", type=int, default=10)
    ap.add_argument("--values", type=int, default=4096)
    ap.add_argument("--keep", type=Path, help="write the reports here (default: a temporary directory)")
    ap.add_argument("--no-browser", action="store_true", help="skip the Chromium load (tests/test_bench.py)")
    args = ap.parse_args()
    run = synthetic_run(args.ops, args.inputs, args.values)
    verdict = Policy.default().evaluate(run)
    with tempfile.TemporaryDirectory() as tmp:
        out = args.keep or Path(tmp) / "report"
        t = time.perf_counter()
        paths = write_reports(DiffResult(run, verdict, exit_code(run, verdict)), out)
        reports_s = time.perf_counter() - t
        size = paths["html"].stat().st_size
        print(f"{len(run.model.ops)} operators x {args.inputs} inputs x 3 backends ({args.values} int8 values a layer); "
              f"{machine()}, load average {os.getloadavg()[0]:.1f}")
        print(f"write_reports        {reports_s:6.2f} s   report.html {size / 1024:.0f} KiB, "
              f"{len(paths['model_explorer'])} Model Explorer overlays")
        if args.no_browser:
            print("browser load         skipped: --no-browser")
            return
        # The median of three loads: one load on a busy machine says little.
        loads = [browser_load_ms(paths["html"], Path(tmp)) for _ in range(3)]
        timing = None if None in loads else sorted(loads, key=lambda t: t["load"])[1]
        if timing is None:
            print("browser load         (chromium not on PATH, or it did not load the page within 120 s)")
        else:
            fastest = min(t["load"] for t in loads) / 1000
            print(f"browser load         {timing['load'] / 1000:6.2f} s   median of 3 (fastest {fastest:.2f} s): headless "
                  f"Chromium, navigation start to load event (parse, style, layout); {timing['boxes']} graph boxes, "
                  f"{timing['rows']} layer-table rows")


if __name__ == "__main__":
    main()
