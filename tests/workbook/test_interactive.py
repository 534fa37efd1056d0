"""A notebook opened in JupyterLab runs its kernel in notebooks/: it must still use the project's result store
and data folder, the ones run_all.sh fills, and show a progress bar while runs compute."""

import json
import os
from pathlib import Path

from jupyter_client.manager import start_new_kernel

from prunelab.workbook.grids import PROGRESS_FILE, RunProgress, WorkbookParams, store_path

REPO = Path(__file__).resolve().parents[2]


def _run_in_kernel(code: str, cwd: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("PRUNELAB_RESULTS", "PRUNELAB_DATA", PROGRESS_FILE)}
    manager, client = start_new_kernel(kernel_name="python3", cwd=str(cwd), env=env)
    try:
        reply = client.execute_interactive(code, timeout=120, output_hook=(seen := []).append)
        assert reply["content"]["status"] == "ok", reply["content"]
        text = "".join(m["content"].get("text", "") for m in seen if m["msg_type"] == "stream")
        return json.loads(text.strip().splitlines()[-1])
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)


def test_a_kernel_started_in_the_notebooks_folder_finds_the_projects_store_and_data():
    found = _run_in_kernel(
        "import json, os\n"
        "from prunelab import workbook\n"
        "params = workbook.WorkbookParams.from_namespace({'result_dir': 'results'})\n"
        "print(json.dumps({'store': params.result_dir, 'data': os.environ['PRUNELAB_DATA'], 'cwd': os.getcwd()}))",
        REPO / "notebooks")
    assert Path(found["cwd"]) == REPO / "notebooks"
    assert Path(found["store"]) == REPO / "results" and Path(found["data"]) == REPO / "data"


def test_the_environment_and_absolute_paths_name_other_stores(tmp_path, monkeypatch):
    assert store_path(str(tmp_path / "mine")) == str(tmp_path / "mine")
    monkeypatch.setenv("PRUNELAB_RESULTS", str(tmp_path / "shared"))
    assert store_path("results") == str(tmp_path / "shared")
    monkeypatch.delenv("PRUNELAB_RESULTS")
    monkeypatch.chdir(tmp_path)  # outside any checkout: the working directory, as before
    assert store_path("results") == "results"
    monkeypatch.chdir(REPO / "lib" / "prunelab")
    assert WorkbookParams.from_namespace({}).result_dir == str(REPO / "results")


def test_an_interactive_run_advances_a_bar_and_a_batch_run_writes_lines(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv(PROGRESS_FILE, raising=False)
    with RunProgress(2) as shown:
        shown.log("  [1/2] mnist/fc rand c=1: top-1 90.00% in 2 s")
        shown.log("3 runs: 1 already complete, 2 to run (local).")  # not a finished run: no step
        assert shown.bar is not None and shown.bar.n == 1
    monkeypatch.setenv(PROGRESS_FILE, str(tmp_path / "progress.txt"))
    with RunProgress(2) as shown:
        assert shown.bar is None
        shown.log("  [1/2] mnist/fc rand c=1: top-1 90.00% in 2 s")
    assert (tmp_path / "progress.txt").read_text() == "[1/2] mnist/fc rand c=1: top-1 90.00% in 2 s\n"
    assert capsys.readouterr().out == ""
