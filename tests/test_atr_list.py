"""The reader's ATR parser (firmware/drivers/iso7816atr.py) over every literal ATR in pcsc-tools'
list (/usr/share/pcsc/smartcard_list.txt, Debian package pcsc-tools), against pyscard's
smartcard.ATR.

Entries with regular-expression parts (`..`, `[...]`, `.` inside a byte) are skipped: they
are patterns, not ATRs. For every literal one the parser must not raise; wherever pyscard
parses it, both must agree on the historical bytes, the protocols and the TCK verdict, or
the entry must fall under one of the differences in KNOWN, each explained from
ISO/IEC 7816-3 (a table of reasons, not a blanket skip: an entry that differs for any
other reason fails the test).
"""
import re
from collections import Counter
from pathlib import Path

import pytest

from drivers import iso7816atr

smartcard_atr = pytest.importorskip("smartcard.ATR")

LIST = Path("/usr/share/pcsc/smartcard_list.txt")
LITERAL = re.compile(r"^[0-9A-F]{2}( [0-9A-F]{2})*$")

KNOWN = {
    "t15_is_not_a_protocol":
        "pyscard lists T=15 among the protocols; T=15 only announces global interface bytes "
        "(7816-3 8.2.3), so we leave it out. When TD1 itself says T=15 and no protocol is "
        "named, T=0 is the one offered, as with no TD1 at all.",
    "t0_stray_byte_is_not_a_tck":
        "A T=0-only ATR followed by one more byte: pyscard takes that byte as TCK and checks "
        "it; 7816-3 8.2.5 has no TCK when only T=0 is indicated, so we report an extra byte.",
    "tck_then_extra_bytes":
        "The ATR has its TCK and then more bytes: pyscard sees a TCK only when exactly one "
        "byte follows the historical bytes, so it reports none; we check the TCK where "
        "7816-3 puts it and report the bytes after it as extra.",
    "truncated_historical_bytes":
        "T0 announces more historical bytes than the entry has: pyscard keeps those present "
        "without a word; we keep the same bytes and say the ATR is incomplete (not usable).",
}


def literal_atrs():
    out = []
    for line in LIST.read_text(encoding="latin-1").splitlines():
        line = line.strip()
        if LITERAL.match(line):
            out.append(bytes.fromhex(line))
    return out


def protocols_of(p):
    return sorted(int(k[2:]) for k in p.getSupportedProtocols())


def differences(raw, ours, theirs):
    """The KNOWN reasons this entry differs for, and anything unexplained (as text)."""
    reasons, unexplained = set(), []
    if list(ours.historical) != list(theirs.historicalBytes):
        unexplained.append("historical bytes")
    if any(p.startswith("ATR ends inside the historical") for p in ours.problems):
        reasons.add("truncated_historical_bytes")
    theirs_p = protocols_of(theirs)
    if theirs_p != sorted(ours.protocols):
        named = [t for t in theirs_p if t != 15] or [0]
        if named == sorted(ours.protocols):
            reasons.add("t15_is_not_a_protocol")
        else:
            unexplained.append("protocols %s / %s" % (theirs_p, ours.protocols))
    if theirs.checksumOK != ours.tck_ok:
        if ours.tck is None and ours.protocols == [0] and len(ours.extra) == 1:
            reasons.add("t0_stray_byte_is_not_a_tck")
        elif ours.tck is not None and ours.extra and theirs.TCK is None:
            reasons.add("tck_then_extra_bytes")
        else:
            unexplained.append("TCK %s / %s" % (theirs.checksumOK, ours.tck_ok))
    return reasons, unexplained


def test_every_literal_atr_in_pcsc_tools_list():
    if not LIST.exists():
        pytest.skip("pcsc-tools is not installed")
    atrs = literal_atrs()
    assert len(atrs) > 3000  # the list has thousands; a format change would show here
    stats = Counter()
    unexplained = []
    for raw in atrs:
        ours = iso7816atr.parse_atr(raw)  # must not raise, whatever the bytes
        stats["usable" if ours.usable else "not usable"] += 1
        try:
            theirs = smartcard_atr.ATR(list(raw))
        except Exception:  # pyscard's own limits: nothing to compare with
            stats["pyscard refuses"] += 1
            continue
        stats["compared"] += 1
        reasons, bad = differences(raw, ours, theirs)
        for r in reasons:
            stats[r] += 1
        if not reasons and not bad:
            stats["identical"] += 1
        if bad:
            unexplained.append((raw.hex(" ").upper(), bad))
    print("\nATR list:", len(atrs), "literal entries;", dict(stats))
    assert unexplained == [], unexplained[:10]
    assert stats["compared"] == len(atrs) - stats["pyscard refuses"]
    for reason in KNOWN:
        assert stats[reason] > 0, "%s no longer occurs: drop it from KNOWN" % reason


def test_the_known_differences_are_real():
    # one entry of each kind, checked by hand against the standard
    t15 = iso7816atr.parse_atr(bytes.fromhex("3B9095801FC359"))
    assert t15.protocols == [0] and t15.td == [0x80, 0x1F, None]  # TD1 T=0, TD2 T=15
    stray = iso7816atr.parse_atr(bytes.fromhex("3B02145011"))
    assert (stray.tck, stray.extra) == (None, b"\x11")
    cut = iso7816atr.parse_atr(bytes.fromhex("3B046089"))
    assert (cut.usable, cut.historical) == (False, b"\x60\x89")
