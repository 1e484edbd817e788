"""Minimisation in storage: which receipts must give up their lines, and when.

A receipt's totals (date, store, reader, gross, discount) stay linked to its card: that is
the aggregate spend the scheme may keep. Its lines are profiling data (DESIGN.md section
7): they stay on the receipt only while the audit needs them and a return may still come,
then backend/privacy/fold.py moves them into per-store, per-day product totals. The rule:

  * fold a receipt whose audit passed ('ok') and whose time is older than the return
    window (RETURN_WINDOW_DAYS, strictly: a receipt exactly at the window's edge keeps its
    lines until the next run), unless its card's customer has profiling consent in force
    at that moment. A card nobody owns (cards.customer_id NULL, or a number the directory
    does not know) counts as no consent.
  * a customer who withdraws profiling consent: the same rule for their receipts at once
    (fold_withdrawn, called in the withdrawal's own transaction, after its consents row).
  * a receipt whose audit is a mismatch keeps its lines: a person must be able to see what
    the reader did. They leave it with everybody's at the end of the profiling period
    (backend/privacy/retention.py folds every receipt older than PROFILING_MONTHS, audited
    or not, consent or not): no line is kept for a person longer than that.
  * a receipt not audited yet (audit NULL) keeps its lines: the audit reads them.
  * a record in quarantine (`quarantine.record`: it holds a card and lines too, out of
    every figure) loses its record once a person has judged it and the return window
    after its arrival has closed, and at the end of the profiling period at the latest,
    judged or not, whoever's card it names; its hash, code and the judgement stay.
    Nothing is folded from it: it never counted (clear_quarantine).

Card numbers in receipts are as the reader sent them; the directory keeps them without
leading zeros (backend/cardstates.card_key), so the match strips them.

    fold_due(db, now, 30)                         # -> receipts folded, one transaction a chunk
    clear_quarantine(db, now, 30, profiling_before)  # -> quarantine records emptied
    with transaction(db):                         # the withdrawal's own transaction
        db.execute("INSERT INTO consents ...")    # profiling given = 0
        fold_withdrawn(db, customer_id, now, 30)  # -> receipts folded
"""
from loyalty.backend.customers.inforce import consenting_sql
from loyalty.backend.db import transaction
from loyalty.backend.privacy import fold, subject

DAY = 86400

# the card's number as the directory keeps it (cardstates.card_key, in SQL)
_CARD_KEY = "coalesce(nullif(ltrim(r.card, '0'), ''), '0')"

# no profiling consent in force for the receipt's card (no owner: none)
NOT_CONSENTING = ("NOT EXISTS (SELECT 1 FROM cards c WHERE c.card = %s AND c.customer_id IN (%s))"
                  % (_CARD_KEY, consenting_sql("profiling")))

# due: audited ok, window closed, no consent; `r.t >= ?` bounds each slice of the scan.
# `audit || ''`: the receipts_unfolded index (t, lines still there) finds the few due
# among millions; the equality on audit would otherwise tempt SQLite to its audit index,
# where nearly every receipt is 'ok'
_DUE = "r.audit || '' = 'ok' AND r.t >= ? AND r.t < ? AND " + NOT_CONSENTING


def window_closed(now, return_window_days):
    """The time before which a receipt's return window has closed."""
    return now - return_window_days * DAY


def _folding(db, condition, params, now, limit):
    """fold_where in its own short transactions of fold.CHUNK receipts each (a long fold
    must not hold SQLite's write lock from ingestion); at most `limit`. -> folded."""
    done = 0
    while limit is None or done < limit:
        take = fold.CHUNK if limit is None else min(fold.CHUNK, limit - done)
        with transaction(db):
            n = fold.fold_where(db, condition, params, now, limit=take)
        done += n
        if n < take:
            break
    return done


def fold_due(db, now, return_window_days, limit=None):
    """Fold every receipt due (module docstring), at most `limit`; -> how many.

    Commits a chunk at a time: call it outside any transaction. It scans the receipts
    still holding lines a day of receipt time at a time, so the consenting customers'
    receipts (which stay) are read once per day's slice, not once per chunk."""
    before = window_closed(now, return_window_days)
    oldest = db.execute("SELECT min(t) FROM receipts WHERE record IS NOT NULL AND t < ?", [before]).fetchone()[0]
    done = 0
    start = oldest
    while start is not None and start < before and (limit is None or done < limit):
        end = min(start + DAY, before)
        done += _folding(db, _DUE, [start, end], now, None if limit is None else limit - done)
        start = end
    return done


def fold_withdrawn(db, customer_id, now, return_window_days):
    """Fold the due receipts of one customer now (after a withdrawal of profiling consent),
    inside the caller's transaction; nothing if their consent is in force. -> how many."""
    numbers = [n for (key,) in db.execute("SELECT card FROM cards WHERE customer_id = ?", [customer_id])
               for n in subject.written_forms(key)]
    if not numbers:
        return 0
    done = 0
    for k in range(0, len(numbers), 500):
        part = numbers[k:k + 500]
        done += fold.fold_where(
            db, "r.card IN (%s) AND r.audit = 'ok' AND r.t < ? AND %s" % (",".join("?" * len(part)), NOT_CONSENTING),
            part + [window_closed(now, return_window_days)], now)
    return done


QUARANTINE_CHUNK = 500


def clear_quarantine(db, now, return_window_days, profiling_before):
    """Empty quarantine's records that are due (module docstring): judged with the window
    closed, or arrived before `profiling_before`. One transaction a chunk; -> how many."""
    due = ("record IS NOT NULL AND (t < ? OR (judged_t IS NOT NULL AND t < ?))",
           [profiling_before, window_closed(now, return_window_days)])
    done = 0
    while True:
        with transaction(db):
            n = db.execute("UPDATE quarantine SET record = NULL WHERE (reader_id, seq) IN "
                           "(SELECT reader_id, seq FROM quarantine WHERE %s LIMIT ?)" % due[0],
                           due[1] + [QUARANTINE_CHUNK]).rowcount
        done += n
        if n < QUARANTINE_CHUNK:
            return done
