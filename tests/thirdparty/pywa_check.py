#!/usr/bin/env python3
"""Drive the Ringback Cloud API sandbox with pywa, an unmodified third-party client.

Usage:  pywa_check.py [SANDBOX_URL [WEBHOOK_PORT]]
        (or RINGBACK_SANDBOX_URL / PYWA_WEBHOOK_PORT in the environment)

The sandbox must already be running and posting its webhooks to
http://127.0.0.1:<WEBHOOK_PORT>/webhook; this script starts only that receiver.

What is pywa's and what is ours:
  * Sending: pywa's own WhatsApp client. The one thing changed is the host of the base URL
    pywa builds (https://graph.facebook.com/v<version>), done through the httpx.Client we
    hand pywa in its documented `session=` argument. No pywa code is patched.
  * Signatures: pywa's WhatsApp.webhook_update_validator (what pywa's Flask/FastAPI/Starlette
    routes call; it checks X-Hub-Signature-256 against app_secret with utils.webhook_updates_validator).
  * Parsing: pywa's WhatsApp.webhook_update_handler (its entry point for custom servers), which
    filters by phone_id/waba_id, picks the update type and builds types.Message /
    types.MessageStatus for our handlers. pywa only dispatches the first item of a POST
    (david-lev/pywa#229), while the sandbox, like Meta, batches; so each signed POST is split
    into one-item envelopes (contents untouched) before being handed to pywa.

Set PYWA_CHECK_DUMP=<dir> to keep every webhook POST body there (post-NN.json).

Prints one line per check and ends with "N passed, M failed"; exit 0 only if M == 0.
"""

from __future__ import annotations

import copy
import http.server
import json
import logging
import os
import sys
import threading
import time
import traceback
import urllib.error
import urllib.request

import httpx
import pywa
from pywa import WhatsApp, handlers, types, utils
from pywa.types.sent_update import SentTemplateStatus
from pywa.types.templates import TemplateLanguage

PHONE_NUMBER_ID = "100000000000001"
WABA_ID = "200000000000001"
DISPLAY_NUMBER = "15550100001"
TOKEN = "ringback-demo-token"
APP_SECRET = "ringback-demo-app-secret"
USER = "4915112345678"  # the simulated WhatsApp user
USER_NAME = "Tester"
WEBHOOK_WAIT_S = 15.0  # total budget for all awaited webhooks

SANDBOX_URL = (
    sys.argv[1] if len(sys.argv) > 1 else os.environ.get("RINGBACK_SANDBOX_URL", "")
).rstrip("/")
WEBHOOK_PORT = int(
    sys.argv[2] if len(sys.argv) > 2 else os.environ.get("PYWA_WEBHOOK_PORT", "0")
)
if not SANDBOX_URL or not WEBHOOK_PORT:
    sys.exit(__doc__)

# ---------------------------------------------------------------- results

passed = 0
failed = 0


def check(name: str, ok: bool, detail: str = "") -> bool:
    global passed, failed
    if ok:
        passed += 1
    else:
        failed += 1
    print(f"{'PASS' if ok else 'FAIL'}  {name}" + (f"  ({detail})" if detail else ""), flush=True)
    return ok


def info(msg: str) -> None:
    print(f"      {msg}", flush=True)


# ---------------------------------------------------------------- pywa's own error log

class _Collect(logging.Handler):
    """pywa swallows exceptions raised while building an update and logs them; keep them."""

    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            text += f": {type(exc).__name__}: {exc}"
        self.records.append(f"[{record.levelname} {record.name}] {text}")


pywa_log = _Collect()
logging.getLogger("pywa").addHandler(pywa_log)
logging.getLogger("pywa").setLevel(logging.WARNING)

# ---------------------------------------------------------------- the pywa client

