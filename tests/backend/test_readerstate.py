"""readerstate.state(): each state, the boundaries of its thresholds, and the order of the rules."""

import pytest

from loyalty.backend.dashboard import readerstate
from loyalty.backend.dashboard.readerstate import state

NOW = 1_750_000_000
LAG, OFF = 300, 1800


def reader(**over):
    """A reader in sync: contact and accepted batch a minute ago, nothing pending, v3/v7."""
    row = {"last_contact": NOW - 60, "last_batch": NOW - 60, "pending": 0, "oldest_t": None,
           "journal": "ok", "rules_version": 3, "directory_version": 7,
           "last_refusal_at": None, "last_refusal_code": None}
    row.update(over)
    return row


def st(row, rules=3, directory=7, **kw):
    return state(row, NOW, LAG, OFF, rules, directory, **kw)


def test_in_sync():
    name, reason = st(reader())
    assert name == "in_sync"
    assert reason == "Last contact 1 min ago, nothing pending."


def test_never_seen_even_with_a_refusal():
    # an unverified request can leave a refusal, but the reader has never been heard
    assert st(reader(last_contact=None, last_batch=None, last_refusal_at=NOW - 5,
                     last_refusal_code="batch.signature"))[0] == "never_seen"


@pytest.mark.parametrize("quiet, expected", [
    (LAG, "in_sync"), (LAG + 1, "lagging"), (OFF, "lagging"), (OFF + 1, "offline")])
def test_contact_thresholds(quiet, expected):
    assert st(reader(last_contact=NOW - quiet, last_batch=NOW - quiet))[0] == expected


def test_offline_reason_says_for_how_long():
    assert st(reader(last_contact=NOW - 7200))[1] == "No contact for 2 h 00 min."


def test_refused_after_last_batch():
    name, reason = st(reader(last_refusal_at=NOW - 30, last_refusal_code="batch.chain"))
    assert name == "refused"
    assert "Broken hash chain" in reason and "batch.chain" in reason


def test_refused_in_the_same_second_as_the_last_batch():
    assert st(reader(last_refusal_at=NOW - 60, last_refusal_code="batch.gap"))[0] == "refused"


def test_a_refusal_in_the_same_second_as_a_batch_counts_as_the_later():
    assert st(reader(last_refusal_at=NOW - 60, last_refusal_code="batch.gap"))[0] == "refused"
    assert st(reader(last_refusal_at=NOW - 61, last_refusal_code="batch.gap"))[0] == "in_sync"


def test_a_failed_sync_the_reader_reports_is_lagging():
    state, why = st(reader(last_error="sync.network"))
    assert state == "lagging" and "sync.network" in why
    assert st(reader(last_error="flash.io"))[0] == "in_sync"  # not a sync matter
    assert st(reader(last_error=""))[0] == "in_sync"


def test_refusal_before_an_accepted_batch_is_over():
    assert st(reader(last_refusal_at=NOW - 61, last_refusal_code="batch.gap"))[0] == "in_sync"


def test_refused_without_any_accepted_batch():
    assert st(reader(last_batch=None, last_refusal_at=NOW - 100,
                     last_refusal_code="batch.totals"))[0] == "refused"


def test_refused_with_an_unknown_code_shows_the_code():
    name, reason = st(reader(last_refusal_at=NOW - 10, last_refusal_code="batch.new_thing"))
    assert name == "refused" and "batch.new_thing" in reason


def test_offline_comes_before_refused():
    row = reader(last_contact=NOW - OFF - 1, last_batch=None, last_refusal_at=NOW - OFF - 1,
                 last_refusal_code="batch.gap")
    assert st(row)[0] == "offline"


def test_refused_comes_before_lagging():
    row = reader(pending=5, oldest_t=NOW - 3600, last_refusal_at=NOW - 10,
                 last_refusal_code="batch.chain")
    assert st(row)[0] == "refused"


