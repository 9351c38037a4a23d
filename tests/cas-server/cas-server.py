#!/usr/bin/env python3
"""Starts a real CAS 3.0 server (django-cas-server from PyPI, pinned in requirements.txt) on
loopback for tests/cas_login.rs.

    python3 cas-server.py [--port 0]

1. Creates the virtual environment .venv next to this file if it is missing (python3 -m venv,
   pip install -r requirements.txt), under a file lock so parallel test binaries wait.
2. Re-runs itself inside it: migrates a fresh SQLite database in a temporary directory,
   creates the test users of users.json (Django users: email is released as `mail`,
   first_name as `displayName`) and a service pattern that admits Gatehouse callback URLs on
   loopback with any query.
3. Serves Django with its threaded development server on 127.0.0.1:PORT (0 picks a free
   port), prints one JSON line {"base_url", "cas_url", "port", "version", "users"} when ready,
   and exits when its stdin closes.
"""

import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
VENV = os.path.join(HERE, ".venv")
VENV_PYTHON = os.path.join(VENV, "bin", "python")
STAMP = os.path.join(VENV, "requirements.installed")

# Gatehouse's callback: /{slug}/sso/{connection}/callback, with ?state=... (and, from the CAS
# server, &ticket=...).
SERVICE_PATTERN = r"^https?://(127\.0\.0\.1|localhost)(:[0-9]+)?/[^/?#]+/sso/[^/?#]+/callback(\?.*)?$"


def log(message):
    print(f"cas-server: {message}", file=sys.stderr, flush=True)


def ensure_venv():
    import fcntl

    requirements = open(os.path.join(HERE, "requirements.txt"), "rb").read()
    lock_path = os.path.join(HERE, ".venv.lock")
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if os.path.exists(STAMP) and open(STAMP, "rb").read() == requirements:
            return
        if not os.path.exists(VENV_PYTHON):
            log("creating the virtual environment")
            subprocess.run([sys.executable, "-m", "venv", VENV], check=True, stdout=sys.stderr)
        log("installing requirements.txt")
        subprocess.run(
            [VENV_PYTHON, "-m", "pip", "install", "--disable-pip-version-check", "-q",
             "-r", os.path.join(HERE, "requirements.txt")],
            check=True,
            stdout=sys.stderr,
        )
        with open(STAMP, "wb") as stamp:
            stamp.write(requirements)


def serve(port):
    import tempfile
    import threading

    workdir = tempfile.mkdtemp(prefix="gatehouse-cas-server-")
    os.environ["CAS_TEST_DB"] = os.path.join(workdir, "db.sqlite3")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "casproject.settings")
    sys.path.insert(0, HERE)

    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)

    from django.contrib.auth import get_user_model
    from cas_server.models import ReplaceAttributName, ServicePattern

    users = json.load(open(os.path.join(HERE, "users.json")))["users"]
    User = get_user_model()
    for spec in users:
        user = User(username=spec["username"], email=spec["email"], first_name=spec["first_name"])
        user.set_password(spec["password"])
        user.save()

    pattern = ServicePattern.objects.create(
        pos=100, name="gatehouse", pattern=SERVICE_PATTERN, single_log_out=False
    )
    ReplaceAttributName.objects.create(name="email", replace="mail", service_pattern=pattern)
    ReplaceAttributName.objects.create(name="first_name", replace="displayName", service_pattern=pattern)

    from django.core.servers.basehttp import ThreadedWSGIServer, WSGIRequestHandler
    from django.core.wsgi import get_wsgi_application
    from importlib.metadata import version

    httpd = ThreadedWSGIServer(("127.0.0.1", port), WSGIRequestHandler, ipv6=False)
    httpd.set_app(get_wsgi_application())
    port = httpd.server_address[1]
    threading.Thread(target=httpd.serve_forever, daemon=True).start()

    base = f"http://127.0.0.1:{port}"
    print(json.dumps({
        "base_url": base,
        "cas_url": f"{base}/cas",
        "port": port,
        "version": f"django-cas-server {version('django-cas-server')}, Django {version('Django')}",
        "users": [{k: u[k] for k in ("username", "password", "email", "first_name")} for u in users],
    }), flush=True)

    # Exit when the test process goes away (stdin closes).
    try:
        while sys.stdin.buffer.read(4096):
            pass
    finally:
        httpd.shutdown()
        import shutil

        shutil.rmtree(workdir, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--in-venv", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not args.in_venv:
        ensure_venv()
        os.execv(VENV_PYTHON, [VENV_PYTHON, os.path.abspath(__file__), "--port", str(args.port), "--in-venv"])
    serve(args.port)


if __name__ == "__main__":
    main()
