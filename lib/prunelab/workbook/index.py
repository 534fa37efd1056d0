"""The workbook's front page: index.html, from the executed notebooks of one profile."""

from __future__ import annotations

import html
import json
from pathlib import Path

from .glossary import glossary_html
from .startup import skip_unused_iri_grammar

KEY_RESULT = "key-result"  # the tag of a notebook's cells whose outputs are its key result


def notebook_failed(notebook: dict) -> bool:
    """Whether an executed notebook stopped on an error (papermill marks it, and error outputs show it)."""
    if (notebook.get("metadata", {}).get("papermill") or {}).get("exception"):
        return True
    return any(o.get("output_type") == "error" for c in notebook["cells"] for o in c.get("outputs", []))


def build_index(out_dir: str | Path, profile: str) -> Path:
    """``index.html``: the write-up's front page, from the executed notebooks in ``out_dir``.

    It opens with each task's key result (the outputs of cells tagged ``key-result``) and the terms folded away
    (:mod:`.glossary`), then for each
    notebook a link to its rendered HTML, whether it ran cleanly, its ``banner`` and ``key-table`` outputs,
    and its ``settings`` folded away.
    """
    out_dir = Path(out_dir)
    executed = sorted(p for p in out_dir.glob("[0-9][0-9]_*.ipynb"))
    notebooks = {p.stem: json.loads(p.read_text()) for p in executed}
    failed = [name for name, nb in notebooks.items() if notebook_failed(nb)]
    parts = [f"<h1>prunelab workbook — profile <code>{html.escape(profile)}</code></h1>"]
    if failed:
        parts.append('<p style="color:#a00"><b>Failed:</b> ' + ", ".join(html.escape(f) for f in failed) +
                     " (each is still rendered, with its error).</p>")
    titles = {name: notebook_title(nb, name) for name, nb in notebooks.items()}
    parts.append("<h2>Key results</h2><ul>")
    for name, nb in notebooks.items():
        result = "".join(tagged_outputs(nb, (KEY_RESULT,))) or "<p>(no key result: see the page)</p>"
        parts.append(f'<li><a href="{name}.html">{html.escape(titles[name])}</a>{result}</li>')
    parts.append("</ul><details><summary>Terms used in the report</summary>" + glossary_html() + "</details>")
    for name, nb in notebooks.items():
        status = "failed" if name in failed else "ok"
        parts.append(f'<h2><a href="{name}.html">{html.escape(titles[name])}</a> <small>[{status}]</small></h2>')
        parts.extend(tagged_outputs(nb, ("banner", "key-table")))
        settings = tagged_outputs(nb, ("settings",))
        if settings:
            parts.append("<details><summary>Settings</summary>" + "".join(settings) + "</details>")
    body = "\n".join(parts)
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>prunelab workbook ({html.escape(profile)})"
            "</title><style>body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}"
            "table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:3px 8px;"
            "text-align:right}caption{font-weight:bold;text-align:left}li{margin:.4em 0}</style></head>"
            f"<body>{body}</body></html>")
    path = out_dir / "index.html"
    path.write_text(page)
    return path


def notebook_title(notebook: dict, name: str) -> str:
    """The notebook's first Markdown line without its ``#`` (its heading), else ``name``."""
    return next(("".join(c["source"]).splitlines()[0].lstrip("# ") for c in notebook["cells"]
                 if c["cell_type"] == "markdown" and c["source"]), name)


def tagged_outputs(notebook: dict, tags: tuple[str, ...]) -> list[str]:
    """The HTML of the outputs of the cells carrying any of ``tags``, in order (see :func:`output_html`)."""
    return [piece for cell in notebook["cells"] if set(cell.get("metadata", {}).get("tags", [])) & set(tags)
            for output in cell.get("outputs", []) if (piece := output_html(output)) is not None]


def output_html(output: dict) -> str | None:
    """A display output as HTML: its ``text/html``, else its ``text/markdown`` rendered; None for the rest
    (streams, errors, plain text, a bare image), which the front page never shows."""
    from nbconvert.filters.markdown import markdown2html  # here, not at the top: _main skips a grammar first

    data = output.get("data", {})
    if "text/html" in data:
        return "".join(data["text/html"])
    if "text/markdown" in data:
        return markdown2html("".join(data["text/markdown"]))
    return None


def _main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description="Write index.html for a folder of executed notebooks.")
    parser.add_argument("out_dir")
    parser.add_argument("--profile", required=True)
    args = parser.parse_args(argv)
    skip_unused_iri_grammar()
    print(build_index(args.out_dir, args.profile))
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())
