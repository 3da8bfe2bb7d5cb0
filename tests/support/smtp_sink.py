"""A real SMTP server (aiosmtpd) for lockwatch's tests.

Each accepted message is written to OUT_DIR/NNNNNN.json with its decoded headers and bodies,
atomically (write then rename), so a test never reads half a message.

usage: smtp_sink.py PORT OUT_DIR [--reject CODE] [--reject-rcpt ADDRESS] [--auth USER:PASSWORD]
            [--tls-cert CERT --tls-key KEY [--implicit-tls]]
PORT 0: the sink picks a free loopback port itself; it prints `ready port=N` once listening.
--reject CODE answers every DATA with CODE (e.g. 550) instead of accepting.
--reject-rcpt ADDRESS refuses that one recipient (550 5.1.1) at RCPT TO; the others are accepted.
--delay-ms N waits N ms before answering DATA (a slow mail server: a crash can land mid-send).
--auth USER:PASSWORD requires SMTP AUTH (PLAIN/LOGIN) with those credentials.
--tls-cert/--tls-key offer STARTTLS with that certificate; with --implicit-tls the whole session
is TLS from the first byte (SMTPS, as on port 465).
"""
import asyncio
import email
import itertools
import json
import os
import signal
import socket
import ssl
import sys
from email import policy

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult


class Sink:
    def __init__(self, out_dir, reject, reject_rcpt=None):
        self.out_dir = out_dir
        self.reject = reject
        self.reject_rcpt = reject_rcpt
        self.delay_ms = int(option("--delay-ms") or 0)
        self.counter = itertools.count(len(os.listdir(out_dir)) + 1)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.reject_rcpt and address.lower() == self.reject_rcpt.lower():
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown in local recipient table"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.delay_ms:
            await asyncio.sleep(self.delay_ms / 1000)
        if self.reject:
            return f"{self.reject} rejected by test sink"
        msg = email.message_from_bytes(envelope.content, policy=policy.default)
        text = msg.get_body(preferencelist=("plain",))
        html = msg.get_body(preferencelist=("html",))
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "subject": str(msg.get("Subject", "")),
            "message_id": str(msg.get("Message-ID", "")),
            "in_reply_to": str(msg.get("In-Reply-To", "")),
            "references": str(msg.get("References", "")),
            "content_type": msg.get_content_type(),
            "text": text.get_content() if text is not None else "",
            "html": html.get_content() if html is not None else "",
            "raw": envelope.content.decode("utf-8", "replace"),
            "lockwatch": {
                "kind": str(msg.get("X-Lockwatch-Kind", "")),
                "severity": str(msg.get("X-Lockwatch-Severity", "")) or None,
                "rules": [r.strip() for r in str(msg.get("X-Lockwatch-Rules", "")).split(",") if r.strip()],
                "resource": str(msg.get("X-Lockwatch-Resource", "")),
            },
        }
        path = os.path.join(self.out_dir, f"{next(self.counter):06d}.json")
        with open(path + ".tmp", "w") as f:
            json.dump(record, f)
        os.rename(path + ".tmp", path)
        return "250 OK"


def option(name):
    return sys.argv[sys.argv.index(name) + 1] if name in sys.argv else None


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    port, out_dir = int(sys.argv[1]), sys.argv[2]
    reject, auth = option("--reject"), option("--auth")
    os.makedirs(out_dir, exist_ok=True)
    extra = {}
    if auth:
        user, password = auth.split(":", 1)

        def authenticator(server, session, envelope, mechanism, auth_data):
            ok = auth_data.login.decode() == user and auth_data.password.decode() == password
            return AuthResult(success=ok)

        extra = {"authenticator": authenticator, "auth_required": True, "auth_require_tls": False}
    cert, key = option("--tls-cert"), option("--tls-key")
    if cert and key:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(cert, key)
        if "--implicit-tls" in sys.argv:
            extra["ssl_context"] = ctx
        else:
            extra["tls_context"] = ctx
    sink = Sink(out_dir, reject, option("--reject-rcpt"))
    # Port 0: pick one and retry if another process takes it between the pick and the bind.
    for attempt in range(20):
        chosen = port or free_port()
        controller = Controller(sink, hostname="127.0.0.1", port=chosen, **extra)
        try:
            controller.start()
            break
        except (OSError, RuntimeError):
            if port or attempt == 19:
                raise
    print(f"ready port={chosen}", flush=True)
    loop = asyncio.new_event_loop()
    stop = loop.create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda: stop.done() or stop.set_result(None))
    loop.run_until_complete(stop)
    controller.stop()


if __name__ == "__main__":
    main()
