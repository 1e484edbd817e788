"""Sending a shopper their one-time code by e-mail, through the SMTP server the settings
name (SMTP_HOST, SMTP_PORT, MAIL_FROM), with Python's smtplib.

    message = code_message("loyalty@shop.it", "maria@example.it", "123456", 10)   # in the current language
    send_later(message, "localhost", 25, log, "C-3f9a1c0e7b2d")

send_later sends on a thread of its own: the page does not wait for the SMTP server, so
the send's time does not tell whether a card exists (the code's commit still does:
shopper/views.py). A
message that cannot be sent is logged with the customer's pseudonym and the error's kind,
never the code, the address or the message.
"""
import smtplib
import threading
from email.message import EmailMessage

THREAD = "shopper-mail"  # the sending threads' name (the tests wait for them by it)

from loyalty.i18n import _

TIMEOUT = 20  # seconds for the mail server to answer


def code_message(sender, to, code, minutes):
    """The e-mail carrying `code`, in the current language (the shopper's)."""
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = _("Your code for the loyalty card's page")
    msg.set_content(_("Your code to sign in to your loyalty card's page is %(code)s.\n\n"
                      "It is good for %(minutes)d minutes, once. If you did not ask for it, ignore this "
                      "message: nobody can sign in without it.", code=code, minutes=minutes) + "\n")
    return msg


def send(message, host, port):
    with smtplib.SMTP(host, port, timeout=TIMEOUT) as smtp:
        smtp.send_message(message)


def send_later(message, host, port, log, pseudonym):
    """Send `message` on a new thread; returns the thread (tests join it)."""
    def run():
        try:
            send(message, host, port)
        except (OSError, smtplib.SMTPException) as e:
            # the kind of error only: an SMTP server's reply may quote what it was sent
            log.warning("the sign-in code for customer %s was not sent: %s", pseudonym, type(e).__name__)
    thread = threading.Thread(target=run, name=THREAD, daemon=True)
    thread.start()
    return thread
