"""The run folder as a book: widget views give way to their snapshots, pages render, the index links."""

import json

import nbformat
import pytest

from simpleseg_lite import book

VIEW = {"model_id": "abc", "version_major": 2, "version_minor": 0}


def _nb(outputs):
    nb = nbformat.v4.new_notebook()
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}}}
    nb.metadata["jupytext"] = {"formats": "ipynb,py:percent"}
    nb.cells.append(nbformat.v4.new_code_cell("x", outputs=outputs))
    return nb


@pytest.mark.parametrize("data, kept", [
    # an explorer: its static snapshot stays, the view goes
    ({book.WIDGET_VIEW: VIEW, "text/html": "<img src='data:image/png;base64,AA'>", "text/plain": "VBox(...)"},
     ["text/html", "text/plain"]),
    # a widget with nothing but its repr (a progress bar): dropped entirely
    ({book.WIDGET_VIEW: VIEW, "text/plain": "HBox(children=(HTML(value=''), FloatProgress(...)))"}, None),
    # an ordinary figure: untouched
    ({"image/png": "iVBOR", "text/plain": "<Figure>"}, ["image/png", "text/plain"]),
])
def test_clean_notebook(data, kept):
    nb = _nb([nbformat.v4.new_output("display_data", data=data)])
    book.clean_notebook(nb)
    outs = nb.cells[0].outputs
    assert (sorted(outs[0]["data"]) if outs else None) == kept
    assert "VBox(" not in str(outs)
    assert "widgets" not in nb.metadata and "jupytext" not in nb.metadata  # no state, no pairing


def test_render_and_index(tmp_path):
    nb = _nb([nbformat.v4.new_output("display_data", data={"image/png": "iVBORw0KGgo=", "text/plain": "<Figure>"}),
              nbformat.v4.new_output("stream", name="stderr", text="eval:  10%|#  | 1/10\reval: 100%|###| 10/10\n")])
    nbformat.write(nb, tmp_path / "01_x.ipynb")
    page = book.render_html(tmp_path / "01_x.ipynb").read_text()
    assert "data:image/png;base64,iVBORw0KGgo=" in page
    assert "| 1/10" not in page and "| 10/10" in page  # a text bar keeps its last state only
    (tmp_path / "summary.md").write_text("| model | gIoU |\n|---|---|\n| SFT | 0.5 |\n")
    index = book.write_index(tmp_path, ["01_x", "02_y"], {"01_x": 3.25}, "smoke").read_text()
    assert "href='01_x.html'" in index and "3.2 s" in index and "<table>" in index and "<td>SFT</td>" in index
    assert "02_y" in index and "not run yet" in index
    assert json.loads(json.dumps(book.image_outputs(nb))) == 1
