"""Which consents are in force: the newest `consents` row of a customer for a purpose.

Apart from backend/customers/consents.py (which writes them) because the minimisation
(backend/privacy/minimise.py) reads them, and a withdrawal of profiling calls it back.

    in_force(db, 7)                    # {"scheme": True, "profiling": False, "marketing": False}
    db.execute("SELECT ... WHERE customer_id IN (%s)" % consenting_sql("profiling"))
"""
PURPOSES = ("scheme", "profiling", "marketing")


def consenting_sql(purpose):
    """SQL selecting the ids of customers whose `purpose` consent is in force (given).

    `purpose` must be one of PURPOSES (it is written into the SQL, never a user's text)."""
    if purpose not in PURPOSES:
        raise ValueError(purpose)
    return ("SELECT c.customer_id FROM consents c WHERE c.purpose = '%s' AND c.given = 1 AND c.id = "
            "(SELECT max(n.id) FROM consents n WHERE n.customer_id = c.customer_id AND n.purpose = c.purpose)"
            % purpose)


def newest(db, customer_id):
    """{purpose: the newest consents row of that purpose (given, t, channel, operator,
    notice_version)} for one customer; a purpose never asked is missing."""
    columns = ("purpose", "given", "t", "channel", "operator", "notice_version")
    return {row[0]: dict(zip(columns, row)) for row in db.execute(
            "SELECT c.purpose, c.given, c.t, c.channel, c.operator, c.notice_version FROM consents c "
            "WHERE c.customer_id = ? AND c.id = "
            "(SELECT max(n.id) FROM consents n WHERE n.customer_id = c.customer_id AND n.purpose = c.purpose)",
            [customer_id])}


def in_force(db, customer_id):
    """{purpose: True/False} for one customer, from the newest row of each purpose."""
    rows = newest(db, customer_id)
    return {purpose: bool(rows[purpose]["given"]) if purpose in rows else False for purpose in PURPOSES}
