"""A reader's sync state as the dashboard shows it: one word, one colour, one reason.

    >>> from loyalty.i18n import using
    >>> reader = {"last_contact": 1000, "last_batch": 1000, "pending": 0}
    >>> with using("it"):
    ...     state(reader, now=1060, lagging_after=300, offline_after=1800, rules_version=4, directory_version=9)
    ('in_sync', 'Ultimo contatto 1 min fa, niente da inviare.')
    >>> with using("en"):
    ...     state(reader, now=1060, lagging_after=300, offline_after=1800, rules_version=4, directory_version=9)
    ('in_sync', 'Last contact 1 min ago, nothing pending.')

The first rule that holds decides (thresholds in seconds, from the app's LAGGING_AFTER and
OFFLINE_AFTER; "older than" is strictly more than the threshold):

never_seen  the reader never made a request whose signature verified (last_contact NULL).
offline     no verified contact for more than offline_after.
refused     the reader's last batch was refused: a refusal at or after its last accepted
            batch (or a refusal and no accepted batch ever). Its receipts are not coming
            in until it sends one that passes. A refusal in the same second as an accepted
            batch counts as the later one (the next sync settles it).
            (Only the reader's own requests set last_refusal_at: verified, not stale, not
            a replay, a refused GET too. A request that did not verify may come from
            anybody; it is listed on the reader's page but does not change its state.)
lagging     any of:
            - no verified contact for more than lagging_after;
            - receipts still on the reader whose oldest is older than lagging_after;
            - the reader's own status reports a failed sync (last_error sync.*: the
              network, a lost or spoiled answer); its next good sync clears it;
            - its journal is nearly full or full;
            - it reported a rules or directory version behind ours although ours was
              published more than lagging_after before its last contact. A reader
              reports its versions with a batch and fetches newer ones right after the
              answer, so being one version behind at one report is normal; being behind a
              version it had lagging_after to fetch is not. When the publication time is
              not known (rules_since / directory_since None) "behind" is only mentioned in
              the reason: the contact rule above already catches a reader gone quiet.
in_sync     otherwise.

Colours (CSS classes state-<name>): in sync green, lagging amber, offline red, refused
purple, never seen grey. The dashboard always prints the word next to the colour. Words
and reasons are in the current language (loyalty.i18n); the states are codes.
"""
from loyalty.i18n import N_, _, error_text, ngettext

STATES = ("in_sync", "lagging", "refused", "offline", "never_seen")

# the readers columns state() reads: every page that shows a state selects them all, so
# two pages never judge one reader from different facts
COLUMNS = ("last_contact", "last_batch", "last_refusal_at", "last_refusal_code", "pending", "oldest_t",
           "last_error", "journal", "rules_version", "directory_version")

WORDS = {
    "in_sync": N_("in sync"),
    "lagging": N_("lagging"),
    "refused": N_("refused"),
    "offline": N_("offline"),
    "never_seen": N_("never seen"),
}

COLOURS = {
    "in_sync": "#1a7f37",
    "lagging": "#b26b00",
    "refused": "#7b2fa8",
    "offline": "#c62828",
    "never_seen": "#6b7280",
}

FULL_JOURNAL = ("nearly_full", "full")
JOURNAL_WORDS = {"ok": N_("ok"), "nearly_full": N_("nearly full"), "full": N_("full"), "unknown": N_("unknown")}


def words():
    """{state: its word in the current language}."""
    return {s: _(w) for s, w in WORDS.items()}


def journal_word(journal):
    return _(JOURNAL_WORDS.get(journal or "unknown", JOURNAL_WORDS["unknown"]))


