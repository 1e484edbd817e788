"""A mail server on loopback for the demo and the browser test: aiosmtpd, in the caller's
process, takes what the backend sends (the shoppers' sign-in codes) and keeps it, each
message also written to a folder as an .eml file a person can open.

    with Mailbox(folder) as box:           # SMTP on 127.0.0.1, a free port
        box.port                            # SMTP_PORT for the backend's instance config
        msg = box.wait(1)                   # the first message (email.message.EmailMessage)
        code_in(msg)                        # the 6-digit code it carries
        # folder/0001-maria.rossi@example.it.eml

It delivers nothing anywhere else: the addresses are the demo's and the tests' own.
"""
import email
import email.policy
import re
import socket
import threading
from pathlib import Path

from aiosmtpd.controller import Controller


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def code_in(message):
    """The 6-digit sign-in code in a message's plain text."""
    return re.search(r"\b(\d{6})\b", message.get_body(("plain",)).get_content()).group(1)


class Mailbox:
    def __init__(self, folder=None, port=0):
        self.folder = Path(folder) if folder is not None else None
        self.port = port or free_port()
        self.messages = []
        self.arrived = threading.Condition()
        self.controller = None

    async def handle_DATA(self, server, session, envelope):
        """aiosmtpd's hook: one message received."""
        with self.arrived:
            self.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
            n = len(self.messages)
            self.arrived.notify_all()
        if self.folder is not None:
            # the file's name says the order and the recipient, with nothing a path could misread
            to = re.sub(r"[^A-Za-z0-9@._+-]", "_", ",".join(envelope.rcpt_tos))[:80]
            (self.folder / ("%04d-%s.eml" % (len(list(self.folder.glob("*.eml"))) + 1, to))).write_bytes(
                envelope.content)
        return "250 OK (message %d)" % n

    def wait(self, n, timeout=10):
        """The n-th message (1-based), once it has arrived; AssertionError after `timeout` s."""
        with self.arrived:
            if not self.arrived.wait_for(lambda: len(self.messages) >= n, timeout):
                raise AssertionError("%d e-mails arrived, not %d" % (len(self.messages), n))
            return self.messages[n - 1]

    def start(self):
        if self.folder is not None:
            self.folder.mkdir(parents=True, exist_ok=True)
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self.controller.start()
        return self

    def stop(self):
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
