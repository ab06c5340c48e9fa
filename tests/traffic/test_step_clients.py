"""The count of distinct sticky clients in a step: bounded, and started again on demand."""

from __future__ import annotations

from edgeserve.traffic.step_clients import ENOUGH, StepClients


def test_clients_are_counted_up_to_enough_and_no_id_is_kept_beyond():
    clients = StepClients()
    for number in range(1000):
        clients.saw(f"client-{number:04d}")
    assert clients.count == ENOUGH == 20 and len(clients.ids) == ENOUGH


def test_a_client_counts_once_however_often_it_comes():
    clients = StepClients()
    assert [clients.saw(c) for c in ("aaaaaaaa", "aaaaaaaa", "bbbbbbbb")] == [True, False, True]
    assert clients.count == 2


def test_requests_without_a_client_id_are_not_clients():
    clients = StepClients()
    clients.saw(None)
    assert clients.count == 0


def test_restart_forgets_every_client():
    clients = StepClients()
    clients.saw("aaaaaaaa")
    clients.restart()
    assert clients.count == 0
