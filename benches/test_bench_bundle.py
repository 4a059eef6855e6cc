"""pytest-benchmark: santacore (default threads) against the plain-Python reference.

One benchmark group per workload (``PySide6``, ``mujoco``, ``medium``, ``xcode-scale``);
each group holds ``santacore`` and ``reference``. ``extra_info["correct"]``: for PySide6 and
mujoco, the bundle hash and binary count equal the corpus manifest's expected values; for
medium and xcode-scale, santacore's equal the reference's (``extra_info["matches_builder"]`` also
compares with the hash ``benches.workloads`` computed while writing the tree). A wrong
result fails the test after it is recorded.

    pytest benches --benchmark-enable [-k xcode] [--benchmark-json out.json]
"""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

import santacore
from benches.conftest import Result, remember_reference
from benches.workloads import MEDIUM, XCODE, Workload
from tests.reference import reference_tree_hash

pytestmark = pytest.mark.timeout(3600)  # building xcode-scale alone takes about a minute

GROUPS = {"pyside6": "PySide6", "mujoco": "mujoco", MEDIUM: "medium", XCODE: "xcode-scale"}
#: Timed rounds (after one warm-up round that also warms the page cache).
ROUNDS = {"pyside6": 5, "mujoco": 10, MEDIUM: 5, XCODE: 3}


def run_santacore(root: str) -> Result:
    r = santacore.hash_tree(root)
    return r.bundle_hash, r.binary_count


def run_reference(root: str) -> Result:
    bundle_hash, count, _binaries = reference_tree_hash(root)
    return bundle_hash, count


IMPLS: dict[str, Callable[[str], Result]] = {"reference": run_reference, "santacore": run_santacore}


@pytest.mark.parametrize("impl", list(IMPLS))
def test_bundle_hash(
    benchmark: BenchmarkFixture,
    workload: Workload,
    impl: str,
    reference_result: Callable[[Workload], Result],
) -> None:
    benchmark.group = GROUPS[workload.name]
    benchmark.extra_info.update(
        workload=workload.name,
        impl=impl,
        threads="default" if impl == "santacore" else 1,
        regular_files=workload.regular_files,
        executables=len(workload.executables),
        executable_bytes=workload.executable_bytes,
    )
    pedantic = cast(Callable[..., Result], benchmark.pedantic)  # pytest-benchmark is untyped
    result = pedantic(
        IMPLS[impl], args=(str(workload.root),), rounds=ROUNDS[workload.name], warmup_rounds=1, iterations=1
    )
    if impl == "reference":
        remember_reference(workload, result)
    expected_by_builder: Result = (workload.expected_bundle_hash, workload.expected_binary_count)
    if workload.name in (MEDIUM, XCODE):
        expected = reference_result(workload)
        benchmark.extra_info["expected_from"] = "reference" if impl == "santacore" else "itself (reference)"
    else:
        expected = expected_by_builder
        benchmark.extra_info["expected_from"] = workload.expected_source
    benchmark.extra_info.update(
        bundle_hash=result[0],
        binary_count=result[1],
        expected_bundle_hash=expected[0],
        correct=result == expected,
        matches_builder=result == expected_by_builder,
    )
    assert result == expected, f"{impl} on {workload.name}: {result} != expected {expected}"
    assert result == expected_by_builder, f"{impl} on {workload.name}: {result} != {expected_by_builder}"
