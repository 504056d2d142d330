"""The metric spool: nothing lost, nothing logged twice per (key, step), whatever the server
does."""

import pytest

from textclf.tracking.spool import Spool


class FlakyServer:
    """Stores (key, step) -> value; can be down, or store a batch and then fail to answer (a
    timeout)."""

    def __init__(self):
        self.rows: list[tuple[str, int]] = []
        self.down = False
        self.lose_answer = False

    def send(self, entries):
        if self.down:
            raise ConnectionError("connection refused")
        self.rows += [(key, step) for key, _, step, _ in entries]
        if self.lose_answer:
            self.lose_answer = False
            raise TimeoutError("read timed out")

    def known(self, keys):
        if self.down:
            raise ConnectionError("connection refused")
        return {row for row in self.rows if row[0] in keys}


def test_metrics_logged_during_an_outage_arrive_once_when_the_server_returns():
    server = FlakyServer()
    spool = Spool(server.send, server.known)
    spool.add({"loss": 1.0, "acc": 0.5}, 1)
    assert spool.flush()
    server.down = True
    for epoch in (2, 3):
        spool.add({"loss": 1.0 / epoch, "acc": 0.6}, epoch)
        assert not spool.flush()
    server.down = False
    spool.add({"loss": 0.2, "acc": 0.7}, 4)
    assert spool.flush()
    assert sorted(server.rows) == sorted((k, s) for k in ("loss", "acc") for s in (1, 2, 3, 4))
    assert spool.failures == 2 and spool.pending == []


def test_a_batch_stored_but_unanswered_is_not_sent_again():
    server = FlakyServer()
    spool = Spool(server.send, server.known)
    server.lose_answer = True
    spool.add({"loss": 1.0}, 1)
    assert not spool.flush()  # the server has it, the spool cannot know
    spool.add({"loss": 0.5}, 2)
    assert spool.flush()
    assert server.rows == [("loss", 1), ("loss", 2)]  # step 1 once


def test_drain_gives_up_at_its_deadline_with_the_count_left():
    server = FlakyServer()
    server.down = True
    spool = Spool(server.send, server.known)
    spool.add({"loss": 1.0, "acc": 0.5}, 1)
    with pytest.raises(TimeoutError, match="2 metric values not logged"):
        spool.drain(0.2, every_s=0.05)
    server.down = False
    spool.drain(1.0)
    assert len(server.rows) == 2
