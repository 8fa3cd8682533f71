"""The notebooks run (smoke parameters, through the same papermill runner users call), and every
percent .py has an output-free .ipynb twin with the same cells."""

import json
from pathlib import Path

import jupytext
import nbformat
import pytest

from simpleseg_lite.reproduce import NOTEBOOKS, load_preset, reproduce

STEMS = sorted(p.stem for p in NOTEBOOKS.glob("[0-9][0-9]_*.py"))


@pytest.mark.parametrize("stem", STEMS)
def test_pair_in_sync_and_stripped(stem):
    py = jupytext.read(NOTEBOOKS / f"{stem}.py")
    ipynb_path = NOTEBOOKS / f"{stem}.ipynb"
    assert ipynb_path.is_file(), f"run: jupytext --to ipynb notebooks/{stem}.py"
    ipynb = json.loads(ipynb_path.read_text())
    assert [c.source for c in py.cells] == ["".join(c["source"]) for c in ipynb["cells"]], (
        f"{stem}.ipynb is stale: jupytext --sync notebooks/{stem}.py"
    )
    assert not any(c.get("outputs") for c in ipynb["cells"] if c["cell_type"] == "code")
    tagged = [c for c in py.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, "exactly one parameters cell"


def test_smoke_preset_covers_every_notebook():
    assert set(load_preset("smoke")) == set(STEMS)


@pytest.mark.slow
def test_reproduce_smoke(smoke_run):
    timings = json.loads((smoke_run / "timings.json").read_text())
    assert set(timings) == set(STEMS)
    for stem in STEMS:
        nb = json.loads((smoke_run / f"{stem}.ipynb").read_text())
        assert not any(o.get("output_type") == "error" for c in nb["cells"] for o in c.get("outputs", []))


def _draws(source: str) -> bool:
    """A cell that draws: it shows a matplotlib figure or builds an explorer widget."""
    return "plt.show()" in source or "_explorer(" in source


@pytest.mark.slow
@pytest.mark.parametrize("stem", STEMS)
def test_executed_notebook_keeps_its_figures(smoke_run, stem):
    """Every cell that draws has a picture among its outputs (an inline PNG, or an explorer's snapshot),
    whatever MPLBACKEND the test process has (conftest sets Agg)."""
    from simpleseg_lite.book import image_outputs

    nb = nbformat.read(smoke_run / f"{stem}.ipynb", as_version=4)
    drawing = [c for c in nb.cells if c.cell_type == "code" and _draws(c.source)]
    for cell in drawing:
        one = nbformat.v4.new_notebook(cells=[cell])
        assert image_outputs(one) >= 1, f"{stem}: a drawing cell has no image output:\n{cell.source[:300]}"
    assert image_outputs(nb) >= len(drawing)


@pytest.mark.slow
@pytest.mark.parametrize("stem", STEMS)
def test_executed_notebook_reads_without_a_kernel(smoke_run, stem):
    """The HTML page of each notebook exists, and neither it nor the .ipynb shows widget reprs or errors;
    no jupytext pairing is left in the run folder."""
    page = (smoke_run / f"{stem}.html").read_text()
    raw = (smoke_run / f"{stem}.ipynb").read_text()
    for text in (page, raw):
        assert "VBox(children" not in text and "HBox(children" not in text
        assert "Error displaying widget" not in text and "application/vnd.jupyter.widget-view+json" not in text
    assert '"formats"' not in raw
    assert f"href='{stem}.html'" in (smoke_run / "index.html").read_text()


@pytest.mark.slow
def test_failed_run_resumes_without_redoing(tmp_path, monkeypatch):
    import simpleseg_lite.reproduce as rp

    calls = []
    real = rp._notebook_source

    def flaky(stem, folder):
        calls.append(stem)
        if stem == STEMS[1] and calls.count(stem) == 1:
            raise FileNotFoundError("simulated failure")
        return real(stem, folder)

    monkeypatch.setattr(rp, "_notebook_source", flaky)
    monkeypatch.setattr(rp, "load_preset", lambda name: {s: {"SMOKE": True} for s in STEMS[:2]})
    with pytest.raises(RuntimeError, match="--resume"):
        reproduce("smoke", out=tmp_path / "run")
    reproduce("smoke", out=tmp_path / "run", resume=True)
    assert calls == [STEMS[0], STEMS[1], STEMS[1]]  # the finished notebook was not run again
