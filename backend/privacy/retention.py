"""Retention: the daily job that removes what the scheme may no longer keep.

Each kind of data has its period (backend/config.py DEFAULTS, justified there); a row older
than its period goes. "Older" is strict: a row exactly at the cutoff stays until the next
run. Months are calendar months back from `now` in UTC, the day clamped to the month's
end (months_back: 31 March minus one month is 28 or 29 February, same time of day).

  fold_due       receipt lines past the return window, no profiling consent (minimise.py)
  profiling      receipt lines older than PROFILING_MONTHS, whoever's and whatever their
                 audit: folded (lines leave receipts only by the fold)
  quarantine     records in quarantine judged with the window closed, or older than
                 PROFILING_MONTHS (minimise.clear_quarantine)
  marketing      marketing_log rows older than MARKETING_MONTHS
  care_contacts  older than CARE_CONTACT_MONTHS
  trail          audit trail rows older than TRAIL_MONTHS
  views          staff's views of customer data older than VIEWS_MONTHS (at least 6)
  consents       consent history older than CONSENT_HISTORY_MONTHS: a row superseded by a
                 newer one of the same customer and purpose, or any row of a customer
                 erased before the cutoff. The newest row of a living customer is never
                 removed, however old: it proves the consent in force.
  closed_accounts  accounts closed before CLOSED_ACCOUNT_MONTHS: erased (privacy/erasure.py),
                 one customer per transaction, actor "retention"; needs ERASURE_KEY
  shopper_codes  the shoppers' one-time codes (hashes) older than a day: the hourly limit
                 on codes needs only the last hour
  directory_removals  sealed card numbers of erased customers that every active reader
                 has dropped, or older than 90 days (privacy/removals.prune)

Every step works in short transactions of CHUNK rows, and every condition is a fact of
the row against `now`, never a count or a mark of this run: so a second run with the same
`now` removes nothing more, and a run killed at any point leaves whole chunks only (SQLite
commits each or none) and the next run finishes the job.

    removed = run(db, now=int(time.time()), settings=app.config)   # {"fold_due": 120, ...}
    flask --app loyalty.backend.app retention
"""
import calendar
import datetime

from loyalty.backend.config import DEFAULTS
from loyalty.backend.db import transaction
from loyalty.backend.privacy import erasure, minimise, removals
from loyalty.i18n import _

CHUNK = 1000  # rows deleted per transaction: a few ms of SQLite's write lock
SHOPPER_CODES_KEPT = 86400  # seconds: backend/shopper/codes.py limits codes per hour
MIN_VIEWS_MONTHS = 6  # Garante, system administrators (27 Nov 2008): access logs kept at least 6 months


class RetentionSettingError(ValueError):
    """A retention setting is not a period this job can apply; names the setting."""

    def __init__(self, setting, message):
        super().__init__("%s: %s" % (setting, message))
        self.setting = setting


def months_back(now, months):
    """Epoch seconds `months` calendar months before `now` (UTC), day clamped to the month's end."""
    moment = datetime.datetime.fromtimestamp(now, datetime.timezone.utc)
    years, month0 = divmod(moment.month - 1 - months, 12)
    year = moment.year + years
    day = min(moment.day, calendar.monthrange(year, month0 + 1)[1])
    return int(moment.replace(year=year, month=month0 + 1, day=day).timestamp())


def _setting(settings, key, least=0):
    value = settings.get(key, DEFAULTS[key]) if settings is not None else DEFAULTS[key]
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise RetentionSettingError(key, _("must be a whole number, at least %(least)d (got %(value)r)",
                                           least=least, value=value))
    return value


def _delete_older(db, table, before, where="t < ?", params=None):
    """Delete `table`'s rows (with an id) where `where` holds (default: t < before),
    CHUNK per transaction; -> how many."""
    params = [before] if params is None else params
    done = 0
    while True:
        with transaction(db):
            n = db.execute("DELETE FROM %s WHERE id IN (SELECT id FROM %s WHERE %s LIMIT ?)" % (table, table, where),
                           params + [CHUNK]).rowcount
        done += n
        if n < CHUNK:
            return done


