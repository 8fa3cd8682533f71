"""``simpleseg-lite reproduce``: execute the numbered notebooks in order with papermill.

Each run gets its own folder (default ``papermill_runs/runs/<UTC date-time>-<preset>/``) holding the
executed notebooks, ``environment.json`` (versions, hardware), ``timings.json`` and ``state.json``
(which notebooks finished). A failing notebook stops the run with the path of its partly executed copy;
``--resume`` continues the same folder, skipping finished notebooks. Parameters come from
``papermill_runs/presets/<preset>.yaml``: notebook stem → the values papermill injects into the
notebook's ``parameters`` cell. A notebook whose parameters cell defines ``RUN_DIR`` also gets
``RUN_DIR`` = the run folder (unless the preset sets it), and may save its numbers there with
``report.save_notebook_metrics``; after each notebook they are merged into ``metrics.json`` and
``summary.md`` (keys documented in ``report``). ``{run}`` in a string parameter stands for the run folder, so one
notebook can read what an earlier one of the same run wrote (the full preset: 06 trains from ``{run}/full-sft``).
``overrides`` (``--set NOTEBOOK.NAME=VALUE``) change single parameters without editing a preset, and ``only``
(``--only``) runs a subset of its notebooks.

The run folder is also a book (``book``): after each notebook its widget views are replaced by their
static snapshots, it is rendered to ``<stem>.html``, and ``index.html`` links the pages in order with
their timings and the summary tables. Kernels always draw with matplotlib's inline backend, whatever
``MPLBACKEND`` the calling shell exports (``Agg`` there would silently drop every figure), and show no
widget progress bars for transformers' weight loading (``KERNEL_ENV``).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import re
import sys
import tempfile
import time
from pathlib import Path

from .report import collect_metrics

ROOT = Path(__file__).resolve().parent.parent
PRESETS = ROOT / "papermill_runs" / "presets"
NOTEBOOKS = ROOT / "notebooks"


# What every notebook kernel of a run gets in its environment (the kernel inherits this process's).
KERNEL_ENV = {
    "MPLBACKEND": "module://matplotlib_inline.backend_inline",  # figures become image outputs
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",  # transformers' loading bars are widgets: broken once saved
    "TOKENIZERS_PARALLELISM": "false",
}


def load_preset(name: str) -> dict:
    import yaml

    path = PRESETS / f"{name}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in PRESETS.glob("*.yaml"))
        raise FileNotFoundError(f"no preset {name!r} (looked for {path}); known presets: {known}")
    return yaml.safe_load(path.read_text()) or {}


def environment() -> dict:
    """Versions and hardware, written next to every run."""
    from importlib.metadata import PackageNotFoundError, version

    def v(pkg):
        try:
            return version(pkg)
        except PackageNotFoundError:
            return None

    env = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "packages": {p: v(p) for p in ("simpleseg-lite", "torch", "transformers", "trl", "peft", "pycocotools",
                                       "opencv-python-headless", "numpy", "papermill", "jupytext")},
    }
    try:
        import torch

        env["cuda"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
        # the widest vector kernels torch picked (e.g. AVX2, AVX512): runs trained under different ones round
        # differently, so their weights drift apart within noise (README, "Same machine, same bytes")
        env["torch_cpu_capability"] = torch.backends.cpu.get_cpu_capability()
    except ImportError:
        env["cuda"] = env["torch_cpu_capability"] = None
    return env


def cpu_model(cpuinfo: str = "/proc/cpuinfo") -> str:
    """The CPU's marketing name ("AMD EPYC 7B13", "Intel(R) Xeon(R) Processor"): the first "model name" line of
    ``cpuinfo`` on Linux, else ``platform.processor()``, else "unknown"."""
    try:
        for line in Path(cpuinfo).read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and value.strip():
                return value.strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _notebook_source(stem: str, folder: Path) -> Path:
    """The notebook to execute, built from the paired percent ``.py`` (the file humans edit) into
    ``folder``, so a run never depends on a stale ``.ipynb`` and never rewrites ``notebooks/``."""
    import jupytext

    py = NOTEBOOKS / f"{stem}.py"
    if not py.is_file():
        raise FileNotFoundError(f"notebook {stem} not found: expected {py}")
    target = folder / f"{stem}.ipynb"
    nb = jupytext.read(py)
    nb.metadata.get("jupytext", {}).pop("formats", None)  # no pairing inside run folders
    jupytext.write(nb, target)
    return target


def parameter_names(stem: str) -> set[str]:
    """Names assigned at the top level of a notebook's ``parameters`` cell (``NAME = ...`` lines)."""
    import jupytext

    cells = jupytext.read(NOTEBOOKS / f"{stem}.py").cells
    source = "\n".join(c.source for c in cells if "parameters" in c.metadata.get("tags", []))
    return set(re.findall(r"^([A-Za-z_]\w*)\s*=", source, flags=re.MULTILINE))


RUN_PLACEHOLDER = "{run}"


def with_run_folder(value, run: str | Path):
    """``value`` with ``{run}`` replaced by the run folder in every string, inside dicts and lists too."""
    if isinstance(value, str):
        return value.replace(RUN_PLACEHOLDER, str(run))
    if isinstance(value, dict):
        return {k: with_run_folder(v, run) for k, v in value.items()}
    if isinstance(value, list):
        return [with_run_folder(v, run) for v in value]
    return value


