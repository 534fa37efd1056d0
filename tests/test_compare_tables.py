"""scripts/compare_tables.py: two rendered folders' tables compared cell by cell, times left out."""

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _folder(tmp_path: Path, name: str, top1: str, seconds: str, extra_row: bool = False) -> Path:
    rows = f"<tr><th>0.5</th><td>{top1}</td><td>{seconds}</td></tr>"
    if extra_row:
        rows += "<tr><th>2</th><td>50.0 (n=1)</td><td>0.3</td></tr>"
    html = (f"<table><caption>Table B. Test top-1 (%)</caption><thead><tr><th></th><th>SNIP</th>"
            f"<th>inference time (s)</th></tr></thead><tbody>{rows}</tbody></table>")
    notebook = {"cells": [{"cell_type": "code", "outputs": [{"output_type": "display_data",
                                                               "data": {"text/html": [html]}}]}]}
    folder = tmp_path / name
    folder.mkdir()
    (folder / "01_tuning.ipynb").write_text(json.dumps(notebook))
    return folder


def _compare(before: Path, after: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / "scripts/compare_tables.py"), str(before), str(after)],
                          capture_output=True, text=True, timeout=60)


def test_a_moved_number_fails_and_a_moved_time_or_an_added_row_does_not(tmp_path):
    before = _folder(tmp_path, "before", "71.9 ± – (n=1)", "0.251")
    same = _compare(before, _folder(tmp_path, "same", "71.9 (n=1)", "0.377", extra_row=True))
    assert same.returncode == 0, same.stdout
    assert "Table B: 1 cells compared, 0 differ; 1 cells only after" in same.stdout  # its time is left out
    moved = _compare(before, _folder(tmp_path, "moved", "72.0 (n=1)", "0.251"))
    assert moved.returncode == 1 and "71.9" in moved.stdout and "72.0" in moved.stdout
