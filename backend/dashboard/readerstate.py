"""A reader's sync state as the dashboard shows it: one word, one colour, one reason.

    >>> state({"last_contact": 1000, "last_batch": 1000, "pending": 0}, now=1060,
    ...       lagging_after=300, offline_after=1800, rules_version=4, directory_version=9)
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
purple, never seen grey. The dashboard always prints the word next to the colour.
"""
from loyalty.protocol import errors


STATES = ("in_sync", "lagging", "refused", "offline", "never_seen")

# the readers columns state() reads: every page that shows a state selects them all, so
# two pages never judge one reader from different facts
COLUMNS = ("last_contact", "last_batch", "last_refusal_at", "last_refusal_code", "pending", "oldest_t",
           "last_error", "journal", "rules_version", "directory_version")

WORDS = {
    "in_sync": "in sync",
    "lagging": "lagging",
    "refused": "refused",
    "offline": "offline",
    "never_seen": "never seen",
}

COLOURS = {
    "in_sync": "#1a7f37",
    "lagging": "#b26b00",
    "refused": "#7b2fa8",
    "offline": "#c62828",
    "never_seen": "#6b7280",
}

FULL_JOURNAL = ("nearly_full", "full")


def duration(seconds):
    """A short English duration: '45 s', '12 min', '3 h 05 min', '2 days'."""
    seconds = max(0, int(seconds))
    if seconds < 60:
        return "%d s" % seconds
    if seconds < 3600:
        return "%d min" % (seconds // 60)
    if seconds < 86400:
        return "%d h %02d min" % (seconds // 3600, seconds % 3600 // 60)
    days = seconds // 86400
    return "%d day%s" % (days, "" if days == 1 else "s")


def legend(lagging_after, offline_after):
    """[(state, word, colour, rule)] for the dashboard's legend, in the order of STATES."""
    lag, off = duration(lagging_after), duration(offline_after)
    rules = {
        "in_sync": ("In contact within %s, no receipt waiting over %s, its last sync went through, "
                    "journal not full." % (lag, lag)),
        "lagging": ("No contact for over %s, or receipts waiting over %s, or the reader reports a "
                    "failed sync, or the journal nearly full, or rules/directory not fetched %s "
                    "after publication." % (lag, lag, lag)),
        "refused": "Its last sync was refused: its receipts are not coming in (see the reason).",
        "offline": "No contact for over %s." % off,
        "never_seen": "Never contacted the backend.",
    }
    return [(s, WORDS[s], COLOURS[s], rules[s]) for s in STATES]


def _refusal_text(code):
    return errors.text(code, "en") if code else "no reason recorded"


def _behind(reader, now, lagging_after, ours, since, column, what):
    """(counts as lagging, sentence) for one of the rules/directory versions."""
    theirs = reader.get(column)
    if theirs is None or ours is None or theirs >= ours:
        return False, None
    late = since is not None and reader["last_contact"] - since > lagging_after
    return late, "%s version %d behind ours (%d)" % (what, theirs, ours)


def state(reader, now, lagging_after, offline_after, rules_version, directory_version,
          rules_since=None, directory_since=None):
    """(state, reason) for a reader row (a mapping with the readers table's columns).

    rules_since / directory_since: when our current rules / directory version was
    published (epoch seconds), if known; see the module's docstring.
    """
    contact = reader.get("last_contact")
    if contact is None:
        return "never_seen", "Never contacted the backend."
    quiet = now - contact
    if quiet > offline_after:
        return "offline", "No contact for %s." % duration(quiet)

    refused_at = reader.get("last_refusal_at")
    last_batch = reader.get("last_batch")
    code = reader.get("last_refusal_code")
    if refused_at is not None and (last_batch is None or refused_at >= last_batch):
        return "refused", "Last sync refused %s ago: %s (%s)." % (
            duration(now - refused_at), _refusal_text(code), code or "-")

    lagging, notes = [], []
    if quiet > lagging_after:
        lagging.append("no contact for %s" % duration(quiet))
    pending = reader.get("pending") or 0
    oldest = reader.get("oldest_t")
    if pending and oldest is not None and now - oldest > lagging_after:
        lagging.append("%d receipt%s waiting, the oldest for %s"
                       % (pending, "" if pending == 1 else "s", duration(now - oldest)))
    error = reader.get("last_error") or ""
    if error.startswith("sync."):
        # its own word: the reader's last sync before this report failed (network, a
        # lost or spoiled answer); until a report says otherwise, it is not in step
        lagging.append("the reader reports a failed sync: %s (%s)" % (_refusal_text(error), error))
    journal = reader.get("journal")
    if journal in FULL_JOURNAL:
        lagging.append("journal %s" % journal.replace("_", " "))
    for ours, since, column, what in ((rules_version, rules_since, "rules_version", "rules"),
                                      (directory_version, directory_since, "directory_version",
                                       "directory")):
        late, sentence = _behind(reader, now, lagging_after, ours, since, column, what)
        if sentence:
            (lagging if late else notes).append(sentence)
    if lagging:
        return "lagging", _sentence(lagging + notes)

    said = "Last contact " + ("just now" if quiet < 1 else "%s ago" % duration(quiet))
    said += ", %d pending" % pending if pending else ", nothing pending"
    return "in_sync", _sentence([said] + notes)


def _sentence(parts):
    text = "; ".join(parts)
    return text[:1].upper() + text[1:] + "."
