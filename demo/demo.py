"""`make demo`: a supermarket with three tills, shoppers with loyalty cards, and the
managers' dashboard on the backend.

The first run sets the chain up in data/demo with the operator's own commands
(`flask --app loyalty.backend.app ...`): the database, a store, head office's tiers, promotions,
limits, a card key epoch and 200 cards, three readers with their provisioning files, and a manager's login
(a random password, kept in data/demo/manager.txt, readable by you only), and customer care's
(data/demo/care.txt). Then:
  - the backend runs on a real WSGI server (waitress) at http://127.0.0.1:8000;
  - each reader is the real firmware on the MicroPython unix port (simulated board: the
    till and the PN532 NFC controller are simulators on TCP; the firmware's PN532 driver
    reads the shoppers' NTAG cards, phones and legacy UID cards through it; its contact
    slot, answered by sim/iso7816sim.py, takes contact smart cards), syncing over HTTP
    through a link the demo can cut;
  - shoppers go through the tills; one reader's network is cut for a while: it goes on
    granting discounts offline, the dashboard shows it lagging, then it catches up;
  - customer care records a contact or two with customers through the care pages' own form;
  - a mail server on loopback (aiosmtpd, in this process) takes the shoppers' sign-in codes
    for the shopper's page (/me/) and writes each message to data/demo/mail as an .eml file;
  - the dashboard's address and logins are printed, and a shopper comes now and then
    until Ctrl-C, which stops everything. Run it again: the data carries on.

    python demo/demo.py [--port 8000] [--shoppers 30] [--once]
"""
import argparse
import csv
import html
import os
import random
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

from loyalty.backend import db as dbmod, headoffice
from loyalty.backend.customers.inforce import consenting_sql
from loyalty.sim.cardmodels import AppletCard, NtagCard, PhoneCard, UidCard
from loyalty.sim.iso7816sim import ContactCard
from loyalty.sim.backendproc import Backend, Dashboard
from loyalty.sim.mailbox import Mailbox
from loyalty.sim.netcut import Link
from loyalty.protocol import errors, loyaltycard
from loyalty.sim.simboard import SimReader, wait_for
from loyalty.sim import sampleshop

DATA = ROOT / "data" / "demo"
INSTANCE = DATA / "instance"
DATABASE = INSTANCE / "loyalty.db"
STORE = ("S1", "Supermercato Centro")
READERS = ["R1", "R2", "R3"]
CATALOGUE = [  # sku, category, unit price in cents
    ("1001", "latticini", 149), ("1002", "latticini", 239), ("8001", "caffe", 429),
    ("2001", "panetteria", 99), ("3001", "frutta", 189), ("3002", "frutta", 259),
    ("4001", "pasta", 119), ("5001", "detersivi", 549), ("6001", "bevande", 79),
]
# the demo's thresholds: a reader is "lagging" after 20 s without contact (the shop's
# default is 5 minutes), so the network cut shows on the dashboard within the demo
CONFIG = {"LAGGING_AFTER": 20, "OFFLINE_AFTER": 600, "SAMPLE_EVERY": 10, "REFRESH_SECONDS": 3}


MAIL_FROM = "carta@supermercato-centro.example"
SHOPPER = 0  # the customer (row of customers.csv) the printed line invites you to be on /me/


def use_folder(folder):
    global DATA, INSTANCE, DATABASE
    DATA = Path(folder).resolve()
    INSTANCE = DATA / "instance"
    DATABASE = INSTANCE / "loyalty.db"


