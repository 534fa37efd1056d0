"""The workbook: papermill runs the notebooks on the smoke profile, run_all.sh renders them."""

import json
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pandas as pd
import yaml

from prunelab.data.catalog import source_words
from prunelab.runs.int8 import FP32_COMPILED
from prunelab.runs.store import iter_records, load_table
from prunelab.workbook.amp_memory import amp_memory
from prunelab.workbook.collapses import VERDICTS, collapse_table
from prunelab.workbook.findings import collapses, tuning_result
from prunelab.workbook.grids import records_table
from prunelab.workbook.measurement_tables import RUN_TIME, timed_step_heading
from prunelab.workbook.numbers import Span, ratio_text, significant, time_cell
from prunelab.workbook.sparse_tables import kernels_differ, time_lines
from prunelab.workbook.style import column_order
from prunelab.workbook.tables import stand_in_banner
from prunelab.workbook.tracing_findings import design_speed, trace_summary

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))
CIFAR_STAND_IN = "CIFAR-10 / ResNet20 (synthetic stand-in: pipeline check)"
MNIST_STAND_IN = "MNIST / FC (synthetic stand-in: pipeline check)"
PRUNER_COLUMNS = ["Rand", "Mag", "SNIP", "GraSP", "SynFlow (1 round)", "SynFlow (100 rounds)"]


def test_notebooks_in_git_carry_no_outputs_and_one_parameters_cell():
    assert {"01_tuning.ipynb", "02_tracing.ipynb", "03_compression.ipynb", "04_quantization.ipynb"} <= \
        {p.name for p in NOTEBOOKS}
    for path in NOTEBOOKS:
        cells = json.loads(path.read_text())["cells"]
        code = [c for c in cells if c["cell_type"] == "code"]
        assert all(not c["outputs"] and c["execution_count"] is None for c in code), path.name
        tagged = [c for c in cells if "parameters" in c.get("metadata", {}).get("tags", [])]
        assert len(tagged) == 1, path.name
        ids = [c.get("id") for c in cells]  # nbformat 4.5 cells need ids: else every run warns on stderr
        assert all(ids) and len(set(ids)) == len(ids), path.name


def test_tables_and_figures_are_numbered_in_the_order_the_pdf_prints_them():
    """The PDF prints the notebooks in file order, so the first caption of each table or figure must follow it;
    and a table or figure has one caption (an introduction that opens "Table J. " reads as a second one). A figure
    named by a letter ("Figure A") draws that table's runs: it comes after the table, outside the figures' numbers."""
    tables, figures, captions = [], [], []
    for path in NOTEBOOKS:
        text = "".join("".join(c["source"]) for c in json.loads(path.read_text())["cells"])
        for kind, label in re.findall(r"\b(Table|Figure) ([A-Z]\d?|\d+[a-z]?)\. ", text):
            captions.append(f"{kind} {label}")
            found = tables if kind == "Table" else figures
            if label not in found:
                found.append(label)
            assert kind == "Table" or label[0].isdigit() or label in tables, f"Figure {label} before Table {label}"
    assert len(set(captions)) == len(captions), sorted(c for c in captions if captions.count(c) > 1)
    letters = list(dict.fromkeys(label[0] for label in tables))  # "A2" goes with Table A
    assert letters == [chr(ord("A") + i) for i in range(len(letters))] and len(letters) >= 12
    numbers = [int(re.match(r"\d+", label).group()) for label in figures if label[0].isdigit()]
    assert sorted(set(numbers)) == list(range(1, max(numbers) + 1)) and numbers == sorted(numbers)


def test_no_notebook_text_shows_a_reader_a_parameters_code_name():
    """The markdown prints in the report: a parameter is said in words ("the pruner this task focuses on"), not by
    the name the code gives it (`focus_pruner`), which the report's reader never sees set."""
    for path in NOTEBOOKS:
        cells = json.loads(path.read_text())["cells"]
        (parameters,) = [c for c in cells if "parameters" in c.get("metadata", {}).get("tags", [])]
        names = re.findall(r"^(\w+) *=", "".join(parameters["source"]), re.M)
        text = "".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
        shown = [n for n in names if f"`{n}`" in text or ("_" in n and re.search(rf"\b{n}\b", text))]
        assert names and not shown, (path.name, shown)


