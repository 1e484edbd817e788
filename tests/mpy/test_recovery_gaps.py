"""Damage that recovery must name instead of working around: the journal missing a
segment, and day totals that a clock stepping back must not reset."""
import os

from check import eq, raises
from protocol.errors import JournalError
from protocol.records import make_record
from tmpfs import rmtree, temp_dir

from daytotals import DayTotals
from journal import Journal

BUFFER = bytearray(8192)
NOON = 20700 * 86400 + 43200


def _journal(root):
    return Journal(root, capacity=20000, segment_size=700, buffer=BUFFER)


def _fill(j, n):
    for i in range(n):
        j.append(make_record("sale", "R1", 0, "", NOON + i, "42", 1, [{"sku": "1", "cat": "c", "qty": 1,
                             "price": 100 + i}], 100 + i, 0, [], 1, "T%d" % i, "Q%d" % i))


def _segments(root):
    return sorted(n for n in os.listdir(root) if n.endswith(".seg"))


def test_a_missing_segment_after_an_ack_is_corrupt():
    d = temp_dir("gaps-")
    root = d + "/j"
    try:
        j = _journal(root)
        _fill(j, 12)
        segs = _segments(root)
        assert len(segs) >= 3, segs
        j.ack(int(segs[1][:-4]) - 1)  # the first segment is released
        j.close()
        eq(_segments(root), segs[1:], "released")
        os.rename(root + "/" + segs[1], d + "/away")
        e = raises(JournalError, _journal, root)
        eq((e.code, e.field), ("journal.corrupt", segs[2]), "gap after the acknowledged seq")
        os.rename(d + "/away", root + "/" + segs[1])
        _journal(root).close()  # whole again
    finally:
        rmtree(d)


def test_a_missing_first_segment_is_corrupt():
    d = temp_dir("gaps-")
    root = d + "/j"
    try:
        j = _journal(root)
        _fill(j, 8)
        j.close()
        segs = _segments(root)
        os.remove(root + "/" + segs[0])
        e = raises(JournalError, _journal, root)
        eq((e.code, e.field), ("journal.corrupt", segs[1]), "records from 1 missing, nothing acknowledged")
    finally:
        rmtree(d)


def test_day_totals_do_not_reset_when_the_clock_steps_back():
    d = temp_dir("days-")
    try:
        days = DayTotals(d + "/days.json")
        days.add("6001000000000042", 9000, NOON, 1)
        eq(days.used("6001000000000042", NOON - 86400), 9000, "clock a day back")
        eq(days.used("6001000000000042", NOON), 9000, "and forward again")
        eq(days.used("6001000000000042", NOON + 86400), 0, "the next day")
    finally:
        rmtree(d)
