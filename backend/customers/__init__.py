"""Customers, their cards, households and consents (DESIGN.md section 7).

  fields.py     the checks of what a desk types (name, contact, channel, ...) and how a
                command names a customer (id, pseudonym or card number)
  notices.py    the privacy notice's texts by version, published and kept for ever
  enrol.py      enrolment, households, closing an account
  cards.py      a customer's cards: issued or linked (the desks too), replaced, blocked
  consents.py   consents in force, given and withdrawn, objection to marketing
  importcsv.py  customers from CSV, all or nothing
  commands.py   the operator's commands over them (registered by backend/cli.py)
"""
