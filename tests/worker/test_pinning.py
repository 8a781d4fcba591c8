"""DOCFLOW_WORKER_PIN_CPUS: each pool child of the worker keeps a CPU of its own."""

from __future__ import annotations

import os
import time

import psutil
import pytest

from docflow.worker.app import cpu_for
from tests.conftest import Infra, start_worker


def test_each_child_gets_a_cpu_of_its_own_only_when_there_are_enough() -> None:
    assert [cpu_for(i, 2, [0, 1]) for i in range(2)] == [0, 1]
    assert [cpu_for(i, 2, [2, 5, 7]) for i in range(2)] == [2, 5]  # the CPUs it may use
    assert cpu_for(0, 3, [0, 1]) is None  # more children than CPUs: the scheduler decides
    assert cpu_for(0, 1, [0, 1]) is None  # one child: nothing to keep apart
    assert cpu_for(-1, 2, [0, 1]) is None  # not a pool child


def _children(worker_pid: int, count: int) -> list[psutil.Process]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        children = psutil.Process(worker_pid).children()
        if len(children) >= count:
            time.sleep(1)  # past worker_process_init
            return children
        time.sleep(0.2)
    raise AssertionError("the worker's pool did not start")


@pytest.mark.parametrize("pin", ["true", "false"])
def test_a_worker_pins_its_children_when_asked(infra: Infra, pin: str) -> None:
    allowed = sorted(os.sched_getaffinity(0))
    worker = start_worker(infra, f"pin-{pin}", 2, {"DOCFLOW_WORKER_PIN_CPUS": pin})
    try:
        affinities = sorted(c.cpu_affinity() for c in _children(worker.process.pid, 2))
    finally:
        worker.stop()
    if pin == "true" and len(allowed) >= 2:
        assert affinities == [[allowed[0]], [allowed[1]]]
    else:
        assert affinities == [allowed, allowed]