# superseded (a newer row of the same customer and purpose exists) or the customer's
# erasure is older than the cutoff; either way the row itself is older than the cutoff
_CONSENTS_GONE = ("t < ? AND (id < (SELECT max(n.id) FROM consents n WHERE n.customer_id = consents.customer_id "
                  "AND n.purpose = consents.purpose) OR customer_id IN "
                  "(SELECT id FROM customers WHERE status = 'erased' AND erased_t < ?))")


def closed_accounts(db, now, before, settings):
    """Erase the customers whose account was closed before `before`, each in its own
    transaction (erasure.erase: a kill leaves whole customers, erased or not); -> how many."""
    done = 0
    for (cid,) in db.execute("SELECT id FROM customers WHERE status = 'closed' AND closed_t < ? ORDER BY id",
                             [before]).fetchall():
        key = settings.get("ERASURE_KEY") if settings is not None else None
        if not key:
            raise RetentionSettingError("ERASURE_KEY", _("is needed to erase closed accounts (the app loads it "
                                                         "from the instance folder)"))
        erasure.erase(db, cid, "retention", "account closed more than %d months ago"
                      % _setting(settings, "CLOSED_ACCOUNT_MONTHS", 1), now, key,
                      exports=settings.get("EXPORTS_FOLDER"))
        done += 1
    return done


def _directory_removals(db, now):
    with transaction(db):
        return removals.prune(db, now)


def _profiling(db, now, before):
    return minimise._folding(db, "r.t < ?", [before], now, None)


def run(db, now, settings=None):
    """Apply every period at `now` (epoch seconds); settings: a mapping over DEFAULTS'
    keys (app.config), missing keys take the default. Returns {kind: rows removed} in the
    order of the module docstring. Commits as it goes: call it outside any transaction."""
    window = _setting(settings, "RETURN_WINDOW_DAYS")
    profiling = months_back(now, _setting(settings, "PROFILING_MONTHS", 1))
    periods = {key: months_back(now, _setting(settings, key, least))
               for key, least in (("MARKETING_MONTHS", 1), ("CARE_CONTACT_MONTHS", 1), ("TRAIL_MONTHS", 1),
                                  ("VIEWS_MONTHS", MIN_VIEWS_MONTHS), ("CONSENT_HISTORY_MONTHS", 1),
                                  ("CLOSED_ACCOUNT_MONTHS", 1))}
    removed = {}
    removed["fold_due"] = minimise.fold_due(db, now, window)
    removed["profiling"] = _profiling(db, now, profiling)
    removed["quarantine"] = minimise.clear_quarantine(db, now, window, profiling)
    removed["marketing"] = _delete_older(db, "marketing_log", periods["MARKETING_MONTHS"])
    removed["care_contacts"] = _delete_older(db, "care_contacts", periods["CARE_CONTACT_MONTHS"])
    removed["trail"] = _delete_older(db, "trail", periods["TRAIL_MONTHS"])
    removed["views"] = _delete_older(db, "views", periods["VIEWS_MONTHS"])
    cutoff = periods["CONSENT_HISTORY_MONTHS"]
    removed["consents"] = _delete_older(db, "consents", cutoff, _CONSENTS_GONE, [cutoff, cutoff])
    removed["closed_accounts"] = closed_accounts(db, now, periods["CLOSED_ACCOUNT_MONTHS"], settings)
    removed["shopper_codes"] = _delete_older(db, "shopper_codes", now - SHOPPER_CODES_KEPT)
    removed["directory_removals"] = _directory_removals(db, now)
    return removed


def kinds():
    """{kind: what a removed row is, in the current language} for run's result."""
    return {
        "fold_due": _("receipts whose lines were folded (return window closed, no profiling consent)"),
        "profiling": _("receipts whose lines were folded (older than the profiling period)"),
        "quarantine": _("records in quarantine emptied"),
        "marketing": _("marketing messages removed"),
        "care_contacts": _("customer care contacts removed"),
        "trail": _("audit trail entries removed"),
        "views": _("views of customer data removed"),
        "consents": _("consent history entries removed"),
        "closed_accounts": _("closed accounts erased"),
        "shopper_codes": _("shoppers' one-time codes older than a day removed"),
        "directory_removals": _("sealed card numbers every reader has dropped, deleted"),
    }
