#!/usr/bin/env python3
"""A real SMTP server on loopback for the email-code tests (aiosmtpd from PyPI, pinned in
requirements.txt).

    python3 smtp-server.py

1. Makes the virtual environment .venv next to this file when it is missing or its
   requirements changed (python3 -m venv, pip install -r requirements.txt), under a file lock
   so that test binaries starting together wait for one another.
2. Runs itself inside it: serves SMTP on 127.0.0.1 (a free port), prints one JSON line
   {"port", "version"} when ready, then one JSON line per message received:
   {"mail_from", "rcpt_tos", "subject", "to", "text"} where text is the decoded plain-text body.
3. Exits when its standard input closes (the test binary ended).
"""

import json
import os
import socket
import subprocess
import sys
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
VENV = os.path.join(HERE, ".venv")
VENV_PYTHON = os.path.join(VENV, "bin", "python")
STAMP = os.path.join(VENV, "requirements.installed")


def log(message):
    print(f"smtp-server: {message}", file=sys.stderr, flush=True)


def ensure_venv():
    import fcntl

    requirements_path = os.path.join(HERE, "requirements.txt")
    requirements = open(requirements_path, "rb").read()
    with open(os.path.join(HERE, ".venv.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if os.path.exists(STAMP) and open(STAMP, "rb").read() == requirements:
            return
        if not os.path.exists(VENV_PYTHON):
            log("creating the virtual environment")
            subprocess.run([sys.executable, "-m", "venv", VENV], check=True, stdout=sys.stderr)
        log("installing requirements.txt")
        subprocess.run(
            [VENV_PYTHON, "-m", "pip", "install", "--disable-pip-version-check", "-q",
             "-r", requirements_path],
            check=True,
            stdout=sys.stderr,
        )
        with open(STAMP, "wb") as stamp:
            stamp.write(requirements)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def serve():
    import email
    import email.policy

    import aiosmtpd
    from aiosmtpd.controller import Controller

    emit_lock = threading.Lock()

    def emit(value):
        with emit_lock:
            print(json.dumps(value), flush=True)

    class Recorder:
        async def handle_DATA(self, server, session, envelope):
            message = email.message_from_bytes(envelope.content, policy=email.policy.default)
            body = message.get_body(preferencelist=("plain",))
            emit({
                "mail_from": envelope.mail_from,
                "rcpt_tos": list(envelope.rcpt_tos),
                "subject": str(message.get("Subject", "")),
                "to": str(message.get("To", "")),
                "text": body.get_content() if body is not None else "",
            })
            return "250 Message accepted for delivery"

    port = free_port()
    controller = Controller(Recorder(), hostname="127.0.0.1", port=port)
    controller.start()
    emit({"port": port, "version": f"aiosmtpd {aiosmtpd.__version__}"})
    try:
        sys.stdin.read()
    finally:
        controller.stop()


def main():
    if os.path.realpath(sys.prefix) != os.path.realpath(VENV):
        ensure_venv()
        os.execv(VENV_PYTHON, [VENV_PYTHON, os.path.abspath(__file__)] + sys.argv[1:])
    serve()


if __name__ == "__main__":
    main()
