"""The run folder as a book: executed notebooks cleaned for reading, rendered to HTML, and an index.

A notebook executed by papermill keeps its outputs but not the live state of its widgets. Opened
later, a widget output shows a repr such as ``VBox(children=(...))`` or "Error displaying widget:
model not found". So after each notebook the reproduction

1. ``clean_executed`` — drops the widget views from the outputs, keeping what can be shown without a
   kernel: the static snapshot the explorers put beside their view (``viz.StaticSnapshot``), or
   nothing for a widget that has none (a widget repr helps no reader); drops the saved widget state
   and the jupytext pairing (saving a run's notebook in JupyterLab must not write a ``.py`` beside it);
2. ``render_html`` — writes ``<stem>.html`` with nbconvert (figures embedded, no kernel needed);
3. ``write_index`` — writes ``index.html``: the notebooks in order with their timings, links to both
   copies, and the tables of ``summary.md``.

Taught nowhere: it is how the executed book of a run (``simpleseg-lite reproduce``) is made.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

import nbformat

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def clean_notebook(nb) -> int:
    """Remove widget views (and their repr-only outputs) from ``nb`` in place; returns how many."""
    removed = 0
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        kept = []
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            if WIDGET_VIEW in data:
                removed += 1
                data.pop(WIDGET_VIEW)
                if set(data) <= {"text/plain"}:
                    continue  # only a widget repr left: nothing a reader can use
                if "text/plain" in data:  # the repr (``VBox(children=...``) says nothing to a reader either
                    data["text/plain"] = "[an interactive widget: run the notebook to use it]"
            kept.append(out)
        cell.outputs = kept
    nb.metadata.pop("widgets", None)
    jupytext_meta = nb.metadata.get("jupytext", {})
    jupytext_meta.pop("formats", None)
    if not jupytext_meta:
        nb.metadata.pop("jupytext", None)
    return removed


def clean_executed(path: str | Path) -> int:
    """``clean_notebook`` on an executed notebook file, rewritten in place."""
    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    removed = clean_notebook(nb)
    nbformat.write(nb, path)
    return removed


def render_html(path: str | Path) -> Path:
    """``<stem>.html`` beside the notebook (nbconvert's lab template; streams coalesced, so a text
    progress bar shows its last state only)."""
    from nbconvert import HTMLExporter
    from traitlets.config import Config

    path = Path(path)
    config = Config()
    config.CoalesceStreamsPreprocessor.enabled = True
    body, _ = HTMLExporter(config=config, template_name="lab").from_filename(str(path))
    target = path.with_suffix(".html")
    target.write_text(body, encoding="utf-8")
    return target


def image_outputs(nb) -> int:
    """Figures in an executed notebook: ``image/png`` outputs plus inline ``<img>`` snapshots."""
    count = 0
    for cell in nb.cells:
        for out in cell.get("outputs", []) if cell.cell_type == "code" else []:
            data = out.get("data", {})
            count += "image/png" in data or "<img" in str(data.get("text/html", ""))
    return count


def _markdown_html(text: str) -> str:
    import mistune  # nbconvert's own markdown renderer

    return mistune.create_markdown(plugins=["table"])(text)


def write_index(run_dir: str | Path, order: list[str], timings: dict, preset: str | None = None) -> Path:
    """``index.html`` of a run folder: notebooks in ``order`` (finished ones linked), timings, and the
    tables of ``summary.md`` when it exists."""
    run_dir = Path(run_dir)
    rows = []
    for stem in order:
        page, nb_file = run_dir / f"{stem}.html", run_dir / f"{stem}.ipynb"
        figures = image_outputs(nbformat.read(nb_file, as_version=4)) if nb_file.is_file() else None
        name = f"<a href='{stem}.html'>{html.escape(stem)}</a>" if page.is_file() else html.escape(stem)
        seconds = timings.get(stem)
        link = f"<a href='{stem}.ipynb'>.ipynb</a>" if nb_file.is_file() else "not run yet"
        rows.append(f"<tr><td>{name}</td><td>{'' if seconds is None else f'{seconds:.1f} s'}</td>"
                    f"<td>{'' if figures is None else figures}</td><td>{link}</td></tr>")
    summary = run_dir / "summary.md"
    tables = _markdown_html(summary.read_text()) if summary.is_file() else "<p>No summary yet.</p>"
    total = sum(v for v in timings.values() if isinstance(v, (int, float)))
    table_rows = "\n".join(rows)
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>simpleseg-lite run {html.escape(run_dir.name)}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:980px;margin:2em auto;padding:0 1em;line-height:1.45}}
table{{border-collapse:collapse;margin:1em 0;display:block;overflow-x:auto}}td,th{{border:1px solid #ccc;padding:3px 8px;text-align:left}}
th{{background:#f3f3f3}}code{{background:#f6f6f6}}</style></head>
<body><h1>simpleseg-lite — run <code>{html.escape(run_dir.name)}</code></h1>
<p>Preset <b>{html.escape(str(preset))}</b>. Each notebook was executed with papermill; its page needs no kernel.
Notebook time {total / 60:.1f} min in all.</p>
<table><tr><th>notebook</th><th>time</th><th>figures</th><th>executed copy</th></tr>
{table_rows}</table>
{tables}
</body></html>
"""
    target = run_dir / "index.html"
    target.write_text(page, encoding="utf-8")
    return target