def test_every_profile_has_parameters_for_every_notebook():
    for profile in ("smoke", "quick", "full"):
        for path in NOTEBOOKS:
            params = yaml.safe_load((REPO / "params" / profile / f"{path.stem}.yaml").read_text())
            assert params["profile"] == profile
    assert yaml.safe_load((REPO / "params/full/01_tuning.yaml").read_text())["post_epochs"] == 100
    assert yaml.safe_load((REPO / "params/smoke/01_tuning.yaml").read_text())["data_source"] == "synthetic"


#: parameters that say where runs are computed, not what they compute: a profile may leave them at the default
WHERE_TO_RUN = {"executor", "workers", "slurm", "wait", "fuse"}


def _cell_defaults(path: Path) -> dict:
    """The values a notebook's parameters cell assigns (what a notebook run by hand in JupyterLab uses)."""
    import ast

    cells = json.loads(path.read_text())["cells"]
    source = "".join(next(c for c in cells if "parameters" in c.get("metadata", {}).get("tags", []))["source"])
    return {node.targets[0].id: ast.literal_eval(node.value) for node in ast.parse(source).body
            if isinstance(node, ast.Assign)}


def test_a_notebook_run_by_hand_uses_the_quick_profile_and_other_profiles_set_every_parameter():
    for path in NOTEBOOKS:
        defaults = _cell_defaults(path)
        quick = yaml.safe_load((REPO / "params/quick" / f"{path.stem}.yaml").read_text())
        assert {k: defaults[k] for k in quick} == quick, path.name  # "Run All" in JupyterLab computes quick
        for profile in ("smoke", "full"):  # papermill injects these over the quick defaults: none may leak through
            values = yaml.safe_load((REPO / "params" / profile / f"{path.stem}.yaml").read_text())
            assert set(defaults) - WHERE_TO_RUN <= set(values), (profile, path.name, set(defaults) - set(values))