def _stems_named(name: str, stems: list[str]) -> list[str]:
    """``"*"`` → every stem; ``"05"`` or ``"05_sft"`` → that notebook. Unknown names raise with the choices."""
    if name == "*":
        return list(stems)
    hits = [s for s in stems if s == name or s.split("_", 1)[0] == name]
    if not hits:
        raise ValueError(f"no notebook {name!r} in this preset; choose from {stems} (or a number like 05, or *)")
    return hits


def parse_overrides(items: list[str], stems: list[str]) -> dict[str, dict]:
    """``["05_sft.FULL_MODEL=/models/qwen", "*.REFER_ROOT=/data/refer"]`` → ``{stem: {NAME: value}}``.

    VALUE is read as YAML (``10`` is an int, ``true`` a bool, ``{a: 1}`` a dict, anything else a string), except
    that ``1e-4`` is a float (YAML 1.1 wants ``1.0e-4``).
    NOTEBOOK is a stem, its number (``05``), or ``*``: every notebook whose parameters cell defines NAME. A name
    that no chosen notebook defines raises (papermill would inject it and the notebook would ignore it)."""
    import yaml

    out: dict[str, dict] = {}
    for item in items:
        target, eq, raw = item.partition("=")
        notebook, dot, name = target.partition(".")
        if not eq or not dot or not name.isidentifier():
            raise ValueError(f"--set {item!r}: expected NOTEBOOK.NAME=VALUE, e.g. 05_sft.SFT_STEPS=200 or "
                             f"*.REFER_ROOT=/data/refer")
        chosen = _stems_named(notebook, stems)
        having = [s for s in chosen if name in parameter_names(s)]
        if not having:
            known = sorted(set().union(*(parameter_names(s) for s in chosen)))
            raise ValueError(f"--set {item!r}: no parameter {name} in {chosen}; its parameters are {known}")
        value = yaml.safe_load(raw) if raw.strip() else ""
        if isinstance(value, str) and re.fullmatch(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+", value.strip()):
            value = float(value)  # YAML 1.1 reads 1e-4 (no dot) as a string; a learning rate means a number
        for stem in having:
            out.setdefault(stem, {})[name] = value
    return out


def reproduce(preset: str, out: str | Path | None = None, resume: bool = False, kernel: str = "python3",
              overrides: dict[str, dict] | None = None, only: list[str] | None = None) -> Path:
    """Run every notebook of a preset (or those in ``only``); return the run folder. ``overrides`` maps a
    notebook stem to parameters that replace the preset's. Raises ``RuntimeError`` on failure."""
    import papermill as pm
    from tqdm.std import tqdm

    from . import book

    plan = load_preset(preset)
    for stem, params in (overrides or {}).items():
        if stem not in plan:
            raise ValueError(f"override for {stem!r}, which is not in the {preset} preset ({list(plan)})")
        plan[stem] = {**(plan[stem] or {}), **params}
    if only is not None:
        keep = {s for name in only for s in _stems_named(name, list(plan))}
        plan = {stem: params for stem, params in plan.items() if stem in keep}
    if out is None:
        if resume:
            runs = sorted((ROOT / "papermill_runs" / "runs").glob(f"*-{preset}"))
            if not runs:
                raise FileNotFoundError(f"--resume: no earlier {preset} run under papermill_runs/runs/")
            out = runs[-1]
        else:
            stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%d-%H%M%S")
            out = ROOT / "papermill_runs" / "runs" / f"{stamp}-{preset}"
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    state_path, timings_path = out / "state.json", out / "timings.json"
    state = json.loads(state_path.read_text()) if resume and state_path.is_file() else {"finished": []}
    timings = json.loads(timings_path.read_text()) if resume and timings_path.is_file() else {}
    (out / "environment.json").write_text(json.dumps(environment(), indent=1))

    bar = tqdm(list(plan.items()), desc=f"reproduce {preset}", unit="notebook")
    for stem, params in bar:
        if stem in state["finished"]:
            continue
        bar.set_postfix_str(stem)
        executed = out / f"{stem}.ipynb"
        params = with_run_folder(dict(params or {}), out.resolve())
        (out / "metrics" / f"{stem}.json").unlink(missing_ok=True)  # this notebook's numbers start afresh
        start = time.perf_counter()
        saved_env = {k: os.environ.get(k) for k in KERNEL_ENV}
        os.environ.update(KERNEL_ENV)
        try:
            with tempfile.TemporaryDirectory() as tmp:
                source = _notebook_source(stem, Path(tmp))
                if "RUN_DIR" in parameter_names(stem):
                    params.setdefault("RUN_DIR", str(out.resolve()))
                pm.execute_notebook(str(source), str(executed), parameters=params,
                                    kernel_name=kernel, cwd=str(NOTEBOOKS), progress_bar=False)
        except Exception as e:  # papermill raises PapermillExecutionError with the cell's traceback
            raise RuntimeError(f"notebook {stem} failed after {time.perf_counter() - start:.0f} s: "
                               f"{type(e).__name__}: {str(e).strip().splitlines()[-1] if str(e).strip() else ''}\n"
                               f"the partly executed copy is {executed}; fix it and rerun with --resume") from e
        finally:
            for k, v in saved_env.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        timings[stem] = round(time.perf_counter() - start, 1)
        state["finished"].append(stem)
        state_path.write_text(json.dumps(state, indent=1))
        timings_path.write_text(json.dumps(timings, indent=1))
        collect_metrics(out, preset, timings)
        book.clean_executed(executed)
        book.render_html(executed)
        book.write_index(out, list(plan), timings, preset)
    return out