@pytest.mark.parametrize("age, expected", [(LAG, "in_sync"), (LAG + 1, "lagging")])
def test_pending_age_threshold(age, expected):
    name, reason = st(reader(pending=3, oldest_t=NOW - age))
    assert name == expected
    if expected == "lagging":
        assert reason == "3 receipts waiting, the oldest for 5 min."


def test_an_old_oldest_t_without_pending_receipts_is_no_lag():
    assert st(reader(pending=0, oldest_t=NOW - 3600))[0] == "in_sync"


@pytest.mark.parametrize("journal, expected", [
    ("ok", "in_sync"), ("nearly_full", "lagging"), ("full", "lagging"), (None, "in_sync")])
def test_journal_level(journal, expected):
    name, reason = st(reader(journal=journal))
    assert name == expected
    if expected == "lagging":
        assert journal.replace("_", " ") in reason


def test_several_reasons_are_all_given():
    name, reason = st(reader(last_contact=NOW - 400, pending=1, oldest_t=NOW - 900,
                             journal="full"))
    assert name == "lagging"
    assert reason == ("No contact for 6 min; 1 receipt waiting, the oldest for 15 min; "
                      "journal full.")


def test_versions_behind_long_after_publication_are_lagging():
    # our rules v4 were published 10 minutes before the reader's last contact
    name, reason = st(reader(), rules=4, rules_since=NOW - 60 - 600)
    assert name == "lagging"
    assert "rules version 3 behind ours (4)" in reason.lower()


def test_versions_behind_just_after_publication_are_only_mentioned():
    # the reader reported v3 with its batch and fetches v4 right after the answer
    name, reason = st(reader(), directory=8, directory_since=NOW - 60 - LAG)
    assert name == "in_sync"
    assert "directory version 7 behind ours (8)" in reason


def test_versions_behind_with_unknown_publication_time_are_only_mentioned():
    name, reason = st(reader(), rules=9, directory=9)
    assert name == "in_sync"
    assert "rules version 3 behind" in reason and "directory version 7 behind" in reason


def test_current_versions_are_not_mentioned():
    assert "version" not in st(reader(), rules_since=0, directory_since=0)[1]


def test_every_state_has_a_word_a_distinct_colour_and_a_rule():
    items = readerstate.legend(LAG, OFF)
    assert [i[0] for i in items] == list(readerstate.STATES)
    assert len({i[2] for i in items}) == len(items)
    words = {i[0]: i[1] for i in items}
    assert words == {"in_sync": "in sync", "lagging": "lagging", "refused": "refused",
                     "offline": "offline", "never_seen": "never seen"}
    assert "30 min" in dict((i[0], i[3]) for i in items)["offline"]


@pytest.mark.parametrize("seconds, text", [
    (0, "0 s"), (59, "59 s"), (60, "1 min"), (3599, "59 min"), (3600, "1 h 00 min"),
    (3660 + 5, "1 h 01 min"), (86400, "1 day"), (3 * 86400 + 5, "3 days"), (-5, "0 s")])
def test_duration(seconds, text):
    assert readerstate.duration(seconds) == text


class _Only(dict):
    """A reader row that fails on any column outside readerstate.COLUMNS."""

    def _check(self, key):
        assert key in readerstate.COLUMNS, "state() reads %r, missing from readerstate.COLUMNS" % key

    def get(self, key, default=None):
        self._check(key)
        return super().get(key, default)

    def __getitem__(self, key):
        self._check(key)
        return super().__getitem__(key)


@pytest.mark.parametrize("over", [{}, {"last_error": "sync.network"}, {"last_refusal_at": NOW - 10,
                                  "last_refusal_code": "batch.gap"}, {"pending": 4, "oldest_t": NOW - 4000},
                                  {"rules_version": 1}, {"journal": "full"}])
def test_state_reads_only_the_columns_it_declares(over):
    row = _Only(reader(**over))
    state(row, NOW, LAG, OFF, 4, 9, rules_since=NOW - 5000, directory_since=NOW - 5000)