def _run_all(*args, timeout=900):
    return subprocess.run(["bash", str(REPO / "run_all.sh"), *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, cwd=REPO)


def _outputs(notebook: Path) -> list[dict]:
    return [o for c in json.loads(notebook.read_text())["cells"] for o in c.get("outputs", [])]


def _html_tables(notebook: Path) -> dict[str, str]:
    """Caption -> table HTML for every styled table in an executed notebook."""
    tables = {}
    for o in _outputs(notebook):
        text = "".join(o.get("data", {}).get("text/html", ""))
        match = re.search(r"<caption>(.*?)</caption>", text)
        if match:
            tables[match.group(1)] = text
    return tables


def _figures(nb) -> int:
    """Figures in a notebook's outputs: each an ``<img>`` with its alternative text (workbook.show_figure)."""
    html = ("".join(o.get("data", {}).get("text/html", "")) for o in _outputs(nb))  # a string or a list of lines
    return sum(h.startswith("<img alt=") for h in html)


def _columns(table_html: str) -> list[str]:
    return re.findall(r'class="col_heading[^"]*" >(.*?)</th>', table_html)


def _rows(table_html: str) -> list[str]:
    return re.findall(r'class="row_heading[^"]*"[^>]*>(.*?)</th>', table_html)


def _markdown(nb: Path) -> str:
    """Every Markdown output of an executed notebook (the findings and key results)."""
    return "".join("".join(o.get("data", {}).get("text/markdown", "")) for o in _outputs(nb))


def _store_table(results: Path, keep) -> pd.DataFrame:
    """The notebooks' table (:func:`.grids.records_table`) of the store's records whose configuration
    ``keep`` accepts."""
    return records_table(r for r in iter_records(results) if keep(r.config))


def test_run_all_smoke_renders_every_notebook_and_an_index(smoke):
    proc, out, _ = smoke
    assert proc.returncode == 0, proc.stderr[-3000:]
    for name in ("01_tuning", "02_tracing", "03_compression", "04_quantization"):
        page = (out / f"{name}.html").read_text()
        assert "data:image/png;base64," in page, name  # figures inline
        assert "No description has been provided" not in page, name  # nbconvert's stand-in alternative text
        assert "SYNTHETIC STAND-IN DATA" in page
        assert "import prunelab" not in page and "from prunelab import" not in page  # code hidden
    assert "Alternative text is missing" not in proc.stdout + proc.stderr
    assert "without encryption" not in proc.stdout + proc.stderr  # the kernels' connections are encrypted
    index = (out / "index.html").read_text()
    for name in ("01_tuning", "02_tracing", "03_compression", "04_quantization"):
        assert f'href="{name}.html"' in index
    assert all(f"Table {letter}" in index for letter in "AEHJ") and "SYNTHETIC STAND-IN DATA" in index
    assert index.index("Key results") < index.index("Table A") and "<details><summary>Settings" in index
    assert "[failed]" not in index


def _fused_networks(stdout: str) -> list[tuple[int, int]]:
    """Each fused network the progress lines announce, as (runs, of them pre-training)."""
    found = re.findall(r"(?:^|; )fused: (\d+) runs('|(?: \((\d+) pre-training\)))?", stdout, re.M)
    return [(int(n), int(n) if mark == "'" else int(pre or 0)) for n, mark, pre in found]


def _fused_size(step: str) -> int | None:
    match = re.match(r"fused \((\d+) runs\)", str(step))
    return int(match.group(1)) if match else None


def test_the_smoke_render_trains_fused_groups_and_shares_pretraining(smoke):
    proc, _, results = smoke
    networks = _fused_networks(proc.stdout)
    assert networks and all(n >= 2 for n, _ in networks), networks  # the smoke profile asks for fuse: on
    assert any(0 < pre < n for n, pre in networks), networks  # Mag's pre-trainings beside other runs' training
    runs = load_table(results)
    runs = runs[runs["experiment"] == "singleshot"]
    # every fused network's runs name it in their records (the pre-trainings' in theirs), and nothing else claims
    # to be fused (in the smoke profile every phase a network trains ends with it)
    post, pre = Counter(), Counter()
    for n, pretraining in networks:
        post[n] += n - pretraining
        pre[n] += pretraining
    assert Counter(s for s in map(_fused_size, runs["train_step"]) if s) == +post
    shared = [json.loads(path.read_text())["train_step"] for path in (results / "pretrain").glob("*/summary.json")]
    assert Counter(s for s in map(_fused_size, shared) if s) == +pre
    # Task 1's two Mag runs of CIFAR-10 / ResNet20 share one pre-training
    mag = runs[(runs["pruner"] == "mag") & (runs["dataset"] == "cifar10")]
    assert len(mag) >= 2 and mag["pretrain_record"].nunique() == 1
    assert (results / "pretrain" / mag["pretrain_record"].iloc[0] / "COMPLETE").is_file()


def test_tuning_notebook_tables_and_figures(smoke):
    _, out, results = smoke
    nb = out / "01_tuning.ipynb"
    tables = _html_tables(nb)
    caption_a, table_a = next((k, v) for k, v in tables.items() if k.startswith("Table A"))
    assert _columns(table_a) == ["Unpruned"] + PRUNER_COLUMNS  # the unpruned reference first
    assert _rows(table_a) == ["CIFAR-10 / ResNet20 (synthetic stand-in: pipeline check)",
                              "MNIST / FC (synthetic stand-in: pipeline check)"]
    assert re.search(r">\d+\.\d</td>", table_a)  # smoke: one seed, so no spread
    assert "(n=" not in table_a.split("</caption>")[1] and "one seed" in caption_a  # every cell's n: said once
    for letter in "BD":  # a block of rows per set-up: CIFAR-10 at smoke's two compressions, MNIST at its one
        table = next(v for k, v in tables.items() if k.startswith(f"Table {letter}"))
        assert _columns(table) == PRUNER_COLUMNS
        assert _rows(table) == [CIFAR_STAND_IN, "0.5", "1", MNIST_STAND_IN, "1"]
    # Tables C and C2: each pruner on dense kernels, then on the sparse kernels chosen per layer, laid out as
    # Table B, from the sparse records, a part per set-up (as Table A2), the later one labelled as continued
    table_c, table_c2 = (next(v for k, v in tables.items() if k.startswith(f"Table {name}.")) for name in ("C", "C2"))
    for name in ("C", "C2"):
        first = next(k for k in tables if k.startswith(f"Table {name}."))
        assert CIFAR_STAND_IN in first and _rows(tables[first]) == ["0.5", "1"]
        continued = next(k for k in tables if k.startswith(f"Table {name}, continued: {MNIST_STAND_IN}"))
        assert _rows(tables[continued]) == ["1"]  # Table C's part may go on with its own runs' counts
    for table in (table_c, table_c2):
        assert _columns(table) == PRUNER_COLUMNS
    sparse = load_table(results)
    sparse = sparse[sparse["experiment"] == "sparse"]
    assert len(sparse) == 18  # every pruned run of the notebook: 12 CIFAR-10 / ResNet20 and 6 MNIST / FC
    assert (sparse["dense_top1"] == sparse["sparse_top1"]).all()  # the same predictions, faster or not
    some = sparse[sparse["dataset"] == "cifar10"].iloc[0]
    assert time_lines(some["sparse_inference_s"] * 1e3, some["sparse_inference_spread_s"] * 1e3) in table_c2
    assert time_lines(some["dense_inference_s"] * 1e3, some["dense_inference_spread_s"] * 1e3) in table_c
    assert _figures(nb) >= 1
    text = _markdown(nb)
    # the findings of the store's runs: every set-up ran on the stand-in, so nothing is ranked or quoted
    table = _store_table(results, lambda c: c["experiment"] == "singleshot" and not c["save_trace"]
                         and not c["quantization"] and c["dataset"] in ("cifar10", "mnist"))
    result = tuning_result(table[table["compression"] > 0], table[table["compression"] == 0])
    assert result.stand_in == result.setups and set(result.setups) == {"CIFAR-10 / ResNet20", "MNIST / FC"}
    assert result.rankings == () and result.references == ()
    assert all(setup in text for setup in result.setups)
    # the sparse-kernel findings quote the store's speed-ups per set-up: in bold those beyond the noise
    for dataset, rows in sparse.groupby("dataset"):  # as sparse_table names a set-up and counts switched layers
        rows = rows.assign(setup=dataset, switched=rows["switched_layers"].map(len))
        real = rows[kernels_differ(rows)]
        quoted = Span.of((real if len(real) else rows)["speedup"]).words(ratio_text)
        assert (f"**{quoted}**" if len(real) else f"{quoted} as fast") in text
    # the numbers in Table B are the store's
    store = load_table(results)
    snip = store[(store["pruner"] == "snip") & (store["compression"] == 1.0) & (store["dataset"] == "cifar10")
                 & ~store["save_trace"].astype(bool) & (store["experiment"] == "singleshot")]
    assert f">{snip['top1'].item():.1f}</td>" in next(v for k, v in tables.items() if k.startswith("Table B"))


def test_compression_notebook_tables_and_figures(smoke):
    _, out, _ = smoke
    nb = out / "03_compression.ipynb"
    tables = _html_tables(nb)
    table_h = next(v for k, v in tables.items() if k.startswith("Table H"))
    assert table_h.count("blocks.") >= 20 and "fc" in table_h
    table_i = next(v for k, v in tables.items() if k.startswith("Table I"))
    assert _columns(table_i) == ["Rand", "Mag", "SNIP", "GraSP", "SynFlow (100 rounds)"]
    assert _figures(nb) >= 3
    text = _markdown(nb)
    assert re.search(r"`blocks.0.conv1` keeps 0\.\d{6}", text)
    assert re.search(r"together 0\.\d{6} \([\d,]+ of 4,608\)", text)  # block 0's two convolutions as one


def test_tracing_notebook_tables_and_figures(smoke):
    _, out, results = smoke
    nb = out / "02_tracing.ipynb"
    tables = _html_tables(nb)
    table_e = next(v for k, v in tables.items() if k.startswith("Table E"))
    assert len(_rows(table_e)) == 21 and table_e.count("blocks.") == 20  # stem, 18 in blocks, 2 shortcuts
    assert "time per FLOP (× median)" in table_e and "2.36" in table_e  # a 16-channel 3x3 layer's 2.36 M FLOPs
    breakdown = next(v for k, v in tables.items() if k.startswith("Table F"))
    assert "convolution" in breakdown
    designs = next(v for k, v in tables.items() if k.startswith("Table G"))
    assert "original" in designs and "folded" in designs
    assert "step time (ms)" in designs and " ± " in designs  # repeated steps: median ± half their range
    assert _figures(nb) == 2  # two timelines
    text = _markdown(nb)
    (trace_record,) = [p.parent for p in Path(results).glob("singleshot/*/trace.json")]
    assert json.loads((trace_record / "trace.json").read_text())["traceEvents"]
    # the findings quote the record's trace summary and its repeated steps of both designs
    trace = json.loads((trace_record / "summary.json").read_text())["trace"]
    summary = trace_summary(trace)
    assert trace["outputs_equal_to_original_design"] and "NOT identical" not in text
    assert f"**{summary.main_sink}**" in text and f"**{summary.conv_share:.1%}**" in text
    speed = design_speed(json.loads((trace_record / "summary.json").read_text()))
    assert speed.original.repeats == speed.folded.repeats == 10 and "over 10 steps" in text
    assert time_cell(1e3 * speed.original.median, 1e3 * speed.original.spread, "ms") in text
    assert time_cell(1e3 * speed.folded.median, 1e3 * speed.folded.spread, "ms") in text


def test_quantization_notebook_tables_and_figures(smoke):
    _, out, results = smoke
    nb = out / "04_quantization.ipynb"
    tables = _html_tables(nb)
    table_j = next(v for k, v in tables.items() if k.startswith("Table J"))
    assert [float(r) for r in _rows(table_j)] == [0.5, 1.0]
    headings = _columns(table_j)
    store = load_table(results)
    amp_runs = store[(store["experiment"] == "singleshot") & store["quantization"]]
    timings = [json.loads(p.read_text()) for p in Path(results).glob("amp-timing/*/summary.json")]
    memory = amp_memory(amp_runs, pd.DataFrame(timings).set_index("compression"))  # on a CPU, a timed pass's tensors
    metrics = (memory.heading, timed_step_heading(pd.DataFrame(timings)), RUN_TIME, "Top-1 (%)")
    for metric in metrics:
        assert f">{metric}</th>" in table_j  # the upper heading row, spanning both precisions
    # with and without, per metric; the smoke profile trains fused, and the labels say so
    assert sum(h.startswith("AMP bf16") for h in headings) == len(metrics)
    assert sum(h.startswith("fp32") for h in headings) == len(metrics)
    assert all(h.endswith("runs)") for h in headings if h.startswith(("AMP", "fp32")))
    table_l = next(v for k, v in tables.items() if k.startswith("Table L."))
    assert "int8 top-1 (%)" in _columns(table_l)
    assert "CIFAR-10 / ResNet20 (SYNTHETIC stand-in)" in table_l and "digits / Conv<" in table_l  # digits: real
    caption_l2, table_l2 = next((k, v) for k, v in tables.items() if k.startswith("Table L2."))  # the times
    assert {"fp32 eager", "fp32 compiled", "int8", "speed-up"} <= set(_columns(table_l2))
    assert "time difference" in _columns(table_l2) or "time difference" in caption_l2  # said once where constant
    assert _figures(nb) >= 1
    text = _markdown(nb)
    # Table J's times and the findings' ratios are the amp-timing records': fp32 and AMP steps taken in turn
    for t in timings:
        assert ratio_text(t["amp_train_s"] / t["fp32_train_s"]) in text
    # every pruned weight stayed zero in the store's int8 models, and the findings quote their speed-ups
    int8 = [json.loads(p.read_text()) for p in Path(results).glob("int8/*/summary.json")]
    assert all(s["pruned_weights_zero"] for s in int8) and "NOT" not in text
    for stand_in in (True, False):  # CIFAR-10 / ResNet20 on the stand-in, digits / Conv on real images
        # the findings give the range of the runs told apart beyond the noise, then the rest's: the lowest and the
        # highest speed-up each end one or the other, whichever runs the noise hides
        speedups = Span.of(s["speedup"] for s in int8 if s["stand_in"] == stand_in)
        assert ratio_text(speedups.low) in text and ratio_text(speedups.high) in text
        compiled = [s["speedup_over_compiled"] for s in int8
                    if s["stand_in"] == stand_in and s["int8_method"] == "pt2e"]
        if compiled:  # and over the fp32 model compiled as PT2E compiles int8, in Table L2 and the findings
            assert ratio_text(min(compiled)) in text and ratio_text(max(compiled)) in text
            assert all(time_cell(1e3 * s[f"{FP32_COMPILED}_s"], 1e3 * s[f"{FP32_COMPILED}_spread_s"], "") in table_l2
                       for s in int8 if s["int8_method"] == "pt2e")
    (amp,) = [t for t in timings if t["compression"] == 0.5]
    assert amp["amp_train_repeats"] >= 5 and amp["fp32_train_repeats"] >= 5
    step = time_cell(amp["amp_train_s"], amp["amp_train_spread_s"], "")
    assert f">{step}<" in table_j  # the cell whole: its heading gives the unit
    assert memory.source == "timed pass" and f">{significant(amp['amp_train_peak_mb'])}<" in table_j
    run = store[(store["experiment"] == "singleshot") & store["quantization"] & (store["compression"] == 0.5)]
    assert f"{run['top1'].item():.1f}" in table_j  # accuracy to one decimal
    assert len(list(Path(results).glob("int8/*/COMPLETE"))) == 4  # digits and ResNet20 at two compressions


def _completed(results) -> dict[Path, int]:
    """When each record of the store ``results`` was completed (its ``COMPLETE`` file's mtime)."""
    return {p: p.stat().st_mtime_ns for p in Path(results).glob("*/*/COMPLETE")}


def test_a_failing_notebook_is_rendered_with_its_error_and_the_next_reuses_the_stored_runs(smoke, tmp_path):
    """One render of two notebooks (each takes half a minute): 01 with a bad setting fails, named, before any run
    starts; 03 still runs after it and computes nothing, every run of it reused from the smoke render's store."""
    _, _, results = smoke
    before = _completed(results)
    assert len(before) >= 18
    params = tmp_path / "params"
    shutil.copytree(REPO / "params" / "smoke", params)
    broken = yaml.safe_load((params / "01_tuning.yaml").read_text())
    broken["overrides"] = {"mnist": {"compressions": [1.0, 9.0]}}  # a number, so the file passes its check
    (params / "01_tuning.yaml").write_text(yaml.safe_dump(broken))
    out = tmp_path / "out"
    proc = _run_all("--profile", "smoke", "--params", params, "--only", "01,03", "--out", out, "--result-dir", results)
    assert proc.returncode == 1 and "FAILED: 01_tuning" in proc.stderr
    # one line names the bad setting, raised before any run started: nothing of it is in the store
    (error,) = [line for line in proc.stderr.splitlines() if "UserError" in line]
    assert "01_tuning" in error and "compression 9.0" in error
    assert 9.0 not in load_table(results)["compression"].tolist() and "sweep" not in proc.stderr
    rendered = (out / "01_tuning.html").read_text()
    assert "UserError" in rendered and "compression 9.0" in rendered  # the error, rendered in the notebook's page
    assert not (out / "02_tracing.html").exists()  # --only took 01 and 03
    assert "[failed]" in (out / "index.html").read_text()
    # 03 ran after the failure, and re-executing it reused every run: none computed, no record written again
    assert (out / "03_compression.html").exists()
    streams = "".join("".join(o.get("text", "")) for o in _outputs(out / "03_compression.ipynb"))
    counts = [tuple(map(int, found)) for found in re.findall(r"(\d+) runs?: (\d+) computed, (\d+) reused", streams)]
    assert counts and all(computed == 0 and reused == runs > 0 for runs, computed, reused in counts), streams
    assert "[1/" not in streams  # no run's progress line: nothing trained
    assert _completed(results) == before


def test_the_html_render_reports_what_nbconvert_reports(tmp_path):
    """prunelab.workbook.render is nbconvert's command line: its warnings reach stderr, a failure exits
    non-zero (run_all.sh names the notebook then)."""
    import nbformat

    notebook = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("plot()")
    png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgYGD4DwABBAEAwS2OUAAAAABJRU5ErkJggg=="
    cell.outputs = [nbformat.v4.new_output("display_data", data={"image/png": png})]  # no alternative text
    notebook.cells = [cell]
    nbformat.write(notebook, tmp_path / "plot.ipynb")
    render = [sys.executable, "-m", "prunelab.workbook.render"]
    done = subprocess.run([*render, tmp_path / "plot.ipynb", "--output-dir", tmp_path], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0 and (tmp_path / "plot.html").exists(), done.stderr[-2000:]
    assert "Alternative text is missing on 1 image(s)" in done.stderr
    missing = subprocess.run([*render, tmp_path / "absent.ipynb", "--output-dir", tmp_path], capture_output=True,
                             text=True, timeout=120)
    assert missing.returncode != 0


def test_run_all_refuses_an_unknown_profile_or_option(tmp_path):
    assert _run_all("--profile", "nope").returncode == 2
    assert _run_all("--frobnicate").returncode == 2
    assert _run_all("--profile", "..").returncode == 2  # params/.. is a folder, not a profile
    for flag in ("--profile", "--only", "--out", "--result-dir", "--params"):  # a value missing: no endless loop
        assert _run_all(flag, timeout=30).returncode == 2 and _run_all("--estimate", flag, timeout=30).returncode == 2
    out = tmp_path / "out"
    assert _run_all("--only", "zzz", "--out", out).returncode == 2 and not out.exists()  # nothing written


def _row(**kw):
    base = dict(setup="MNIST / FC", label="SynFlow (1 round)", compression=1.0, top1=11.35, seed=1,
                majority_class_top1=11.35, collapsed_layers=["1.weight"], stand_in=False, dataset="mnist",
                data_source="real", data="real MNIST", train_examples=60000, test_examples=10000)
    return {**base, **kw}


def test_collapse_detection_and_its_explanation():
    table = pd.DataFrame([_row(), _row(seed=2, top1=11.35), _row(label="Rand", top1=95.96, collapsed_layers=[]),
                          _row(label="SNIP", top1=11.9, collapsed_layers=[])])
    found = collapse_table(table).reset_index()
    assert list(found["pruner"]) == ["SynFlow (1 round)", "SNIP"]
    assert found.iloc[0]["layers with no weights"] == "1" and found.iloc[0]["collapsed runs"] == "2 of 2"
    assert found.iloc[0]["top-1 (%)"] == "11.3 ± 0.0 (n=2)"
    assert list(found["verdict"]) == [VERDICTS["emptied, constant"], VERDICTS["constant"]]
    found = collapses(table)
    (cell,) = found.emptied
    assert (cell.label, cell.layers, cell.runs, cell.seeds) == ("SynFlow (1 round)", ("1",), 2, 2)
    assert [c.label for c in found.constant] == ["SNIP"] and found.stand_in == 0  # at chance, every layer kept
    assert stand_in_banner(table) is None
    assert "SYNTHETIC" in stand_in_banner(table.assign(stand_in=True, data_source="synthetic"))
    one = stand_in_banner(table.iloc[:1].assign(stand_in=True, data_source="synthetic"))
    assert re.search(r"\b1 of 1\b", one) is None  # a lone run is not counted "1 of 1"
    subset = stand_in_banner(table.assign(data_source="bundled", data=source_words("mnist", "bundled")))
    assert subset.count("<div") == 1  # the subset's banner alone: no stand-in banner beside it
    assert all(words in subset for words in ("MNIST / FC", source_words("mnist", "bundled"), "60,000", "10,000"))


def test_pruner_columns_follow_the_users_order():
    labels = ["SynFlow (100 rounds)", "GraSP", "Rand", "SynFlow (1 round)", "SNIP", "Mag"]
    assert column_order(labels) == PRUNER_COLUMNS
