"""Fixtures for the benchmarks: workloads prepared (and cached) by ``benches.workloads``.

Run the benchmarks with::

    pytest benches --benchmark-enable            # pyproject's addopts disable them by default

Without ``--benchmark-enable`` every benchmark still runs its target once and checks the
result, so ``pytest benches`` doubles as a correctness check on the big trees.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from benches.workloads import WORKLOAD_NAMES, FetchError, Workload, prepare
from tests.reference import reference_tree_hash

#: (bundle hash, binary count) of one run.
Result = tuple[str | None, int]

_workloads: dict[str, Workload] = {}
_reference: dict[str, Result] = {}


@pytest.fixture(scope="session", params=WORKLOAD_NAMES)
def workload(request: pytest.FixtureRequest) -> Workload:
    name: str = request.param
    if name not in _workloads:
        try:
            _workloads[name] = prepare(name)
        except FetchError as e:
            pytest.skip(f"{name}: the wheels could not be fetched from PyPI: {e}")
    return _workloads[name]


def remember_reference(workload: Workload, result: Result) -> None:
    _reference[workload.name] = result


@pytest.fixture(scope="session")
def reference_result() -> Callable[[Workload], Result]:
    """The reference's (bundle hash, count) for a workload: from its benchmark, or one untimed run."""

    def get(workload: Workload) -> Result:
        if workload.name not in _reference:
            bundle_hash, count, _binaries = reference_tree_hash(str(workload.root))
            _reference[workload.name] = (bundle_hash, count)
        return _reference[workload.name]

    return get