def duration(seconds):
    """A short duration: '45 s', '12 min', '3 h 05 min', '2 days' ('2 giorni')."""
    seconds = max(0, int(seconds))
    if seconds < 60:
        return _("%(seconds)d s", seconds=seconds)
    if seconds < 3600:
        return _("%(minutes)d min", minutes=seconds // 60)
    if seconds < 86400:
        return _("%(hours)d h %(minutes)02d min", hours=seconds // 3600, minutes=seconds % 3600 // 60)
    days = seconds // 86400
    return ngettext("%(num)d day", "%(num)d days", days)


def legend(lagging_after, offline_after):
    """[(state, word, colour, rule)] for the dashboard's legend, in the order of STATES."""
    lag, off = duration(lagging_after), duration(offline_after)
    rules = {
        "in_sync": _("In contact within %(lag)s, no receipt waiting over %(lag)s, its last sync went through, "
                     "journal not full.", lag=lag),
        "lagging": _("No contact for over %(lag)s, or receipts waiting over %(lag)s, or the reader reports a "
                     "failed sync, or the journal nearly full, or rules/directory not fetched %(lag)s "
                     "after publication.", lag=lag),
        "refused": _("Its last sync was refused: its receipts are not coming in (see the reason)."),
        "offline": _("No contact for over %(off)s.", off=off),
        "never_seen": _("Never contacted the backend."),
    }
    return [(s, _(WORDS[s]), COLOURS[s], rules[s]) for s in STATES]


def _refusal_text(code):
    return error_text(code) if code else _("no reason recorded")


def _behind(reader, now, lagging_after, ours, since, column, what):
    """(counts as lagging, sentence) for one of the rules/directory versions."""
    theirs = reader.get(column)
    if theirs is None or ours is None or theirs >= ours:
        return False, None
    late = since is not None and reader["last_contact"] - since > lagging_after
    return late, what % {"theirs": theirs, "ours": ours}


_RULES_BEHIND = N_("rules version %(theirs)d behind ours (%(ours)d)")
_DIRECTORY_BEHIND = N_("directory version %(theirs)d behind ours (%(ours)d)")


def state(reader, now, lagging_after, offline_after, rules_version, directory_version,
          rules_since=None, directory_since=None):
    """(state, reason) for a reader row (a mapping with the readers table's columns).

    rules_since / directory_since: when our current rules / directory version was
    published (epoch seconds), if known; see the module's docstring.
    """
    contact = reader.get("last_contact")
    if contact is None:
        return "never_seen", _("Never contacted the backend.")
    quiet = now - contact
    if quiet > offline_after:
        return "offline", _("No contact for %(quiet)s.", quiet=duration(quiet))

    refused_at = reader.get("last_refusal_at")
    last_batch = reader.get("last_batch")
    code = reader.get("last_refusal_code")
    if refused_at is not None and (last_batch is None or refused_at >= last_batch):
        return "refused", _("Last sync refused %(ago)s ago: %(reason)s (%(code)s).", ago=duration(now - refused_at),
                            reason=_refusal_text(code), code=code or "-")

    lagging, notes = [], []
    if quiet > lagging_after:
        lagging.append(_("no contact for %(quiet)s", quiet=duration(quiet)))
    pending = reader.get("pending") or 0
    oldest = reader.get("oldest_t")
    if pending and oldest is not None and now - oldest > lagging_after:
        lagging.append(ngettext("%(num)d receipt waiting, the oldest for %(age)s",
                                "%(num)d receipts waiting, the oldest for %(age)s", pending,
                                age=duration(now - oldest)))
    error = reader.get("last_error") or ""
    if error.startswith("sync."):
        # its own word: the reader's last sync before this report failed (network, a
        # lost or spoiled answer); until a report says otherwise, it is not in step
        lagging.append(_("the reader reports a failed sync: %(reason)s (%(code)s)",
                         reason=_refusal_text(error), code=error))
    journal = reader.get("journal")
    if journal in FULL_JOURNAL:
        lagging.append(_("journal %(state)s", state=journal_word(journal)))
    for ours, since, column, what in ((rules_version, rules_since, "rules_version", _(_RULES_BEHIND)),
                                      (directory_version, directory_since, "directory_version",
                                       _(_DIRECTORY_BEHIND))):
        late, sentence = _behind(reader, now, lagging_after, ours, since, column, what)
        if sentence:
            (lagging if late else notes).append(sentence)
    if lagging:
        return "lagging", _sentence(lagging + notes)

    if quiet < 1:
        said = _("last contact just now, %(num)d pending", num=pending) if pending else \
            _("last contact just now, nothing pending")
    else:
        said = _("last contact %(ago)s ago, %(num)d pending", ago=duration(quiet), num=pending) if pending else \
            _("last contact %(ago)s ago, nothing pending", ago=duration(quiet))
    return "in_sync", _sentence([said] + notes)


def _sentence(parts):
    text = "; ".join(parts)
    return text[:1].upper() + text[1:] + "."
