"""The GPU check's report: one JSON file that each step of ``benchmarks/gpu_check.sh`` extends
as soon as it ends, so a part cut off by its time limit still reports what it did.

``python3 benchmarks/gpu_report.py add REPORT --name N --part P --rc RC --seconds S --limit L
--log LOG [--junit XML] [--result JSON]`` appends one step and prints its verdict line
(``PASS name: ...`` / ``FAIL name: ...``); the exit status is 0 for PASS, 1 for FAIL. A pytest
step passes only if its JUnit file counts at least one passed test and no failure. Standard
library only: it runs before anything is installed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

TAIL_LINES = 15


def _load(path: Path) -> dict[str, Any]:
    if path.exists():
        return json.loads(path.read_text())
    return {"started": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "steps": []}


def _write(path: Path, report: dict[str, Any]) -> None:
    """Atomically: a reader (or a kill) never sees half a file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        json.dump(report, f, indent=1)
    os.replace(tmp, path)


def junit_counts(path: Path) -> dict[str, int]:
    """``{"tests", "passed", "failed", "errors", "skipped"}`` of a pytest JUnit XML file."""
    root = ET.parse(path).getroot()
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    counts = {k: sum(int(s.get(k, 0)) for s in suites)
              for k in ("tests", "failures", "errors", "skipped")}
    return {"tests": counts["tests"], "failed": counts["failures"], "errors": counts["errors"],
            "skipped": counts["skipped"],
            "passed": counts["tests"] - counts["failures"] - counts["errors"] - counts["skipped"]}


def add_step(report_path: Path, *, name: str, part: str, rc: int, seconds: float, limit: int,
             log: Path, junit: Path | None = None, result: Path | None = None) -> str:
    """Append one step to the report; returns its verdict line."""
    report = _load(report_path)
    text = log.read_text(errors="replace") if log.exists() else ""
    step: dict[str, Any] = {"name": name, "part": part, "rc": rc, "seconds": round(seconds, 1),
                            "limit": limit, "tail": text.splitlines()[-TAIL_LINES:]}
    verdict = "PASS" if rc == 0 else "FAIL"
    why = ""
    if rc in (124, 137):
        why = f"timed out after {limit} s"
    if junit is not None:
        if junit.exists():
            step["tests"] = counts = junit_counts(junit)
            if counts["passed"] == 0:
                verdict, why = "FAIL", "no test ran"
            elif counts["failed"] or counts["errors"]:
                verdict = "FAIL"
        else:
            verdict, why = "FAIL", why or "no test report (pytest did not finish)"
    if result is not None and result.exists():
        try:
            step["result"] = json.loads(result.read_text())
        except ValueError as exc:
            step["result"] = {"unreadable": str(exc)}
        if name == "env" and isinstance(step["result"], dict):
            report["machine"] = step["result"]
    step["status"] = verdict
    report["steps"].append(step)
    report["failed"] = sum(s["status"] != "PASS" for s in report["steps"])
    _write(report_path, report)
    last = step["tail"][-1][:140] if step["tail"] else ""
    label = f"{verdict} ({why})" if why else verdict
    return f"{label} {name}: rc={rc} ({seconds:.0f} s of {limit})  {last}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    add = sub.add_parser("add", help="append one step")
    add.add_argument("report", type=Path)
    add.add_argument("--name", required=True)
    add.add_argument("--part", required=True)
    add.add_argument("--rc", type=int, required=True)
    add.add_argument("--seconds", type=float, required=True)
    add.add_argument("--limit", type=int, required=True)
    add.add_argument("--log", type=Path, required=True)
    add.add_argument("--junit", type=Path)
    add.add_argument("--result", type=Path)
    args = parser.parse_args(argv)
    line = add_step(args.report, name=args.name, part=args.part, rc=args.rc,
                    seconds=args.seconds, limit=args.limit, log=args.log, junit=args.junit,
                    result=args.result)
    print(line)
    return 0 if line.startswith("PASS") else 1


if __name__ == "__main__":
    sys.exit(main())