def flask(*args):
    """One operator command, as a shell would run it."""
    env = dict(os.environ, LOYALTY_INSTANCE=str(INSTANCE))
    r = subprocess.run([sys.executable, "-m", "flask", "--app", "loyalty.backend.app"] + list(args), env=env,
                       cwd=str(ROOT), capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit("flask %s failed:\n%s%s" % (" ".join(args), r.stdout, r.stderr))
    return r.stdout.strip()


def set_up(port, smtp_port):
    """The chain on first run, through the operator's commands; later runs keep it. The
    instance config is written each run: the mail server's port changes from run to run."""
    done = DATA / "setup-done"
    if not done.exists():
        # a first run stopped half-way leaves a half-made chain: start it again whole
        for path in (INSTANCE, DATA / "provisioning"):
            if path.exists():
                shutil.rmtree(path)
        (DATA / "care.txt").unlink(missing_ok=True)  # its login was in the database just removed
    INSTANCE.mkdir(parents=True, exist_ok=True)
    config = dict(CONFIG, SMTP_HOST="127.0.0.1", SMTP_PORT=smtp_port, MAIL_FROM=MAIL_FROM)
    (INSTANCE / "config.py").write_text("".join("%s = %r\n" % kv for kv in config.items()))
    print("schema:", flask("init-db"))
    if done.exists():
        care_login()  # a chain set up before customer care had a login gets one
        return
    print("setting up the chain in %s:" % DATA)
    flask("add-store", STORE[0], STORE[1], "--tz", "Europe/Rome")
    for tid, code, bp, name in sampleshop.TIERS:
        flask("add-tier", str(tid), code, str(bp), "--name", name)
    for p in sampleshop.PROMOTIONS:
        opts = []
        for key in ("sku", "category", "min_cents", "bp", "cents"):
            if key in p:
                opts += ["--" + key.replace("_", "-"), str(p[key])]
        flask("add-promotion", p["id"], "--kind", p["kind"], *opts)
    limits = []
    for key, value in sampleshop.LIMITS.items():
        limits += ["--" + key.replace("_", "-"), str(value)]
    flask("set-limits", *limits)
    print(" ", flask("new-card-epoch"))
    cards = DATA / "cards.csv"
    with open(cards, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["card", "tier", "status"])
        w.writerows(sampleshop.card_rows(200))
        w.writerows((loyaltycard.uid_card(uid), tier, 0) for uid, tier in sampleshop.UID_CARDS)
    print(" ", flask("import-cards", str(cards)))
    enrolled = enrol_customers()
    for r in READERS:
        flask("add-reader", r, "--store", STORE[0], "--name", "Cassa " + r[1:],
              "--backend", "http://127.0.0.1:%d" % port, "--out", str(DATA / "provisioning" / (r + ".json")))
    password = DATA / "manager.txt"
    secret_file(password)
    flask("create-manager", "manager", "--password-file", str(password))
    care_login()
    done.write_text("the chain is set up; delete data/demo to start afresh\n")
    print("  store %s, %d readers, 200 cards (%d of them a customer's), rules, a manager's and customer care's "
          "logins: done" % (STORE[0], len(READERS), enrolled))


def secret_file(path):
    """A random password in `path`, readable by you only."""
    fd = os.open(str(path), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_urlsafe(12) + "\n")


def care_login():
    """Customer care's login (role care), once: its password in care.txt."""
    password = DATA / "care.txt"
    if password.exists():
        return
    secret_file(password)
    flask("create-manager", "care", "--role", "care", "--password-file", str(password))


CUSTOMERS = 120  # the first of the 200 cards (blocked ones left out); the others are nobody's (sold, never enrolled)
FIRST_NAMES = ("Giulia", "Marco", "Francesca", "Luca", "Chiara", "Niccolò", "Sofia", "Matteo")
LAST_NAMES = ("Rossi", "Bianchi", "D'Angelo", "Esposito", "Ricci", "Colombo", "Bruno", "Galli")


def enrol_customers():
    """A privacy notice, then customers for the first CUSTOMERS cards, from a CSV in
    Italian as a desk would export it: everybody joins the scheme; about a third consent to
    profiling and a quarter to marketing, nobody under 14 to either (docs/privacy.md)."""
    notice = DATA / "informativa.txt"
    notice.write_text("Informativa sul trattamento dei dati personali della carta fedeltà (versione demo): "
                      "fidelizzazione, profilazione e marketing, ciascuno con il proprio consenso facoltativo.\n")
    print(" ", flask("publish-notice", "--it", str(notice), "--operator", "demo"))
    customers = DATA / "customers.csv"
    with open(customers, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["nome", "contatto", "negozio", "carta", "livello", "almeno_14", "profilazione", "marketing"])
        n = 0
        for i, (card, tier, status) in enumerate(sampleshop.card_rows(CUSTOMERS)):
            if status != 0:
                continue  # a blocked card is nobody's to enrol with (the desk refuses it)
            adult = i % 10 != 9
            w.writerow(["%s %s" % (FIRST_NAMES[i % 8], LAST_NAMES[i // 8 % 8]), "cliente%03d@example.it" % i,
                        STORE[0], card, tier, "sì" if adult else "no", "sì" if adult and i % 3 == 0 else "no",
                        "sì" if adult and i % 4 == 0 else "no"])
            n += 1
    print(" ", flask("import-customers", str(customers), "--operator", "demo", "--notice", "1"))
    return n


def shopper():
    """The row of customers.csv the printed line invites you to be on /me/."""
    with open(DATA / "customers.csv", newline="") as f:
        return list(csv.DictReader(f))[SHOPPER]


def care_calls():
    """(what care types in the search, the contact as the form takes it): a Niccolò D'Angelo
    by the last 4 digits of his card and his name (there are two), and the shopper by card."""
    return (("0022 d'angelo", {"channel": "phone", "reason": "Sconto non applicato",
                               "outcome": "Spiegato: la promozione vale da domani",
                               "note": "Ha chiamato per lo scontrino di stamattina; se succede ancora, richiamarlo."}),
            (shopper()["carta"], {"channel": "email", "reason": "Vedere i propri dati",
                                  "outcome": "Indicata la pagina /me/",
                                  "note": "Spiegato come entrare con la carta e il codice via e-mail."}))


def care_contacts(url, password):
    """Customer care, logged in, finds customers with the search and records a contact with
    each through the customer page's own form (its CSRF token included), once per chain.
    Returns the names, or [] when the chain already has its contacts."""
    db = dbmod.connect(DATABASE)
    try:
        if db.execute("SELECT count(*) FROM care_contacts").fetchone()[0]:
            return []
    finally:
        db.conn.close()
    care = Dashboard(url).login("care", password)
    names = []
    for q, form in care_calls():
        found = care.json("/customers.json?" + urllib.parse.urlencode({"q": q}))["results"]
        if len(found) != 1:
            raise SystemExit("customer care's search for %r found %d customers, not 1" % (q, len(found)))
        page = "/customers/%d" % found[0]["id"]
        story = care.post(page + "/contacts", form, form_page=page)
        if html.escape(form["note"]) not in story:
            raise SystemExit("customer care's contact with %s is not on their page" % found[0]["name"])
        names.append(found[0]["name"])
    return names


def shopper_line(url, mail):
    """How to try the shopper's page as a customer of the demo."""
    row = shopper()
    return ("shopper's page: %s/me/   card %s (%s); the sign-in code arrives by e-mail in %s (an .eml file)"
            % (url, row["carta"], row["nome"], mail))


def issuer_key():
    """Epoch 1's issuer key, which the demo's card models are made with (the issuing desk's
    job in a real chain: tools/issuedesk.py)."""
    db = dbmod.connect(DATABASE)
    try:
        return headoffice.issuer_key(db, 1)
    finally:
        db.conn.close()


def provisioning(reader):
    import json

    return json.loads((DATA / "provisioning" / (reader + ".json")).read_text())


def basket(rng, receipt):
    lines = [{"sku": sku, "cat": cat, "qty": rng.randint(1, 4), "price": price}
             for sku, cat, price in rng.sample(CATALOGUE, rng.randint(1, 6))]
    return {"type": "basket", "receipt": receipt, "lines": lines}


def euro(cents):
    return "%s%d,%02d EUR" % ("-" if cents < 0 else "", abs(cents) // 100, abs(cents) % 100)


class Wallets:
    """The shoppers' cards, as card models the PN532 simulator presents to the readers:
    an NTAG card or a phone per card number (the same one each time it comes back), the
    legacy UID cards, and now and then a forged copy of an NTAG record on another tag."""

    def __init__(self, issuer_key, rng):
        self.issuer, self.rng, self.models = issuer_key, rng, {}

    def _uid(self, i):
        return bytes([0x04, 0x5E, 0xA1]) + i.to_bytes(4, "big")

    def card_for(self, rng):
        """(what the shopper taps, its kind in words)."""
        r = rng.random()
        if r < 0.06:
            uid, _ = rng.choice(sampleshop.UID_CARDS)
            return UidCard(uid), "UID card"
        i = rng.randint(1, 200) if r < 0.9 else rng.randint(900, 999)  # 900+: issued after the last sync
        number = sampleshop.card_number(i)
        if number not in self.models:
            if i % 7 == 0:  # a contact smart card (a JavaCard), T=0 or T=1
                applet = AppletCard(self._uid(i), card=number, epoch=1, issuer_key=self.issuer)
                contact = ContactCard.t1(applet) if i % 2 else ContactCard.t0(applet)
                self.models[number] = (contact, "contact card")
            elif i % 3 == 0:
                self.models[number] = (PhoneCard(number, 1, self.issuer), "phone")
            else:
                self.models[number] = (NtagCard.loyalty(number, 1, self.issuer, self._uid(i)), "NTAG")
        return self.models[number]

    def forged(self, rng):
        """A genuine NTAG's record copied onto a blank tag of another UID."""
        i = rng.randint(1, 200)
        genuine = NtagCard.loyalty(sampleshop.card_number(i), 1, self.issuer, self._uid(i))
        return NtagCard(self._uid(100000 + i), memory=genuine.user_memory())


def tap(reader, card, notes):
    """The shopper taps the card, or inserts it into the slot if it is a contact card, once
    the reader has seen the previous card leave the field and the slot (then even the same
    card is a new tap). Answers nobody asked for meanwhile go into `notes`."""
    reader.tap_out()
    for msg in reader.card_out():  # none, unless a read was still under way
        notes.append("unasked %s %s" % (msg["type"], msg.get("code", "")))
    if isinstance(card, ContactCard):
        reader.slot.insert(card)
    else:
        reader.nfc.tap(card)


def shop(reader, rng, receipt, wallets):
    """One shopper at this reader's till; returns a line for the log."""
    reader.till.send(basket(rng, receipt))
    reader.till.expect("ready")
    notes = []
    if rng.random() < 0.03:
        tap(reader, wallets.forged(rng), notes)
        err = reader.till.expect("error")
        notes.append("a copied tag first: %s" % errors.text(err["code"], "en"))
    card, kind = wallets.card_for(rng)
    tap(reader, card, notes)
    q = reader.till.recv()
    while q["type"] == "error":  # e.g. the card left the field mid-read: the shopper taps again
        notes.append(errors.text(q["code"], "en"))
        tap(reader, card, notes)
        q = reader.till.recv()
    reader.nfc.remove()
    reader.slot.remove()
    if rng.random() < 0.08:
        reader.till.send({"type": "void", "quote": q["quote"]})
        reader.till.expect("voided")
        return "%s %s %s %s: quote voided at the till" % (reader.reader, receipt, kind, q["card"])
    reader.till.send({"type": "commit", "quote": q["quote"], "paid": q["gross"] - q["discount"]})
    c = reader.till.expect("committed")
    if q["note"]:
        notes.append(errors.text(q["note"], "en"))
    note = (" (" + "; ".join(notes) + ")") if notes else ""
    return "%s %s %s %s tier %d: %s, sconto %s, seq %d%s" % (
        reader.reader, receipt, kind, q["card"], q["tier"], euro(q["gross"]), euro(c["discount"]), c["seq"], note)


def dashboard_states(dash):
    out = {}
    for store in dash.json("/stores.json")["stores"]:
        for r in store["readers"]:
            out[r["id"]] = (r["state"], r["pending"])
    return out


def status_table(readers, dash):
    states = dashboard_states(dash)
    print("\n  reader  on the reader: pending  journal   sync error    | dashboard: state      pending")
    for r in readers:
        s = r.status()
        state, pending = states.get(r.reader, ("?", 0))
        print("  %-6s  %22d  %-8s  %-12s  | %-16s %8d" % (r.reader, s["pending"], s["journal"],
                                                            s["sync_error"] or "-", state, pending))
    print()


def customers_line():
    """What the backend knows of its customers after the run, in one line."""
    stored = dbmod.connect(DATABASE)
    try:
        customers, receipts, profiling = stored.execute(
            "SELECT (SELECT count(*) FROM customers), (SELECT count(*) FROM receipts r JOIN cards c "
            "ON c.card = ltrim(r.card, '0') WHERE c.customer_id IS NOT NULL), (SELECT count(*) FROM (%s))"
            % consenting_sql("profiling")).fetchone()
    finally:
        stored.conn.close()
    return ("%d customers, %d of them consenting to profiling; %d receipts are customers' (their lines leave "
            "them after the audit and the return window unless the customer consents: docs/privacy.md)"
            % (customers, profiling, receipts))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, default=8000, help="the backend's port on 127.0.0.1")
    ap.add_argument("--shoppers", type=int, default=30, help="shoppers per till in the scripted part")
    ap.add_argument("--pause", type=float, default=0.3, help="seconds between shoppers")
    ap.add_argument("--once", action="store_true", help="stop after the scripted part (no Ctrl-C wait)")
    ap.add_argument("--data", type=Path, default=DATA, help="the demo's folder (default data/demo)")
    args = ap.parse_args()
    use_folder(args.data)
    mailbox = Mailbox(DATA / "mail").start()  # the shoppers' codes, as .eml files in data/demo/mail
    try:
        set_up(args.port, mailbox.port)
    except BaseException:
        mailbox.stop()
        raise
    password = (DATA / "manager.txt").read_text().strip()
    care_password = (DATA / "care.txt").read_text().strip()
    backend = Backend(DATABASE, INSTANCE, port=args.port, log=DATA / "backend.log")
    links, readers = {}, []
    stop = []
    signal.signal(signal.SIGINT, lambda *a: stop.append(1))
    signal.signal(signal.SIGTERM, lambda *a: stop.append(1))
    try:
        backend.start()
        url = backend.url
        print("backend on %s (log: %s); mail server on 127.0.0.1:%d" % (url, DATA / "backend.log", mailbox.port))
        for name in care_contacts(url, care_password):
            print("customer care recorded a contact with %s on their page" % name)
        for name in READERS:
            p = provisioning(name)
            links[name] = Link(("127.0.0.1", backend.port)).start()
            readers.append(SimReader(name, p["key"], links[name].url, DATA / name, sync_interval=2,
                                     log=DATA / (name + ".log"), nfc=True, contact=True).start())
        dash = Dashboard(url).login("manager", password)
        for r in readers:  # a reader in a shop has synced once before its first shopper
            wait_for(lambda: stop or (lambda s: s["rules"] > 0 and s["directory"] > 0 and s["keys"] > 0)(r.status()),
                     60, every=0.3,
                     what="%s's first sync (see %s)" % (r.reader, DATA / (r.reader + ".log")))
        if stop:
            return
        print("\ndashboard: %s/stores   login: manager / %s" % (url, password))
        print("customer care: %s/customers   login: care / %s\n" % (url, care_password))
        rng = random.Random()
        wallets = Wallets(issuer_key(), rng)
        run = int(time.time()) % 100000
        cut = readers[1]
        cut_at = None
        n = 0
        while not stop and (n < args.shoppers or cut_at):
            if n == args.shoppers // 4 and cut_at is None:
                links[cut.reader].cut()
                cut_at = time.time()
                print("\n*** network cut for %s: it keeps granting discounts offline ***\n" % cut.reader)
            elif cut_at and n >= args.shoppers // 2:
                # back once the dashboard has told the truth about it (or after a minute)
                lagging = dashboard_states(dash)[cut.reader][0] != "in_sync"
                if lagging or time.time() - cut_at > 60:
                    status_table(readers, dash)
                    links[cut.reader].restore()
                    print("*** network back for %s after %.0f s: it catches up ***\n" % (cut.reader, time.time() - cut_at))
                    cut_at = 0
            for r in readers:
                print(shop(r, rng, "%s-%d-%04d" % (r.reader, run, n), wallets))
            n += 1
            if n % 10 == 0:
                status_table(readers, dash)
            time.sleep(args.pause)  # the demo's pace between shoppers, not a wait
        links[cut.reader].restore()

        def caught_up():
            return stop or (all(r.status()["pending"] == 0 for r in readers)
                            and all(s == "in_sync" for s, _ in dashboard_states(dash).values()))

        try:
            wait_for(caught_up, 90, every=0.5)
        except AssertionError:
            pass
        status_table(readers, dash)

        def audit_counts():
            stored = dbmod.connect(DATABASE)
            try:
                return stored.execute("SELECT count(*), coalesce(sum(audit='mismatch'), 0),"
                                      " coalesce(sum(audit IS NULL), 0) FROM receipts").fetchone()
            finally:
                stored.conn.close()

        try:  # the backend's auditor checks every discount a moment after it is stored
            wait_for(lambda: stop or audit_counts()[2] == 0, 30, every=0.5)
        except AssertionError:
            pass
        total, mismatches, waiting = audit_counts()
        states = dashboard_states(dash)
        if all(s == "in_sync" for s, _ in states.values()):
            print("every reader in sync: %d receipts at the backend, each once; %d audited again with the"
                  " engine, %d discount mismatches" % (total, total - waiting, mismatches))
        else:
            print("%d receipts at the backend; not in sync yet: %s" % (
                total, ", ".join("%s %s" % (k, s) for k, (s, _) in states.items() if s != "in_sync")))
        print(customers_line())
        print("\ndashboard: %s/stores   login: manager / %s" % (url, password))
        print("customer care: %s/customers   login: care / %s" % (url, care_password))
        print(shopper_line(url, mailbox.folder))
        if not args.once:
            print("a shopper now and then; Ctrl-C stops everything\n")
            while not stop:
                r = rng.choice(readers)
                print(shop(r, rng, "%s-%d-%04d" % (r.reader, run, n), wallets))
                n += 1
                for _ in range(int(rng.uniform(2, 6) * 10)):
                    if stop:
                        break
                    time.sleep(0.1)  # the demo's pace (a shopper now and then), checking stop: not a wait
    finally:
        for r in readers:
            r.stop()
        for link in links.values():
            link.stop()
        backend.stop()
        mailbox.stop()
        print("stopped")


if __name__ == "__main__":
    main()
