"""Shared fixtures: the corpus (../shared/corpus, or $SANTACORE_CORPUS) and its manifest.

Where the corpus is absent (a stranger's clone) every corpus test skips with that reason;
`.ci/run` refuses to run without it, so CI can never pass on skips.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

# Property tests: no per-example deadline (a loaded 2-core CI box is slow, not wrong);
# "ci" is also derandomised, so a CI failure reproduces exactly on a developer's machine.
settings.register_profile("dev", deadline=None)
settings.register_profile("ci", deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CORPUS = REPO_ROOT.parent / "shared" / "corpus"


def corpus_path() -> Path:
    return Path(os.environ.get("SANTACORE_CORPUS", DEFAULT_CORPUS)).resolve()


@pytest.fixture(scope="session")
def corpus() -> Path:
    path = corpus_path()
    if not (path / "manifest.json").is_file():
        pytest.skip(f"corpus not found at {path} (set SANTACORE_CORPUS)")
    return path


@pytest.fixture(scope="session")
def manifest(corpus: Path) -> dict[str, Any]:
    with open(corpus / "manifest.json", encoding="utf-8") as f:
        data: dict[str, Any] = json.load(f)
    return data
