import os

os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory):
    """One smoke reproduction (every notebook, papermill, as users run it) shared by the tests that read it."""
    from simpleseg_lite.reproduce import reproduce

    return reproduce("smoke", out=tmp_path_factory.mktemp("smoke") / "run")