session = httpx.Client(timeout=10.0)
wa = WhatsApp(
    phone_id=PHONE_NUMBER_ID,
    token=TOKEN,
    session=session,
    app_secret=APP_SECRET,  # enables (and keys) webhook_update_validator
    waba_id=WABA_ID,  # with filter_updates (default True): entry.id must be our WABA
    verify_token="unused",
)
# The only change to pywa's behaviour: point the base URL pywa built at the sandbox. Keep its
# path (/v<api version>/) and replace scheme, host and port.
pywa_base = session.base_url
sandbox = httpx.URL(SANDBOX_URL)
session.base_url = pywa_base.copy_with(scheme=sandbox.scheme, host=sandbox.host, port=sandbox.port)
print(f"pywa {pywa.__version__}, httpx {httpx.__version__}", flush=True)
info(f"base URL: pywa built {pywa_base} -> set to {session.base_url}")

lock = threading.RLock()  # re-entrant: pywa calls our handlers while the receiver holds it
inbound: dict[str, types.Message] = {}  # wamid -> Message built by pywa
statuses: dict[tuple[str, str], types.MessageStatus] = {}  # (wamid, status) -> built by pywa
raw_items: set[tuple[str, str]] = set()  # what the sandbox posted: ("message", id) / (id, status)
posts: list[dict] = []  # every POST: body, signature, pywa's verdict, item count
handler_errors: list[str] = []
item_errors: dict[tuple[str, str], list[str]] = {}  # what pywa logged while handling each item


def on_message(_: WhatsApp, msg: types.Message) -> None:
    with lock:
        inbound[msg.id] = msg


def on_status(_: WhatsApp, st: types.MessageStatus) -> None:
    with lock:
        statuses[(st.id, str(st.status))] = st


wa.add_handlers(handlers.MessageHandler(on_message), handlers.MessageStatusHandler(on_status))


def split(envelope: dict):
    """One envelope per message / status, everything else kept as the sandbox sent it."""
    for entry in envelope.get("entry", []):
        for change in entry.get("changes", []):
            value = change.get("value", {})
            base = {k: v for k, v in value.items() if k not in ("messages", "contacts", "statuses")}
            contacts = value.get("contacts", [])

            def one(item_key: str, item: dict, contact: dict | None):
                v = copy.deepcopy(base)
                if contact is not None:
                    v["contacts"] = [contact]
                v[item_key] = [item]
                e = {k: x for k, x in entry.items() if k != "changes"}
                e["changes"] = [{k: x for k, x in change.items() if k != "value"} | {"value": v}]
                return {k: x for k, x in envelope.items() if k != "entry"} | {"entry": [e]}

            for i, m in enumerate(value.get("messages", [])):
                c = next((c for c in contacts if c.get("wa_id") == m.get("from")), None)
                if c is None and i < len(contacts):
                    c = contacts[i]
                yield ("message", m.get("id")), one("messages", m, c)
            for s in value.get("statuses", []):
                c = next(
                    (
                        c
                        for c in contacts
                        if (s.get("recipient_id") and c.get("wa_id") == s.get("recipient_id"))
                        or (s.get("recipient_user_id") and c.get("user_id") == s.get("recipient_user_id"))
                    ),
                    None,
                )
                yield (s.get("id"), s.get("status")), one("statuses", s, c)


