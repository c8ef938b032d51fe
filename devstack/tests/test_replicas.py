"""Processes per service: REPLICAS for all, <PREFIX>_REPLICAS for one."""

from __future__ import annotations

import pytest

from devstack import gateway
from devstack.config import stack_named


def test_one_service_can_run_more_processes_than_the_others(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BOOKING_REPLICAS", "3")
    monkeypatch.delenv("REPLICAS", raising=False)

    stack = stack_named("test")

    assert stack.replicas_of("booking_service") == 3
    assert stack.replicas_of("event_service") == 1
    upstreams = gateway.local_upstreams(stack)
    assert upstreams["booking_service"] == [
        "127.0.0.1:13002",
        "127.0.0.1:13102",
        "127.0.0.1:13202",
    ]
    assert upstreams["event_service"] == ["127.0.0.1:13003"]


def test_each_replica_calls_a_replica_the_other_service_has(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BOOKING_REPLICAS", "3")
    monkeypatch.setenv("EVENT_REPLICAS", "2")

    stack = stack_named("test", replicas=1)

    partners = [stack.service_env("booking_service", r)["EVENT_SERVICE_URL"] for r in range(3)]
    assert partners == [
        "http://127.0.0.1:13003",
        "http://127.0.0.1:13103",
        "http://127.0.0.1:13003",
    ]


@pytest.mark.parametrize("value", ["0", "33"])
def test_a_replica_count_out_of_range_is_refused(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("PAYMENT_REPLICAS", value)

    with pytest.raises(ValueError, match="PAYMENT_REPLICAS"):
        stack_named("dev")