class Receiver(http.server.BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        signature = self.headers.get(utils.HUB_SIG)
        verdict = wa.webhook_update_validator(body, signature)  # None = valid
        record = {"body": body, "sig": signature, "verdict": verdict, "items": 0, "path": self.path}
        if verdict is None:
            try:
                items = list(split(json.loads(body)))
                record["items"] = len(items)
                for key, env in items:
                    with lock:  # one item at a time, so pywa's log lines can be attributed
                        n = len(pywa_log.records)
                        wa.webhook_update_handler(json.dumps(env).encode())
                        item_errors[key] = pywa_log.records[n:]
                        raw_items.add(key)
            except Exception:  # noqa: BLE001
                with lock:
                    handler_errors.append(traceback.format_exc())
        with lock:
            posts.append(record)
            if os.environ.get("PYWA_CHECK_DUMP"):
                os.makedirs(os.environ["PYWA_CHECK_DUMP"], exist_ok=True)
                with open(os.path.join(os.environ["PYWA_CHECK_DUMP"], f"post-{len(posts):02d}.json"), "wb") as f:
                    f.write(body)
        text, code = verdict if verdict is not None else ("ok", 200)
        self.send_response(code)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        self.wfile.write(text.encode())

    def log_message(self, *_args) -> None:
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", WEBHOOK_PORT), Receiver)
threading.Thread(target=server.serve_forever, daemon=True).start()
info(f"webhook receiver on http://127.0.0.1:{WEBHOOK_PORT}/webhook")

deadline = time.monotonic() + WEBHOOK_WAIT_S


def wait_for(keys: list, what: str) -> bool:
    """Until every key has been posted by the sandbox and handed to pywa, or the deadline."""
    while time.monotonic() < deadline:
        with lock:
            if all(k in raw_items for k in keys):
                return True
        time.sleep(0.02)
    with lock:
        missing = [k for k in keys if k not in raw_items]
    info(f"timed out waiting for {what}: never posted {missing}")
    return False


def control(method: str, path: str, payload: dict | None = None) -> tuple[int, dict]:
    """The sandbox's /sandbox control API (not part of the Cloud API, so plain urllib)."""
    req = urllib.request.Request(
        SANDBOX_URL + path,
        data=json.dumps(payload).encode() if payload is not None else None,
        method=method,
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as e:
        return e.code, {"error": e.read().decode(errors="replace")}


def errors_for(keys) -> str:
    with lock:
        errs = [e for k in keys for e in item_errors.get(k, [])]
    return "; ".join(dict.fromkeys(e.split("] ", 2)[-1] for e in errs)) or "pywa logged nothing"


# ---------------------------------------------------------------- 1. the user writes first

code, sim = control("POST", "/sandbox/simulate/message", {"from": USER, "text": "hi", "name": USER_NAME})
in_wamid = sim.get("wamid", "")
check("open the 24h window: POST /sandbox/simulate/message", code == 200 and bool(in_wamid), f"HTTP {code} {sim}")

if in_wamid and wait_for([("message", in_wamid)], "the inbound message webhook"):
    msg = inbound.get(in_wamid)
    ok = (
        msg is not None
        and msg.type == types.MessageType.TEXT
        and msg.text == "hi"
        and msg.from_user.wa_id == USER
        and msg.from_user.name == USER_NAME
        and msg.metadata.phone_number_id == PHONE_NUMBER_ID
        and msg.metadata.display_phone_number == DISPLAY_NUMBER
    )
    detail = (
        f"type={msg.type} text={msg.text!r} from={msg.from_user.wa_id} name={msg.from_user.name!r}"
        if msg is not None
        else f"webhook arrived, signature valid, but pywa built no types.Message: {errors_for([('message', in_wamid)])}"
    )
    check("inbound text webhook parsed by pywa as types.Message", ok, detail)
else:
    check("inbound text webhook parsed by pywa as types.Message", False, "not received")

# ---------------------------------------------------------------- 2. pywa sends three messages

sent: dict[str, str] = {}  # label -> wamid


def send(label: str, kind_check, fn) -> None:
    try:
        r = fn()
        ok = isinstance(r, types.SentMessage) and r.id.startswith("wamid.") and r.to == USER and kind_check(r)
        if ok:
            sent[label] = r.id
        check(f"send {label} with pywa", ok, f"id={r.id} to={r.to}" + (f" status={r.status}" if hasattr(r, "status") else ""))
    except Exception as e:  # noqa: BLE001
        check(f"send {label} with pywa", False, f"{type(e).__name__}: {e}")


send("text", lambda r: True, lambda: wa.send_message(to=USER, text="Hello from pywa via the Ringback sandbox"))
send(
    "template hello_world",
    lambda r: r.status == SentTemplateStatus.ACCEPTED,
    lambda: wa.send_template(to=USER, name="hello_world", language=TemplateLanguage.ENGLISH_US),
)
send(
    "interactive reply buttons",
    lambda r: True,
    lambda: wa.send_message(
        to=USER,
        text="Shall we call you back?",
        header="Missed call",
        footer="Ringback sandbox",
        buttons=[types.Button(title="Call me back", callback_data="call"), types.Button(title="Chat here", callback_data="chat")],
    ),
)

# What the sandbox recorded: the three requests pywa made, each accepted (window open).
code, listed = control("GET", f"/sandbox/messages?phone_number_id={PHONE_NUMBER_ID}")
by_id = {m.get("wamid"): m for m in listed.get("data", [])} if code == 200 else {}
want = {"text": "text", "template hello_world": "template", "interactive reply buttons": "interactive"}
rows = [by_id.get(w) for w in sent.values()]
ok = (
    len(sent) == 3
    and all(r is not None and r.get("outcome") == "accepted" and r.get("to") == USER for r in rows)
    and [by_id[sent[k]].get("type") for k in want] == list(want.values())
)
check(
    "sandbox recorded pywa's 3 requests as accepted (GET /sandbox/messages)",
    ok,
    ", ".join(f"{r.get('type')}:{r.get('outcome')}" for r in rows if r) or f"HTTP {code}",
)
if ok:
    b = by_id[sent["interactive reply buttons"]]["body"]
    info("interactive body pywa sent: " + json.dumps(b["interactive"], separators=(",", ":")))

# ---------------------------------------------------------------- 3. status webhooks

for label, wamid in sent.items():
    keys = [(wamid, "sent"), (wamid, "delivered")]
    arrived = wait_for(keys, f"sent/delivered for the {label}")
    got = [statuses.get(k) for k in keys]
    ok = arrived and all(
        s is not None and s.id == wamid and s.metadata.phone_number_id == PHONE_NUMBER_ID for s in got
    ) and [str(s.status) for s in got] == ["sent", "delivered"]
    if ok:
        detail = ", ".join(
            f"{s.status} pricing={s.pricing.category if s.pricing else None}" for s in got
        )
    elif arrived:
        detail = f"webhooks arrived, signatures valid, but pywa built no types.MessageStatus: {errors_for(keys)}"
    else:
        detail = "not received"
    check(f"sent+delivered webhooks for the {label} parsed by pywa as types.MessageStatus", ok, detail)

# ---------------------------------------------------------------- 4. signatures

time.sleep(0.2)  # let a POST that is being handled finish
with lock:
    all_posts = list(posts)
valid = [p for p in all_posts if p["verdict"] is None]
check(
    "every webhook POST passes pywa's X-Hub-Signature-256 check (app_secret)",
    bool(all_posts) and len(valid) == len(all_posts),
    f"{len(valid)}/{len(all_posts)} valid"
    + "".join(f"; rejected {p['verdict']} sig={p['sig']!r}" for p in all_posts if p["verdict"] is not None),
)
logged_by_receiver = list(pywa_log.records)  # before the deliberate failures below
if valid:
    p = valid[0]
    tampered = wa.webhook_update_validator(p["body"] + b" ", p["sig"])
    unsigned = wa.webhook_update_validator(p["body"], None)
    other_secret = utils.webhook_updates_validator("not-the-app-secret", p["body"], p["sig"])
    check(
        "pywa's check is live: tampered body, missing header, wrong secret all refused",
        tampered == ("Forbidden", 403) and unsigned == ("Unauthorized", 401) and other_secret is False,
        f"tampered={tampered} unsigned={unsigned} wrong_secret={other_secret}",
    )
batched = [p["items"] for p in valid if p["items"] > 1]
info(
    f"{len(valid)} POSTs carried {sum(p['items'] for p in valid)} items; {len(batched)} were batched "
    f"(sizes {batched}) and were split before pywa's dispatcher (pywa reads only entry[0].changes[0] "
    "and item [0]: david-lev/pywa#229)"
)
if handler_errors:
    check("receiver ran without errors", False, handler_errors[0].strip().splitlines()[-1])
if logged_by_receiver:
    info("pywa logged while handling the webhooks:")
    for r in dict.fromkeys(logged_by_receiver):
        info("  " + r)

server.shutdown()
print(f"{passed} passed, {failed} failed", flush=True)
sys.exit(0 if failed == 0 else 1)
