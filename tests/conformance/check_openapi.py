#!/usr/bin/env python3
"""Conformance test: the Cloud API sandbox against Meta's own OpenAPI description.

Run it through `scripts/conformance-test`, which starts the sandbox and a venv. By hand:

    target/pyenv/bin/python tests/conformance/check_openapi.py \
        --base-url http://127.0.0.1:8090 --webhook-port 8099

(the sandbox must post its webhooks to http://127.0.0.1:<webhook-port>/webhook).

What it checks, for every row of CASES:
  (a) the request we send validates against Meta's request schema (or, for rows marked
      `req_valid=False`, is rejected by it — so the fixtures themselves are known to be right);
  (b) the sandbox's response validates against the operation's 200 schema, or against the Graph
      error schema for that HTTP status, plus hand-written assertions from
      shared/reference/cloud-api.md (error `message` == "(#<code>) <title>", `wamid.` ids, ...);
  (c) every webhook the sandbox posts validates against the webhook payload schema (for fields
      Meta's OAS does not describe, e.g. message_template_status_update: against its envelope,
      plus the docs' shape by hand), carries a correct X-Hub-Signature-256, passes the docs'
      envelope assertions (§2), and the statuses / inbound messages / template events expected
      for each row arrive — and nothing else does.

The OpenAPI document is read from `${RINGBACK_SHARED:-../shared}/reference/meta-openapi/`
(relative paths are relative to the repository root). `$ref`s are resolved by jsonschema's
`referencing` with the whole document registered as one resource. Where Meta's OpenAPI is known
to be wrong (cloud-api.md §3, §4, §11, §12 — "where [OAS] and [D:] disagree, [D:] is usually
right") the affected schema parts are patched in PATCHES below, each with the reason; every
patch first checks that the part it patches still looks the way it did, so a fixed upstream
document shows up as a failing check instead of being silently re-patched.

Before the rows run, Meta's own request and webhook examples are validated against the patched
schemas ("self-check"), which shows that the patches repair the schemas rather than just loosen
them.

Business Calling (cloud-api.md §7) rows use a second sandbox number in the UK (CALLING_*), since
Meta refuses business-initiated calls for +1 numbers; scripts/conformance-test configures it. Their
simulated-user side (a user calls, answers, replies to a permission request) runs through the
sandbox control API in the rows' `before`/`after` steps, and every `calls` webhook and
call_permission_reply is matched against what those steps and the rows' `call_events` expect.

Adding a case is one row in CASES (see the `Case` dataclass for the knobs); a row for an endpoint
the sandbox does not have yet can carry `pending="why"` (skipped, or run anyway with
CONFORMANCE_RUN_PENDING=1). Output: one line per check (SKIP lines are not counted), then exactly
`N passed, M failed`; the exit status is non-zero on any failure.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import hashlib
import hmac
import http.server
import json
import os
import re
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import yaml
from jsonschema import Draft202012Validator
from referencing import Registry
from referencing.jsonschema import DRAFT202012

REPO_ROOT = Path(__file__).resolve().parents[2]
OPENAPI_REL = "reference/meta-openapi/business-messaging-api_v23.0.yaml"
DOC_URI = "urn:meta-openapi:business-messaging-api_v23.0"

# The sandbox's demo identity (src/sandbox, README "The sandbox").
VERSION = "v23.0"
PHONE_NUMBER_ID = "100000000000001"
WABA_ID = "200000000000001"
TOKEN = "ringback-demo-token"
APP_SECRET = "ringback-demo-app-secret"
DISPLAY_NUMBER = "15550100001"  # a +1 number: no business-initiated calling (cloud-api.md §7.1, 138013)
# A second number for business-initiated calling, which Meta offers only outside US/CA/TR/EG/VN/NG
# (cloud-api.md §7.1). scripts/conformance-test configures it (RINGBACK_SENDERS__1__*); same WABA.
CALLING_PNID = "100000000000002"
CALLING_DISPLAY = "447700900123"
CALLING_TOKEN = "ringback-conformance-calling-token"
NUMBERS = {PHONE_NUMBER_ID: DISPLAY_NUMBER, CALLING_PNID: CALLING_DISPLAY}

# ---------------------------------------------------------------------------------------------
# Output
# ---------------------------------------------------------------------------------------------

PASSED = 0
FAILED = 0


def check(name: str, ok: bool, detail: str = "") -> bool:
    global PASSED, FAILED
    if ok:
        PASSED += 1
        print(f"PASS  {name}")
    else:
        FAILED += 1
        print(f"FAIL  {name}" + (f" -- {detail}" if detail else ""))
    sys.stdout.flush()
    return ok


def skip(name: str, why: str) -> None:
    print(f"SKIP  {name} -- {why}")


class Bundle:
    """Several small assertions reported as one check line (listing the ones that failed)."""

    def __init__(self, name: str):
        self.name = name
        self.total = 0
        self.failures: list[str] = []

    def __call__(self, what: str, ok: bool, detail: str = "") -> bool:
        self.total += 1
        if not ok:
            self.failures.append(f"{what}: {detail}" if detail else what)
        return ok

    def done(self) -> bool:
        return check(f"{self.name} ({self.total} assertions)", not self.failures, " | ".join(self.failures))


# ---------------------------------------------------------------------------------------------
# The OpenAPI document and the patches ("relaxations")
# ---------------------------------------------------------------------------------------------


def openapi_path() -> Path:
    shared = Path(os.environ.get("RINGBACK_SHARED", "../shared"))
    if not shared.is_absolute():
        shared = REPO_ROOT / shared
    return (shared / OPENAPI_REL).resolve()


def ptr_get(doc: Any, pointer: str) -> Any:
    node = doc
    for raw in pointer.lstrip("/").split("/"):
        if raw == "":
            continue
        key = raw.replace("~1", "/").replace("~0", "~")
        node = node[int(key)] if isinstance(node, list) else node[key]
    return node


def ptr_escape(segment: str) -> str:
    return segment.replace("~", "~0").replace("/", "~1")


SCHEMAS = "/components/schemas/"


class PatchDoesNotApply(Exception):
    pass


def expect(cond: bool, what: str) -> None:
    if not cond:
        raise PatchDoesNotApply(what)


def p_allof_closed(doc: dict) -> None:
    """OAS bug (not a docs conflict, but nothing validates without this): the request message
    schemas are `allOf: [BaseMessageProperties, {additionalProperties: false, properties:
    {type, text}}]`. In JSON Schema `additionalProperties` only sees its own sibling
    `properties`, so `messaging_product`, `to`, ... are "additional" and *every* send request —
    including Meta's own examples in this file — fails. The intent (closed objects) is kept by
    moving the constraint to `unevaluatedProperties: false` on the allOf owner (OAS 3.1 is JSON
    Schema 2020-12, which has it)."""
    patched = 0
    for name, schema in doc["components"]["schemas"].items():
        for branch in schema.get("allOf", []) if isinstance(schema, dict) else []:
            if "$ref" not in branch and branch.get("additionalProperties") is False:
                del branch["additionalProperties"]
                schema["unevaluatedProperties"] = False
                patched += 1
    expect(patched >= 5, f"only {patched} allOf+additionalProperties:false schemas found")


# Webhook schemas were merged into the document under renamed keys (TextMessage_2, ...), but the
# refs inside the webhook block still name the *request* schemas (TextMessage, ...,
# BaseMessageProperties). Rewrite those refs, inside the webhook block only.
WEBHOOK_REF_RENAMES = {
    "BaseMessageProperties": "BaseMessageProperties_1",
    "TextMessage": "TextMessage_2",
    "ReactionMessage": "ReactionMessage_1",
    "AudioMessage": "AudioMessage_1",
    "DocumentMessage": "DocumentMessage_1",
    "ImageMessage": "ImageMessage_1",
    "StickerMessage": "StickerMessage_1",
    "VideoMessage": "VideoMessage_1",
    "LocationMessage": "LocationMessage_1",
    "ContactObject": "ContactObject_1",
    "ErrorObject": "ErrorObject_2",
}
WEBHOOK_MESSAGE_SCHEMAS = [
    "IncomingMessage", "TextMessage_2", "ReactionMessage_1", "AudioMessage_1",
    "DocumentMessage_1", "ImageMessage_1", "StickerMessage_1", "VideoMessage_1",
    "LocationMessage_1", "ContactSharingMessage", "UnsupportedMessage", "ButtonMessage",
    "InteractiveMessageReply", "OrderMessage", "SystemMessage",
]


def p_webhook_refs(doc: dict) -> None:
    """OAS bug: `IncomingMessage.oneOf` and every inbound message type reference the outgoing
    request schemas (`TextMessage` requires `to`, `recipient_type`, ...), so no inbound message
    webhook — Meta's own `/whatsapp/webhooks` examples included — validates. The webhook shapes
    in cloud-api.md §2.5 match the `_1`/`_2` copies, which are what the refs were meant to be."""
    schemas = doc["components"]["schemas"]
    rewritten = 0

    def walk(node: Any) -> None:
        nonlocal rewritten
        if isinstance(node, dict):
            for k, v in node.items():
                if k == "$ref" and isinstance(v, str) and v.startswith("#" + SCHEMAS):
                    target = v[len("#" + SCHEMAS):]
                    if target in WEBHOOK_REF_RENAMES:
                        node[k] = "#" + SCHEMAS + WEBHOOK_REF_RENAMES[target]
                        rewritten += 1
                elif k == "mapping" and isinstance(v, dict):  # discriminator mapping: same mistake
                    for tag, ref in v.items():
                        target = str(ref).rsplit("/", 1)[-1]
                        if target in WEBHOOK_REF_RENAMES:
                            v[tag] = "#" + SCHEMAS + WEBHOOK_REF_RENAMES[target]
                else:
                    walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    for name in WEBHOOK_MESSAGE_SCHEMAS:
        expect(name in schemas, f"schema {name} missing")
        walk(schemas[name])
    for new in WEBHOOK_REF_RENAMES.values():
        expect(new in schemas, f"schema {new} missing")
    expect(rewritten >= 15, f"only {rewritten} refs rewritten")


def p_biz_opaque(doc: dict) -> None:
    """Docs §3.1/§3.5 [D:changelog]: `biz_opaque_callback_data` (≤512 chars) is a top-level send
    field, echoed in status webhooks; BaseMessageProperties lacks it (and with the allOf fix
    above the objects are closed, so it must be declared)."""
    props = ptr_get(doc, SCHEMAS + "BaseMessageProperties/properties")
    expect("biz_opaque_callback_data" not in props, "already declared")
    props["biz_opaque_callback_data"] = {"type": "string", "maxLength": 512}


def p_language_policy(doc: dict) -> None:
    """Docs §3.2: template `language` is `{"code":"en_US"}`; OAS makes `policy` (only value
    "deterministic") required, which even its own "Send Test Message" example omits."""
    lang = ptr_get(doc, SCHEMAS + "LanguageObject")
    expect("policy" in lang.get("required", []), "policy no longer required")
    lang["required"] = [r for r in lang["required"] if r != "policy"]


def p_button_index(doc: dict) -> None:
    """Docs §3.2: button component `index` is the 0-based button position, "string or int in
    examples", `sub_type` is quick_reply|url|copy_code|catalog|mpm|flow|voice_call, and button
    parameters are payload|text|coupon_code|action (+ voice_call's ttl_minutes/payload). OAS has
    `type: string`, the pattern `^[2-6, 11-14]$` (matches neither "0" nor "1"), a 3-value
    sub_type enum and payload|text only — its own catalog/flow template examples fail. Not
    exercised by today's rows; needed as soon as a template with buttons is added."""
    sub_types = ["quick_reply", "url", "copy_code", "catalog", "mpm", "flow", "voice_call"]
    for name in ("TemplateComponent", "ButtonComponent"):
        props = ptr_get(doc, SCHEMAS + name + ("/allOf/1/properties" if name == "ButtonComponent" else "/properties"))
        expect(props["index"].get("pattern") == "^[2-6, 11-14]$", f"{name}.index pattern changed")
        props["index"] = {"type": ["string", "integer"], "pattern": "^[0-9]$", "minimum": 0, "maximum": 9}
        expect("enum" in props["sub_type"], f"{name}.sub_type enum gone")
        props["sub_type"]["enum"] = sub_types
    btype = ptr_get(doc, SCHEMAS + "ButtonParameterObject/properties/type")
    expect(btype.get("enum") == ["payload", "text"], "ButtonParameterObject.type enum changed")
    btype["enum"] = ["payload", "text", "coupon_code", "action", "ttl_minutes"]


def p_location_numbers(doc: dict) -> None:
    """Docs §3.2: "OAS types lat/long as strings in the request schema but examples are numbers
    — accept both"."""
    loc = ptr_get(doc, SCHEMAS + "LocationMessage/allOf/1/properties/location/properties")
    for k in ("latitude", "longitude"):
        expect(loc[k].get("type") == "string", f"{k} type changed")
        loc[k]["type"] = ["number", "string"]


def p_contacts_max(doc: dict) -> None:
    """Docs §3.2/§3.5/§12.8: up to 257 contacts per message (docs) vs `maxItems: 5` (OAS)."""
    c = ptr_get(doc, SCHEMAS + "ContactsMessage/allOf/1/properties/contacts")
    expect(c.get("maxItems") == 5, "maxItems changed")
    c["maxItems"] = 257


def p_interactive_types(doc: dict) -> None:
    """Docs §3.2: interactive types also include cta_url, location_request_message and
    voice_call (and order_details/order_status, which OAS's own examples send); the OAS enum
    lists only button|call_permission_request|catalog_message|list|product|product_list|flow,
    and ActionObject has no branch for their actions. The branches added here are the docs'
    shapes and limits (§3.2 table, §3.5): cta_url {display_text ≤20, url}, send_location,
    voice_call {display_text ≤20, ttl_minutes 1–43200, payload ≤512}."""
    t = ptr_get(doc, SCHEMAS + "InteractiveObject/properties/type")
    expect("cta_url" not in t["enum"], "cta_url already present")
    t["enum"] = t["enum"] + ["cta_url", "location_request_message", "voice_call",
                             "order_details", "order_status"]
    action = ptr_get(doc, SCHEMAS + "ActionObject")
    names = {n for b in action["oneOf"] for n in (b.get("properties", {}).get("name") or {}).get("enum", [])}
    expect(not names & {"cta_url", "send_location", "voice_call"}, f"actions already present: {names}")
    action["oneOf"] += [
        {"required": ["name", "parameters"],
         "properties": {"name": {"type": "string", "enum": ["cta_url"]},
                        "parameters": {"type": "object", "required": ["display_text", "url"],
                                       "properties": {"display_text": {"type": "string", "maxLength": 20},
                                                      "url": {"type": "string"}}}}},
        {"required": ["name"], "properties": {"name": {"type": "string", "enum": ["send_location"]}}},
        {"required": ["name"],
         "properties": {"name": {"type": "string", "enum": ["voice_call"]},
                        "parameters": {"type": "object",
                                       "properties": {"display_text": {"type": "string", "maxLength": 20},
                                                      "ttl_minutes": {"type": "integer", "minimum": 1,
                                                                      "maximum": 43200},
                                                      "payload": {"type": "string", "maxLength": 512}}}}},
    ]


def p_status_played(doc: dict) -> None:
    """Docs §2.6: status `played` (voice message first played, added Nov 2025) is missing from
    the OAS `Statuses.status` enum."""
    s = ptr_get(doc, SCHEMAS + "Statuses/properties/status")
    expect("played" not in s["enum"], "played already present")
    s["enum"] = s["enum"] + ["played"]


def p_change_field(doc: dict) -> None:
    """Docs §2.4: the group field is `group_participants_update`; the OAS enum spells it
    `group_participant_update` (keep both)."""
    f = ptr_get(doc, SCHEMAS + "Change/properties/field")
    expect("group_participants_update" not in f["enum"], "already present")
    f["enum"] = f["enum"] + ["group_participants_update"]


def p_bsuid_optional(doc: dict) -> None:
    """Docs §2.5 (business-scoped user ids, 2026): inbound `from` and status `recipient_id` may be
    omitted for users with a username; OAS requires both. Relaxed here; the sandbox only
    simulates phone-number users, so hand-written assertions below still require them."""
    base = ptr_get(doc, SCHEMAS + "BaseMessageProperties_1")
    st = ptr_get(doc, SCHEMAS + "Statuses")
    expect("from" in base["required"] and "recipient_id" in st["required"], "no longer required")
    base["required"] = [r for r in base["required"] if r != "from"]
    st["required"] = [r for r in st["required"] if r != "recipient_id"]


def p_discriminators(doc: dict) -> None:
    """Not a relaxation but the opposite: jsonschema ignores the OpenAPI `discriminator`, so
    template components and their parameters (TemplateComponent, ParameterObject,
    ButtonParameterObject: base types whose subtypes are only named in `discriminator.mapping`)
    would never be checked beyond `type`. Each reference to such a base type (except the
    subtypes' own `allOf` back-reference) is pointed at a `<Base>__dispatch` schema that applies
    the mapped subtype with if/then."""
    schemas = doc["components"]["schemas"]
    bases = {n: s_["discriminator"] for n, s_ in schemas.items()
             if isinstance(s_, dict) and "discriminator" in s_ and "oneOf" not in s_ and "anyOf" not in s_}
    expect(set(bases) >= {"TemplateComponent", "ParameterObject", "ButtonParameterObject"}, f"bases: {sorted(bases)}")
    subtypes = {ref.rsplit("/", 1)[-1] for d in bases.values() for ref in d["mapping"].values()}
    for name, disc in bases.items():
        prop = disc["propertyName"]
        schemas[name + "__dispatch"] = {"allOf": [{"$ref": "#" + SCHEMAS + name}] + [
            {"if": {"properties": {prop: {"const": tag}}, "required": [prop]}, "then": {"$ref": ref}}
            for tag, ref in disc["mapping"].items()]}

    def walk(node: Any, in_subtype: bool) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                if k == "$ref" and isinstance(v, str) and v.startswith("#" + SCHEMAS):
                    target = v[len("#" + SCHEMAS):]
                    if target in bases and not in_subtype:
                        node[k] = v + "__dispatch"
                else:
                    walk(v, in_subtype)
        elif isinstance(node, list):
            for v in node:
                walk(v, in_subtype)

    for name, schema in list(schemas.items()):
        if name.endswith("__dispatch"):
            continue
        if name in subtypes:
            # keep the allOf back-reference to the base; dispatch anything nested further down
            for i, branch in enumerate(schema.get("allOf", [])):
                walk(branch, in_subtype=(i == 0))
        else:
            walk(schema, in_subtype=False)
    walk(doc["paths"], in_subtype=False)


# --- Business Calling (cloud-api.md §7) -------------------------------------------------------

CALLING_STATUS = ["ENABLED", "DISABLED"]


def p_calling_settings(doc: dict) -> None:
    """Docs §7.2 "Enum conflict": OAS `CallingSettings` (request and GET response) spells the
    values `enabled|disabled`, `visible|hidden` and `DTLS-SRTP|SDES-SRTP`; the docs and pywa use
    `ENABLED|DISABLED`, `DEFAULT|DISABLE_ALL` and `DTLS|SDES` — "Follow the docs" (§7.2), which is
    what the sandbox (and Meta) answer. The enums are replaced, not widened: a lowercase fixture
    must fail. The request schema also lacks the documented `callback_permission_status`,
    `call_hours` (docs' shape: timezone_id, weekly_operating_hours, holiday_schedule), `call_icons`,
    `srtp_key_exchange_protocol` and `sip`; they are declared with the docs' values."""
    schemas = doc["components"]["schemas"]
    for name in ("CallingSettings", "CallingSettings_1", "CallingSettingsResponse"):
        props = schemas[name]["properties"]
        expect(props["status"].get("enum") == ["enabled", "disabled"], f"{name}.status enum changed")
        expect(props["call_icon_visibility"].get("enum") == ["visible", "hidden"],
               f"{name}.call_icon_visibility enum changed")
        props["status"]["enum"] = CALLING_STATUS
        props["call_icon_visibility"]["enum"] = ["DEFAULT", "DISABLE_ALL"]
        if "srtp_key_exchange_protocol" in props:
            expect(props["srtp_key_exchange_protocol"].get("enum") == ["DTLS-SRTP", "SDES-SRTP"],
                   f"{name}.srtp_key_exchange_protocol enum changed")
        props["srtp_key_exchange_protocol"] = {"type": "string", "enum": ["DTLS", "SDES"]}
        if "callback_permission_status" in props:
            expect(props["callback_permission_status"].get("enum") == ["enabled", "disabled"],
                   f"{name}.callback_permission_status enum changed")
        props["callback_permission_status"] = {"type": "string", "enum": CALLING_STATUS}
    for name in ("CallHoursSettings", "SipSettings", "SipSettingsResponse"):
        st = schemas[name]["properties"]["status"]
        expect(st.get("enum") == ["enabled", "disabled"], f"{name}.status enum changed")
        st["enum"] = CALLING_STATUS
    hhmm = {"type": "string", "pattern": "^([01][0-9]|2[0-3])[0-5][0-9]$"}
    schemas["CallHoursSettings"]["properties"].update(
        timezone_id={"type": "string"},
        weekly_operating_hours={"type": "array", "items": {
            "type": "object", "required": ["day_of_week", "open_time", "close_time"],
            "properties": {"day_of_week": {"type": "string", "enum": ["MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY",
                                                                      "FRIDAY", "SATURDAY", "SUNDAY"]},
                           "open_time": hhmm, "close_time": hhmm}}},
        holiday_schedule={"type": "array", "maxItems": 20, "items": {
            "type": "object", "required": ["date", "start_time", "end_time"],
            "properties": {"date": {"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"},
                           "start_time": hhmm, "end_time": hhmm}}})
    req = schemas["CallingSettings"]["properties"]
    expect("call_hours" not in req, "CallingSettings.call_hours already declared")
    req["call_hours"] = {"$ref": "#" + SCHEMAS + "CallHoursSettings"}
    req["call_icons"] = {"$ref": "#" + SCHEMAS + "CallIconsSettings"}
    req["sip"] = {"$ref": "#" + SCHEMAS + "SipSettings"}


def p_settings_get_required(doc: dict) -> None:
    """Docs §7.2: GET /settings returns the `calling` object; `ip_addresses` (like
    `restrictions`, `video`, `audio`) is something GET "may also return", and the other feature
    objects only appear when configured. OAS requires `storage_configuration` at the top level
    and `calling.ip_addresses`; both made optional."""
    top = ptr_get(doc, SCHEMAS + "PhoneNumberSettingsResponse")
    cs = ptr_get(doc, SCHEMAS + "CallingSettingsResponse")
    expect("storage_configuration" in top["required"] and "ip_addresses" in cs["required"], "no longer required")
    top["required"] = [r for r in top["required"] if r != "storage_configuration"]
    cs["required"] = [r for r in cs["required"] if r != "ip_addresses"]


def p_call_actions(doc: dict) -> None:
    """Docs §7.3: pre_accept/accept/reject/terminate name the call by `call_id`; only `connect`
    takes `to` ("OAS examples show `to` instead of `call_id` for accept/reject — treat as an OAS
    error"). `CallRequestPayload` requires `to` for every action and has no `call_id`. Patched to
    the docs' table: connect needs to+session(offer), pre_accept/accept need call_id+session
    (answer), reject needs call_id. `terminate` leaves its enum because the other branch of the
    request's oneOf, CallTerminateRequestPayload, is exactly the docs' terminate (keeping it in
    both would make every terminate match twice and fail the oneOf)."""
    c = ptr_get(doc, SCHEMAS + "CallRequestPayload")
    expect(c["required"] == ["messaging_product", "to", "action"], f"required changed: {c['required']}")
    expect("call_id" not in c["properties"], "call_id already declared")
    expect(c["properties"]["action"]["enum"] == ["connect", "pre_accept", "accept", "reject", "terminate"],
           "action enum changed")
    c["properties"]["call_id"] = {"type": "string"}
    c["properties"]["action"]["enum"] = ["connect", "pre_accept", "accept", "reject"]
    c["required"] = ["messaging_product", "action"]

    def when(actions: list[str], required: list[str], sdp_type: str | None = None) -> dict:
        then: dict = {"required": required}
        if sdp_type:
            then["properties"] = {"session": {"properties": {"sdp_type": {"const": sdp_type}}}}
        return {"if": {"properties": {"action": {"enum": actions}}, "required": ["action"]}, "then": then}
    c["allOf"] = [when(["connect"], ["to", "session"], "offer"),
                  when(["pre_accept", "accept"], ["call_id", "session"], "answer"),
                  when(["reject"], ["call_id"])]


def p_call_responses(doc: dict) -> None:
    """Not a relaxation but a repair (tightening): the /calls 200 schema is
    `oneOf: [CallResponsePayload, CallTerminateResponsePayload]`, two open objects with no
    `required`, so every object matches both and the oneOf rejects every response — Meta's own
    two examples included. Docs §7.3: connect answers `{messaging_product, calls:[{id}]}`, the
    other actions `{messaging_product, success:true}`; each branch now requires its own key
    (and declares messaging_product, which the docs show on both)."""
    conn = ptr_get(doc, SCHEMAS + "CallResponsePayload")
    term = ptr_get(doc, SCHEMAS + "CallTerminateResponsePayload")
    expect("required" not in conn and "required" not in term, "the branches have required keys now")
    conn["required"] = ["calls"]
    conn["properties"]["calls"].update(minItems=1)
    conn["properties"]["calls"]["items"]["required"] = ["id"]
    term["required"] = ["success"]
    term["properties"]["messaging_product"] = {"type": "string", "enum": ["whatsapp"]}


def p_call_permission_status(doc: dict) -> None:
    """Docs §7.5: `permission.status` is `no_permission|temporary|permanent` (pywa agrees); OAS
    documents `granted|pending|denied|expired` — "docs/pywa win". Replaced, not widened."""
    st = ptr_get(doc, SCHEMAS + "CallPermissionCheckResponsePayload/properties/permission/properties/status")
    expect(st.get("enum") == ["granted", "pending", "denied", "expired"], "enum changed")
    st["enum"] = ["no_permission", "temporary", "permanent"]


def p_call_permission_reply(doc: dict) -> None:
    """Docs §2.5/§7.5: an inbound interactive can be a `call_permission_reply` (the user's answer
    to a call_permission_request, or the automatic one after a call when callback permission is
    on; `context.id` is then the call's wacid). OAS InteractiveMessageReply knows only
    list_reply|button_reply; the docs' shape is added for the new type."""
    inter = ptr_get(doc, SCHEMAS + "InteractiveMessageReply/allOf/1/properties/interactive")
    t = inter["properties"]["type"]
    expect("call_permission_reply" not in t["enum"], "call_permission_reply already present")
    t["enum"] = t["enum"] + ["call_permission_reply"]
    inter["allOf"] = [{"if": {"properties": {"type": {"const": "call_permission_reply"}}, "required": ["type"]},
                       "then": {"required": ["call_permission_reply"], "properties": {"call_permission_reply": {
                           "type": "object", "required": ["response", "response_source"],
                           "properties": {"response": {"type": "string", "enum": ["accept", "reject"]},
                                          "is_permanent": {"type": "boolean"},
                                          "expiration_timestamp": {"type": "integer"},
                                          "response_source": {"type": "string",
                                                              "enum": ["user_action", "automatic"]}}}}}}]


PATCHES: list[tuple[str, Callable[[dict], None]]] = [
    ("allOf+additionalProperties:false -> unevaluatedProperties:false (request message types)", p_allof_closed),
    ("webhook message schemas: refs to request schemas -> their webhook copies", p_webhook_refs),
    ("BaseMessageProperties += biz_opaque_callback_data (docs §3.1)", p_biz_opaque),
    ("LanguageObject.policy not required (docs §3.2)", p_language_policy),
    ("template button index 0-9 string|int, docs sub_types and parameter types (docs §3.2)", p_button_index),
    ("LocationMessage latitude/longitude number|string (docs §3.2)", p_location_numbers),
    ("ContactsMessage contacts maxItems 5 -> 257 (docs §3.2, §12.8)", p_contacts_max),
    ("InteractiveObject.type += cta_url, location_request_message, voice_call, order_*; ActionObject += their actions (docs §3.2)", p_interactive_types),
    ("Statuses.status += played (docs §2.6)", p_status_played),
    ("Change.field += group_participants_update (docs §2.4)", p_change_field),
    ("inbound `from` / status `recipient_id` optional (docs §2.5, BSUIDs)", p_bsuid_optional),
    ("honour OpenAPI discriminators of template components/parameters (tightening)", p_discriminators),
    ("calling settings: docs' ENABLED/DISABLED, DEFAULT/DISABLE_ALL, DTLS/SDES enums and fields (docs §7.2)", p_calling_settings),
    ("GET settings: storage_configuration and calling.ip_addresses optional (docs §7.2)", p_settings_get_required),
    ("call actions: call_id (not `to`) for pre_accept/accept/reject (docs §7.3)", p_call_actions),
    ("call action responses: oneOf branches require calls / success (docs §7.3; tightening)", p_call_responses),
    ("call permission status no_permission|temporary|permanent (docs §7.5)", p_call_permission_status),
    ("InteractiveMessageReply += call_permission_reply (docs §2.5, §7.5)", p_call_permission_reply),
]


class Spec:
    """The patched document, the validators and the schema locations we use."""

    def __init__(self, path: Path):
        with open(path, encoding="utf-8") as f:
            self.raw = yaml.safe_load(f)
        self.doc = copy.deepcopy(self.raw)
        for title, fn in PATCHES:
            try:
                fn(self.doc)
                check(f"openapi patch applies: {title}", True)
            except (PatchDoesNotApply, KeyError, IndexError, TypeError) as e:
                check(f"openapi patch applies: {title}", False,
                      f"the OAS part it relaxes changed ({e!r}); re-check against cloud-api.md")
        # Webhook fields the OAS does not describe at all: its Change.field enum and Change.value
        # oneOf cover only `messages` and the group fields, while the docs (cloud-api.md §2.4,
        # §2.8) list ~20 more (message_template_status_update, account_update, ...). For those,
        # only Meta's envelope is checked — a copy of WebhookPayload/Entry/Change with `field` any
        # string and `value` any object — and the docs' shape by hand (FIELD_CHECKS below).
        schemas = self.doc["components"]["schemas"]
        self.oas_webhook_fields = set(schemas["Change"]["properties"]["field"]["enum"])
        change = copy.deepcopy(schemas["Change"])
        change["properties"]["value"] = {"type": "object"}
        change["properties"]["field"] = {"type": "string"}
        entry = copy.deepcopy(schemas["Entry"])
        entry["properties"]["changes"]["items"] = {"$ref": "#" + SCHEMAS + "XConformanceChange"}
        envelope = copy.deepcopy(schemas["WebhookPayload"])
        envelope["properties"]["entry"]["items"] = {"$ref": "#" + SCHEMAS + "XConformanceEntry"}
        schemas.update(XConformanceChange=change, XConformanceEntry=entry, XConformanceWebhookEnvelope=envelope)
        self.registry = Registry().with_resource(DOC_URI, DRAFT202012.create_resource(self.doc))
        self._validators: dict[str, Draft202012Validator] = {}

    def validator(self, pointer: str) -> Draft202012Validator:
        if pointer not in self._validators:
            ptr_get(self.doc, pointer)  # KeyError early if the location does not exist
            ref = DOC_URI + "#" + urllib.parse.quote(pointer, safe="/~")
            self._validators[pointer] = Draft202012Validator({"$ref": ref}, registry=self.registry)
        return self._validators[pointer]

    def errors(self, pointer: str, instance: Any, limit: int = 4) -> list[str]:
        out = []
        for e in sorted(self.validator(pointer).iter_errors(instance), key=lambda e: list(map(str, e.path))):
            leaf = e
            while leaf.context:  # a failed oneOf/anyOf: name the cause in the branch that was meant
                leaf = max(self.branch(leaf), key=self.depth)
            where = "/" + "/".join(map(str, leaf.absolute_path))
            via = "/".join(map(str, leaf.absolute_schema_path))
            out.append(f"{where}: {leaf.message[:200]} (schema path …{via[-100:]})")
            if len(out) >= limit:
                break
        return out

    # Picking the branch of a failed oneOf that the instance was meant for: the OpenAPI
    # `discriminator` when there is one; otherwise the branch with the fewest top-level
    # `required` misses, then the fewest mismatches on a `type` tag, then the deepest error.
    @classmethod
    def branch(cls, e) -> list:
        branches: dict[int, list] = {}
        for c in e.context:
            branches.setdefault(c.relative_schema_path[0], []).append(c)
        disc = e.schema.get("discriminator") if isinstance(e.schema, dict) else None
        if disc and isinstance(e.instance, dict):
            target = (disc.get("mapping") or {}).get(str(e.instance.get(disc.get("propertyName"))))
            for i, sub in enumerate(e.schema.get(e.validator) or []):
                if target and isinstance(sub, dict) and sub.get("$ref") == target and i in branches:
                    return branches[i]

        def key(errs: list):
            required = sum(1 for c in errs if c.validator == "required" and not c.relative_path)
            return (required, sum(map(cls.tag_mismatches, errs)), -max(map(cls.depth, errs)))
        return min(branches.values(), key=key)

    @classmethod
    def depth(cls, c) -> int:
        return max(map(cls.depth, cls.branch(c))) if c.context else len(c.absolute_path)

    @classmethod
    def tag_mismatches(cls, c) -> int:
        if c.context:
            return sum(map(cls.tag_mismatches, cls.branch(c)))
        return int(c.validator in ("enum", "const") and bool(c.path) and c.path[-1] == "type")

    def operation(self, operation_id: str) -> tuple[str, str, str]:
        """(path key, method, JSON pointer of the operation) for an operationId."""
        for path, item in self.doc["paths"].items():
            for method, op in item.items():
                if isinstance(op, dict) and op.get("operationId") == operation_id:
                    return path, method, f"/paths/{ptr_escape(path)}/{method}"
        raise KeyError(f"operationId {operation_id} not in the document")

    def has(self, pointer: str) -> bool:
        try:
            ptr_get(self.doc, pointer)
            return True
        except (KeyError, IndexError, TypeError):
            return False

    def request_schema(self, op_ptr: str) -> str:
        return op_ptr + "/requestBody/content/application~1json/schema"

    def response_schema(self, op_ptr: str, status: int) -> str:
        return op_ptr + f"/responses/{status}/content/application~1json/schema"


# Graph error envelope: the send operation declares only a 200 response, so errors are checked
# against the shared `components/responses` object for the HTTP status (cloud-api.md §4.1 cites
# these as the generic Graph examples) and against `GraphAPIError` (the fuller envelope:
# fbtrace_id, error_subcode, is_transient, ...). Neither declares `error_data`; the docs'
# envelope (§4.1) is asserted by hand below.
ERROR_RESPONSE_BY_STATUS = {
    400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound",
    429: "TooManyRequests", 500: "InternalServerError",
}


# ---------------------------------------------------------------------------------------------
# Webhook receiver
# ---------------------------------------------------------------------------------------------


@dataclass
class Hook:
    headers: dict[str, str]
    raw: bytes
    at: float


class Receiver:
    def __init__(self, port: int):
        self.hooks: list[Hook] = []
        self.lock = threading.Lock()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):  # noqa: N802
                n = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(n)
                with outer.lock:
                    outer.hooks.append(Hook({k.lower(): v for k, v in self.headers.items()},
                                            raw, time.time()))
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def snapshot(self) -> list[Hook]:
        with self.lock:
            return list(self.hooks)

    def stop(self) -> None:
        self.server.shutdown()


# ---------------------------------------------------------------------------------------------
# HTTP client
# ---------------------------------------------------------------------------------------------


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    raw: bytes

    def json(self) -> Any:
        return json.loads(self.raw)


def http_call(base: str, method: str, path: str, body: Any = None,
              token: str | None = None) -> Response:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if token is not None:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return Response(r.status, {k.lower(): v for k, v in r.headers.items()}, r.read())
    except urllib.error.HTTPError as e:
        return Response(e.code, {k.lower(): v for k, v in e.headers.items()}, e.read())


# ---------------------------------------------------------------------------------------------
# The table
# ---------------------------------------------------------------------------------------------

MESSAGES = f"/{VERSION}/{PHONE_NUMBER_ID}/messages"
TEMPLATES = f"/{VERSION}/{WABA_ID}/message_templates"


@dataclass
class Case:
    """One row. Only `name` and `body` are needed for a send; everything else has a default."""

    name: str
    body: Any                                      # JSON body; None = no body; a callable gets the
                                                   # Runner (e.g. to use an inbound wamid)
    # request
    operation: str = "sendMessage"                 # operationId in the OpenAPI document
    method: str = "POST"
    path: str = MESSAGES
    token: str | None = TOKEN                      # None = no Authorization header
    req_schema: str | None = None                  # override: a components/schemas name
    req_valid: bool = True                         # False: the fixture must FAIL the schema
    open_window: str | None = None                 # simulate an inbound message from this user first
    fault: dict | None = None                      # inject this scripted error for the next send first
    # response
    http: tuple[int, ...] = (200,)
    error_codes: tuple[int, ...] = ()              # non-empty = a Graph error is expected
    resp_schema: str | None = None                 # override for the 200 schema: a components/schemas name
    expect: dict | None = None                     # the 200 body must contain these keys/values
    message_status: str | None = None              # expected messages[0].message_status (sends)
    # webhooks for the returned wamid, in any order ("failed:131047" = failed with that code)
    statuses: tuple[str, ...] = ()
    # message_template_status_update webhooks this row causes: (template name, event) pairs
    template_events: tuple[tuple[str, str], ...] = ()
    after_template_events: tuple[tuple[str, str], ...] = ()  # wait for these webhooks before running
    expect_at: dict[str, Any] | None = None        # the 200 body must have these values at these JSON pointers
    # Business Calling (cloud-api.md §7): simulated-user steps (sandbox control API) around the row,
    # and the `calls` webhooks expected for the call the row creates (`call_label`: a name for the
    # wacid a connect returns) or acts on (body `call_id`): "connect", "RINGING", "ACCEPTED",
    # "REJECTED", "terminate:COMPLETED", "terminate:FAILED".
    before: tuple[Callable[["Runner"], None], ...] = ()
    after: tuple[Callable[["Runner"], None], ...] = ()
    call_label: str | None = None
    call_events: tuple[str, ...] = ()
    pending: str | None = None                     # not implemented in the sandbox yet: skip, say why

    @property
    def is_send(self) -> bool:
        return self.operation == "sendMessage" and self.resp_schema is None


def text(to: str, body: str, **extra) -> dict:
    return {"messaging_product": "whatsapp", "recipient_type": "individual", "to": to,
            "type": "text", "text": {"body": body, **extra}}


def template(to: str, name: str, params: list[str] | dict[str, str] | None = None, lang: str = "en_US") -> dict:
    """Body parameters: a list = positional {{1}}.., a dict = named {{first_name}}.."""
    t: dict = {"name": name, "language": {"code": lang}}
    if isinstance(params, dict):
        t["components"] = [{"type": "body", "parameters": [{"type": "text", "parameter_name": k, "text": v}
                                                           for k, v in params.items()]}]
    elif params is not None:
        t["components"] = [{"type": "body",
                            "parameters": [{"type": "text", "text": p} for p in params]}]
    return {"messaging_product": "whatsapp", "recipient_type": "individual", "to": to,
            "type": "template", "template": t}


def buttons(to: str, body: str, *btns: tuple[str, str]) -> dict:
    return {"messaging_product": "whatsapp", "recipient_type": "individual", "to": to,
            "type": "interactive",
            "interactive": {"type": "button", "body": {"text": body},
                            "action": {"buttons": [{"type": "reply", "reply": {"id": i, "title": t}}
                                                   for i, t in btns]}}}


def without(d: dict, *keys: str) -> dict:
    return {k: v for k, v in d.items() if k not in keys}


# --- Business Calling (cloud-api.md §7) ----------------------------------------------------------

SETTINGS = f"/{VERSION}/{PHONE_NUMBER_ID}/settings"
CALLS = f"/{VERSION}/{PHONE_NUMBER_ID}/calls"
C_SETTINGS = f"/{VERSION}/{CALLING_PNID}/settings"
C_CALLS = f"/{VERSION}/{CALLING_PNID}/calls"
C_MESSAGES = f"/{VERSION}/{CALLING_PNID}/messages"
C_PERMISSIONS = f"/{VERSION}/{CALLING_PNID}/call_permissions"

# §7.1: SDP as a JSON string, RFC 8866 with CRLF line ends
SDP = ("v=0\r\no=- {o} 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111 126\r\n"
       "c=IN IP4 0.0.0.0\r\na=rtpmap:111 opus/48000/2\r\na=rtpmap:126 telephone-event/8000\r\na=sendrecv\r\n")


def call_action(action: str, **kw) -> dict:
    return {"messaging_product": "whatsapp", "action": action, **kw}


def session(sdp_type: str) -> dict:
    return {"sdp_type": sdp_type, "sdp": SDP.format(o=3626166318745852955 if sdp_type == "offer" else 4611731400430051336)}


def connect(to: str, **kw) -> dict:
    return call_action("connect", to=to, session=session("offer"), **kw)


def on_call(label: str, action: str, sdp_type: str | None = None) -> Callable[["Runner"], dict]:
    """A body naming the call `label` (a user's call, or one a connect row returned) by call_id."""
    return lambda run: call_action(action, call_id=run.call_ids.get(label, "wacid.unknown"),
                                   **({"session": session(sdp_type)} if sdp_type else {}))


def permission_request(to: str, body: str) -> dict:
    """§7.5 free-form request (interactive call_permission_request, inside the window)."""
    return {"messaging_product": "whatsapp", "recipient_type": "individual", "to": to, "type": "interactive",
            "interactive": {"type": "call_permission_request", "action": {"name": "call_permission_request"},
                            "body": {"text": body}}}


# Simulated-user steps for Case.before / Case.after (each is one control-API call plus the
# webhooks it makes the sandbox send; see Runner.user_call and friends).
def window(user: str, pnid: str = CALLING_PNID) -> Callable[["Runner"], None]:
    return lambda run: run.simulate_inbound(user, "hi", "Window Opener", pnid)


def user_calls(label: str, user: str, pnid: str = PHONE_NUMBER_ID) -> Callable[["Runner"], None]:
    return lambda run: run.user_call(label, user, pnid)


def user_hangs_up(label: str, duration: int | None = None, auto_reply: bool = False) -> Callable[["Runner"], None]:
    return lambda run: run.user_hang_up(label, duration, auto_reply)


def user_answers(label: str, action: str, duration: int | None = None) -> Callable[["Runner"], None]:
    return lambda run: run.user_answer(label, action, duration)


def user_replies(user: str, response: str, request_case: str, permanent: bool = False) -> Callable[["Runner"], None]:
    return lambda run: run.user_permission_reply(user, response, request_case, permanent)


def user_acts(user: str, action: str, example: str, context_case: str | None = None,
              **fields: Any) -> Callable[["Runner"], None]:
    """A simulated user action (POST /sandbox/users/message `type`=action) whose webhook must match
    Meta's webhook example `example`; `context_case` names the row whose sent message it answers."""
    return lambda run: run.user_action(user, action, example, context_case, fields)


US_USER_A, US_USER_B, US_USER_C, US_USER_D, US_USER_E = (f"1555000200{i}" for i in range(1, 6))
# Users of the calling number (a user's own country does not matter, §7.1)
C_USER_1, C_USER_2, C_USER_3, C_USER_4 = (f"91980000000{i}" for i in range(1, 5))


# Each user number is used by one case, so window state never leaks between rows.
CASES: list[Case] = [
    # --- accepted --------------------------------------------------------------------------
    Case("text inside the window", text("+15550001001", "Thanks for calling, we'll ring you back."),
         open_window="15550001001", statuses=("sent", "delivered")),
    Case("text with preview_url", text("15550001002", "See https://example.com/hours", preview_url=True),
         open_window="15550001002", statuses=("sent", "delivered")),
    Case("text with biz_opaque_callback_data", {**text("15550001003", "ref test"),
                                                "biz_opaque_callback_data": "rb:msg_0123"},
         open_window="15550001003", statuses=("sent", "delivered")),
    Case("interactive reply buttons",
         buttons("+1 (555) 000-1004", "Sorry we missed your call.", ("call_me_back", "Call me back"),
                 ("chat_here", "Chat here")),
         open_window="15550001004", statuses=("sent", "delivered")),
    Case("template hello_world (window closed)", template("+15550001005", "hello_world"),
         message_status="accepted", statuses=("sent", "delivered")),
    Case("template missed_call_followup, 3 params",
         template("+15550001006", "missed_call_followup", ["Ana", "Acme Dental", "10:42"]),
         message_status="accepted", statuses=("sent", "delivered")),
    Case("reply (context.message_id)",
         lambda run: {**text("15550001021", "Yes, we're open until 6."),
                      "context": {"message_id": run.inbound_wamid("15550001021")}},
         open_window="15550001021", statuses=("sent", "delivered")),
    # Simulated user actions (issue 9): each tap, pick and reaction on the business message the
    # row sent must reach us in the shape of Meta's webhook example (checked in check_actions).
    Case("reply buttons, then the user taps one",
         buttons("15550001030", "Sorry we missed your call.", ("call_me_back", "Call me back")),
         open_window="15550001030", statuses=("sent", "delivered"),
         after=(user_acts("15550001030", "button_reply", "Interactive Button Reply Message",
                          "reply buttons, then the user taps one", id="call_me_back", title="Call me back"),
                user_acts("15550001030", "reaction", "Reaction Message",
                          "reply buttons, then the user taps one", text="👍"))),
    Case("list, then the user picks a row",
         {"messaging_product": "whatsapp", "recipient_type": "individual", "to": "15550001031",
          "type": "interactive", "interactive": {"type": "list", "body": {"text": "How should we ship it?"},
                                                 "action": {"button": "Choose", "sections": [{"title": "Speed", "rows": [
                                                     {"id": "priority_express", "title": "Priority Mail Express",
                                                      "description": "Next Day to 2 Days"}]}]}}},
         open_window="15550001031", statuses=("sent", "delivered"),
         after=(user_acts("15550001031", "list_reply", "Interactive List Reply Message",
                          "list, then the user picks a row", id="priority_express",
                          title="Priority Mail Express", description="Next Day to 2 Days"),)),
    Case("template, then the user taps its quick reply", template("+15550001032", "hello_world"),
         message_status="accepted", statuses=("sent", "delivered"),
         after=(user_acts("15550001032", "button", "Button Message",
                          "template, then the user taps its quick reply", id="Unsubscribe", title="Unsubscribe"),)),
    # cloud-api.md §2.6/§3.2: a reaction you send only ever produces `sent`
    Case("reaction",
         lambda run: {"messaging_product": "whatsapp", "recipient_type": "individual", "to": "15550001022",
                      "type": "reaction", "reaction": {"message_id": run.inbound_wamid("15550001022"), "emoji": "👍"}},
         open_window="15550001022", statuses=("sent",)),
    Case("image by link with caption",
         {"messaging_product": "whatsapp", "recipient_type": "individual", "to": "15550001023", "type": "image",
          "image": {"link": "https://example.com/menu.jpg", "caption": "Today's menu"}},
         open_window="15550001023", statuses=("sent", "delivered")),
    Case("location (numeric lat/long)",
         {"messaging_product": "whatsapp", "recipient_type": "individual", "to": "15550001024", "type": "location",
          "location": {"latitude": 37.758056, "longitude": -122.425332, "name": "Acme Dental",
                       "address": "1 Hacker Way, Menlo Park, CA 94025"}},
         open_window="15550001024", statuses=("sent", "delivered")),
    Case("interactive cta_url",
         {"messaging_product": "whatsapp", "recipient_type": "individual", "to": "15550001025", "type": "interactive",
          "interactive": {"type": "cta_url", "body": {"text": "Book a slot online."},
                          "action": {"name": "cta_url",
                                     "parameters": {"display_text": "Book now", "url": "https://example.com/book"}}}},
         open_window="15550001025", statuses=("sent", "delivered")),
    Case("interactive location_request_message",
         {"messaging_product": "whatsapp", "recipient_type": "individual", "to": "15550001029", "type": "interactive",
          "interactive": {"type": "location_request_message", "body": {"text": "Where should we call you back?"},
                          "action": {"name": "send_location"}}},
         open_window="15550001029", statuses=("sent", "delivered")),
    Case("template weekly_offer, named params",
         template("+15550001026", "weekly_offer", {"first_name": "Ana", "offer": "10% off cleaning"}),
         message_status="accepted", statuses=("sent", "delivered")),
    # accepted synchronously, fails asynchronously (cloud-api.md §4.3 "Where errors surface", §11.3)
    Case("text outside the window -> async 131047", text("+15550001007", "hello?"),
         statuses=("failed:131047",)),
    # --- rejected --------------------------------------------------------------------------
    Case("missing token", text("+15550001010", "x"), token=None, http=(401,), error_codes=(190, 104)),
    Case("wrong token", text("+15550001011", "x"), token="not-the-token", http=(401,), error_codes=(190,)),
    Case("unknown phone number id", text("+15550001012", "x"), path=f"/{VERSION}/999999999999999/messages",
         http=(400,), error_codes=(100, 33)),
    Case("template: wrong parameter count",
         template("+15550001013", "missed_call_followup", ["only one"]), http=(400,), error_codes=(132000,)),
    Case("template: unknown name", template("+15550001014", "no_such_template"),
         http=(404,), error_codes=(132001,)),
    Case("template: known name, unknown language", template("+15550001015", "hello_world", lang="xx_XX"),
         http=(404,), error_codes=(132001,)),
    Case("missing `to`", without(text("+15550001016", "x"), "to"), req_valid=False,
         http=(400,), error_codes=(131008, 100)),
    Case("template: named template sent with positional params",
         template("+15550001027", "weekly_offer", ["Ana", "10% off"]), http=(400,), error_codes=(132012, 132000)),
    # cloud-api.md §3.5 and the OAS agree: reply button title ≤ 20
    Case("reply button title over 20 chars",
         buttons("15550001028", "Sorry we missed your call.", ("cb", "Please call me back soon")),
         req_valid=False, open_window="15550001028", http=(400,), error_codes=(100, 131009)),
    # scripted faults (sandbox control API); HTTP per the docs' code table (§4.3). For the rate
    # limits the OAS generic responses say 429 instead of 400 — open question §12.6, so both pass.
    Case("fault 130429 throughput", template("+15550001017", "hello_world"), fault={"code": 130429},
         http=(400, 429), error_codes=(130429,)),
    Case("fault 131056 pair rate limit", template("+15550001018", "hello_world"), fault={"code": 131056},
         http=(400, 429), error_codes=(131056,)),
    Case("fault 131000 something went wrong", template("+15550001019", "hello_world"), fault={"code": 131000},
         http=(500,), error_codes=(131000,)),
    # --- read receipts -------------------------------------------------------------------
    # They share the send operation, whose request schema (Message) does not cover them; Meta
    # describes them as MarkMessageRequestPayload / MarkMessageResponsePayload (§3.3).
    Case("mark as read",
         lambda run: {"messaging_product": "whatsapp", "status": "read", "message_id": run.inbound[0].wamid},
         req_schema="MarkMessageRequestPayload", resp_schema="MarkMessageResponsePayload", expect={"success": True}),
    Case("mark as read + typing indicator",
         lambda run: {"messaging_product": "whatsapp", "status": "read", "message_id": run.inbound[1].wamid,
                      "typing_indicator": {"type": "text"}},
         req_schema="MarkMessageRequestPayload", resp_schema="MarkMessageResponsePayload", expect={"success": True}),
    # --- template management (cloud-api.md §6) --------------------------------------------
    Case("template create (approved after review)",
         {"name": "conformance_order_ready", "language": "en_US", "category": "UTILITY",
          "components": [{"type": "BODY", "text": "Hi {{1}}, your order {{2}} is ready.",
                          "example": {"body_text": [["Ana", "#42"]]}}]},
         operation="createAuthenticationTemplateWOtpCopyCodeButton", path=TEMPLATES,
         template_events=(("conformance_order_ready", "APPROVED"),)),
    Case("template create (rejected after review)",
         {"name": "conformance_rejected", "language": "en_US", "category": "MARKETING",
          "components": [{"type": "BODY", "text": "REJECT_ME please"}]},
         operation="createAuthenticationTemplateWOtpCopyCodeButton", path=TEMPLATES,
         template_events=(("conformance_rejected", "REJECTED"),)),
    Case("template create: invalid name", {"name": "Not Valid", "language": "en_US", "category": "UTILITY",
                                           "components": [{"type": "BODY", "text": "x"}]},
         operation="createAuthenticationTemplateWOtpCopyCodeButton", path=TEMPLATES,
         http=(400,), error_codes=(100,)),
    Case("template list by name", None, operation="getTemplateByNameDefaultFields", method="GET",
         path=TEMPLATES + "?name=hello_world"),
    Case("template list: wrong token", None, operation="getTemplateByNameDefaultFields", method="GET",
         path=TEMPLATES, token="not-the-token", http=(401,), error_codes=(190,)),
    # --- phone number ----------------------------------------------------------------------
    Case("phone number info", None, operation="getPhoneNumberById", method="GET",
         path=f"/{VERSION}/{PHONE_NUMBER_ID}"),
    # --- Business Calling (cloud-api.md §7) ------------------------------------------------
    # settings (§7.2) and user-initiated calls (§7.3/§7.4) on the +1 demo number
    Case("settings GET (defaults)", None, operation="getPhoneNumberSettings", method="GET", path=SETTINGS,
         expect_at={"/calling/status": "DISABLED"}),
    Case("settings GET: wrong token", None, operation="getPhoneNumberSettings", method="GET", path=SETTINGS,
         token="not-the-token", http=(401,), error_codes=(190,)),
    Case("calls: connect while calling is disabled -> 138000", connect(US_USER_E), operation="manageCalls",
         path=CALLS, http=(401,), error_codes=(138000,)),
    Case("settings POST: enable calling",
         {"calling": {"status": "ENABLED", "call_icon_visibility": "DEFAULT", "callback_permission_status": "DISABLED"}},
         operation="updatePhoneNumberSettings", path=SETTINGS, expect={"success": True}),
    Case("settings POST: call_hours (docs' shape)",
         {"calling": {"status": "ENABLED", "call_hours": {
             "status": "ENABLED", "timezone_id": "America/Manaus",
             "weekly_operating_hours": [{"day_of_week": "MONDAY", "open_time": "0400", "close_time": "1020"},
                                        {"day_of_week": "MONDAY", "open_time": "1300", "close_time": "2200"}],
             "holiday_schedule": [{"date": "2026-01-01", "start_time": "0000", "end_time": "2359"}]}}},
         operation="updatePhoneNumberSettings", path=SETTINGS, expect={"success": True}),
    # §7.2 "Enum conflict": the OAS spelling is rejected by the docs' schema and by the sandbox
    Case("settings POST: OAS lowercase 'enabled' -> 100", {"calling": {"status": "enabled"}},
         operation="updatePhoneNumberSettings", path=SETTINGS, req_valid=False, http=(400,), error_codes=(100,)),
    Case("settings POST: two feature objects -> 100",
         {"calling": {"status": "ENABLED"}, "user_identity_change": {"enabled": True}},
         operation="updatePhoneNumberSettings", path=SETTINGS, req_valid=False, http=(400,), error_codes=(100,)),
    Case("settings POST: call_hours open_time after close_time -> 100",
         {"calling": {"status": "ENABLED", "call_hours": {
             "status": "ENABLED", "timezone_id": "America/Manaus",
             "weekly_operating_hours": [{"day_of_week": "TUESDAY", "open_time": "1800", "close_time": "0900"}]}}},
         operation="updatePhoneNumberSettings", path=SETTINGS, http=(400,), error_codes=(100,)),
    Case("settings GET after the updates", None, operation="getPhoneNumberSettings", method="GET", path=SETTINGS,
         expect_at={"/calling/status": "ENABLED", "/calling/callback_permission_status": "DISABLED",
                    "/calling/call_hours/timezone_id": "America/Manaus"}),
    Case("calls: pre_accept a user-initiated call", on_call("us-a", "pre_accept", "answer"),
         operation="manageCalls", path=CALLS, before=(user_calls("us-a", US_USER_A),),
         expect={"messaging_product": "whatsapp", "success": True}),
    Case("calls: accept it", on_call("us-a", "accept", "answer"), operation="manageCalls", path=CALLS,
         expect={"messaging_product": "whatsapp", "success": True}),
    Case("calls: terminate it (business hangs up)", on_call("us-a", "terminate"), operation="manageCalls",
         path=CALLS, expect={"messaging_product": "whatsapp", "success": True}, call_events=("terminate:COMPLETED",)),
    Case("calls: reject a user-initiated call", on_call("us-b", "reject"), operation="manageCalls", path=CALLS,
         before=(user_calls("us-b", US_USER_B),), expect={"messaging_product": "whatsapp", "success": True},
         call_events=("terminate:FAILED",)),
    # §7.3: the OAS "Accept Call" example names the call by `to` — an OAS error
    Case("calls: accept by `to` (OAS example shape) -> 100",
         call_action("accept", to=US_USER_C, session=session("answer")), operation="manageCalls", path=CALLS,
         before=(user_calls("us-c", US_USER_C),), req_valid=False, http=(400,), error_codes=(100,)),
    Case("calls: accept with an SDP offer -> 100", on_call("us-c", "accept", "offer"), operation="manageCalls",
         path=CALLS, req_valid=False, http=(400,), error_codes=(100,), after=(user_hangs_up("us-c"),)),
    Case("calls: accept without pre_accept, the user hangs up after 42 s", on_call("us-d", "accept", "answer"),
         operation="manageCalls", path=CALLS, before=(user_calls("us-d", US_USER_D),),
         expect={"messaging_product": "whatsapp", "success": True}, after=(user_hangs_up("us-d", 42),)),
    Case("calls: terminate an unknown call_id -> 100", call_action("terminate", call_id="wacid.NOSUCHCALL"),
         operation="manageCalls", path=CALLS, http=(400,), error_codes=(100,)),
    # §7.1: business-initiated calls and call-permission features are refused for +1 business numbers
    Case("calls: connect from a +1 business number -> 138013", connect(US_USER_E), operation="manageCalls",
         path=CALLS, http=(400,), error_codes=(138013,)),
    Case("call_permission_request from a +1 business number -> 138013",
         permission_request(US_USER_E, "May we call you about your booking?"), open_window=US_USER_E,
         http=(400,), error_codes=(138013,)),
    # business-initiated calls (§7.3-§7.6) on the second, UK number
    Case("phone number info (calling number)", None, operation="getPhoneNumberById", method="GET",
         path=f"/{VERSION}/{CALLING_PNID}", token=CALLING_TOKEN),
    Case("calls: connect while calling is disabled -> 138000 (calling number)", connect(C_USER_1),
         operation="manageCalls", path=C_CALLS, token=CALLING_TOKEN, http=(401,), error_codes=(138000,)),
    Case("settings POST: enable calling and callback permission (calling number)",
         {"calling": {"status": "ENABLED", "callback_permission_status": "ENABLED",
                      "srtp_key_exchange_protocol": "DTLS"}},
         operation="updatePhoneNumberSettings", path=C_SETTINGS, token=CALLING_TOKEN, expect={"success": True}),
    Case("settings GET (calling number)", None, operation="getPhoneNumberSettings", method="GET", path=C_SETTINGS,
         token=CALLING_TOKEN, expect_at={"/calling/status": "ENABLED", "/calling/callback_permission_status": "ENABLED"}),
    Case("call_permissions: none yet", None, operation="checkCallPermissions", method="GET",
         path=f"{C_PERMISSIONS}?user_wa_id={C_USER_1}", token=CALLING_TOKEN,
         expect_at={"/permission/status": "no_permission"}),
    Case("call_permissions: missing user_wa_id -> 100", None, operation="checkCallPermissions", method="GET",
         path=C_PERMISSIONS, token=CALLING_TOKEN, http=(400,), error_codes=(100,)),
    Case("call_permissions: wrong token", None, operation="checkCallPermissions", method="GET",
         path=f"{C_PERMISSIONS}?user_wa_id={C_USER_1}", token=TOKEN, http=(401,), error_codes=(190,)),
    Case("calls: connect without permission -> 138006", connect(C_USER_1), operation="manageCalls", path=C_CALLS,
         token=CALLING_TOKEN, http=(401,), error_codes=(138006,)),
    Case("call_permission_request", permission_request(C_USER_1, "We would like to call you about order ON-12853."),
         path=C_MESSAGES, token=CALLING_TOKEN, before=(window(C_USER_1),), statuses=("sent", "delivered")),
    # §7.6: 1 request / 24 h per (business number, user)
    Case("call_permission_request again within 24 h -> 138009",
         permission_request(C_USER_1, "Can we call you?"), path=C_MESSAGES, token=CALLING_TOKEN,
         http=(400,), error_codes=(138009,)),
    Case("call_permissions: temporary after the user accepts", None, operation="checkCallPermissions", method="GET",
         path=f"{C_PERMISSIONS}?user_wa_id={C_USER_1}", token=CALLING_TOKEN,
         before=(user_replies(C_USER_1, "accept", "call_permission_request"),),
         expect_at={"/permission/status": "temporary"}),
    Case("calls: connect (business-initiated), the user answers",
         connect(C_USER_1, biz_opaque_callback_data="rb:call_0001"), operation="manageCalls", path=C_CALLS,
         token=CALLING_TOKEN, call_label="c-1", call_events=("RINGING",), after=(user_answers("c-1", "answer"),)),
    Case("calls: pre_accept a business-initiated call -> 100", on_call("c-1", "pre_accept", "answer"),
         operation="manageCalls", path=C_CALLS, token=CALLING_TOKEN, http=(400,), error_codes=(100,)),
    Case("calls: terminate the answered business-initiated call", on_call("c-1", "terminate"),
         operation="manageCalls", path=C_CALLS, token=CALLING_TOKEN,
         expect={"messaging_product": "whatsapp", "success": True}, call_events=("terminate:COMPLETED",)),
    Case("calls: connect, the user rejects", connect(C_USER_1), operation="manageCalls", path=C_CALLS,
         token=CALLING_TOKEN, call_label="c-2", call_events=("RINGING",), after=(user_answers("c-2", "reject"),)),
    Case("calls: connect, the user does not answer", connect(C_USER_1), operation="manageCalls", path=C_CALLS,
         token=CALLING_TOKEN, call_label="c-3", call_events=("RINGING",)),
    Case("calls: connect while a call to the user is ringing -> 138003", connect(C_USER_1),
         operation="manageCalls", path=C_CALLS, token=CALLING_TOKEN, http=(400,), error_codes=(138003,),
         after=(user_answers("c-3", "ignore"),)),
    # §7.2/§7.4: callback permission on -> a missed user call grants a temporary permission, told
    # by an automatic call_permission_reply whose context.id is the call's wacid
    Case("call_permissions: temporary after a missed user call (callback permission)", None,
         operation="checkCallPermissions", method="GET", path=f"{C_PERMISSIONS}?user_wa_id={C_USER_2}",
         token=CALLING_TOKEN, before=(user_calls("c-user", C_USER_2, CALLING_PNID),
                                      user_hangs_up("c-user", auto_reply=True)),
         expect_at={"/permission/status": "temporary"}),
    Case("calls: connect on the callback permission, answered for 30 s", connect(C_USER_2),
         operation="manageCalls", path=C_CALLS, token=CALLING_TOKEN, call_label="c-4", call_events=("RINGING",),
         after=(user_answers("c-4", "answer", 30),)),
    Case("call_permission_request (answered: permanent)", permission_request(C_USER_3, "May we call you?"),
         path=C_MESSAGES, token=CALLING_TOKEN, before=(window(C_USER_3),), statuses=("sent", "delivered")),
    Case("call_permissions: permanent", None, operation="checkCallPermissions", method="GET",
         path=f"{C_PERMISSIONS}?user_wa_id={C_USER_3}", token=CALLING_TOKEN,
         before=(user_replies(C_USER_3, "accept", "call_permission_request (answered: permanent)", permanent=True),),
         expect_at={"/permission/status": "permanent"}),
    Case("call_permission_request (answered: reject)", permission_request(C_USER_4, "May we call you?"),
         path=C_MESSAGES, token=CALLING_TOKEN, before=(window(C_USER_4),), statuses=("sent", "delivered")),
    Case("call_permissions: none after the user rejects", None, operation="checkCallPermissions", method="GET",
         path=f"{C_PERMISSIONS}?user_wa_id={C_USER_4}", token=CALLING_TOKEN,
         before=(user_replies(C_USER_4, "reject", "call_permission_request (answered: reject)"),),
         expect_at={"/permission/status": "no_permission"}),
    # --- after the review of the create row above ------------------------------------------
    Case("template delete by name", None, operation="deleteTemplateByName", method="DELETE",
         path=TEMPLATES + "?name=conformance_order_ready", expect={"success": True},
         after_template_events=(("conformance_order_ready", "APPROVED"),),
         template_events=(("conformance_order_ready", "DELETED"),)),
]

# The inbound messages used to open windows are also a webhook case of their own: this one has
# non-ASCII text and name, for the escaping check (cloud-api.md §2.2).
INBOUND_EXTRA = [("15550001020", "Are you open today? ¿Sí? 👍", "Zoë Ñúñez")]
# Simulated user actions that answer nothing: (user, action, Meta's webhook example, fields).
USER_ACTIONS_EXTRA = [
    ("15550001033", "image", "Image Message", {"caption": "Taj Mahal"}),
    ("15550001033", "location", "Location Message", {"text": "Philz Coffee"}),
    ("15550001033", "contacts", "Contact Sharing Message", {"title": "Lucía Gómez", "id": "+1 (983) 555-2319"}),
    ("15550001033", "text", "Text Message from Click to WhatsApp Ad",
     {"text": "Hello! Can I get more info on this?", "referral": True}),
]
# Meta's examples are one instance; where one of its fields is optional in the docs (a caption, a
# location's url, a shared contact's org), the sandbox may leave it out: keys must be a subset there.
# Elsewhere (taps, picks, reactions, referrals) the keys must be exactly Meta's.
SUBSET_KEYS_OK = {"image", "location", "contacts"}
# Every inbound message since the 2026 business-scoped user ids also has `from_user_id` (§2.5).
ADDED_KEYS = {"from_user_id"}


# ---------------------------------------------------------------------------------------------
# Runner
# ---------------------------------------------------------------------------------------------

DIGITS = re.compile(r"^[0-9]+$")
BSUID = re.compile(r"^[A-Z]{2}\.[A-Za-z0-9]{1,128}$")
TIMESTAMP = re.compile(r"^[0-9]{9,11}$")
PRICING_CATEGORIES = {"authentication", "authentication_international", "marketing", "marketing_lite",
                      "referral_conversion", "service", "utility", "group_marketing", "group_utility",
                      "group_service", "general_purpose_ai"}


# cloud-api.md §2.4: subscribable fields (docs list, plus calls, account_settings_update, groups)
DOCUMENTED_FIELDS = {
    "account_alerts", "account_review_update", "account_update", "automatic_events", "business_capability_update",
    "history", "message_template_components_update", "message_template_quality_update",
    "message_template_status_update", "messages", "partner_solutions", "payment_configuration_update",
    "phone_number_name_update", "phone_number_quality_update", "security", "smb_app_state_sync",
    "smb_message_echoes", "template_category_update", "user_preferences", "calls", "account_settings_update",
    "group_lifecycle_update", "group_settings_update", "group_participants_update",
}
TEMPLATE_EVENTS = {"APPROVED", "ARCHIVED", "DELETED", "DISABLED", "FLAGGED", "IN_APPEAL", "LIMIT_EXCEEDED", "LOCKED",
                   "PAUSED", "PENDING", "REINSTATED", "PENDING_DELETION", "REJECTED", "UNARCHIVED"}
TEMPLATE_REASONS = {"ABUSIVE_CONTENT", "CATEGORY_NOT_AVAILABLE", "INCORRECT_CATEGORY", "INVALID_FORMAT", "NONE",
                    "PROMOTIONAL", "SCAM", "TAG_CONTENT_MISMATCH", None}


def is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def check_template_status_update(b: Bundle, v: dict) -> None:
    """cloud-api.md §2.8 message_template_status_update (and §1: the template id is a JSON number)."""
    b("event is a documented event", v.get("event") in TEMPLATE_EVENTS, repr(v.get("event")))
    b("message_template_id is a JSON number", is_int(v.get("message_template_id")), repr(v.get("message_template_id")))
    b("message_template_name is a string", isinstance(v.get("message_template_name"), str))
    b("message_template_language is a locale like en_US",
      isinstance(v.get("message_template_language"), str)
      and re.match(r"^[a-z]{2,3}(_[A-Z]{2})?$", v["message_template_language"]) is not None,
      repr(v.get("message_template_language")))
    b("reason is a documented reason or null", "reason" in v and v.get("reason") in TEMPLATE_REASONS,
      repr(v.get("reason")))
    b("message_template_category is MARKETING|UTILITY|AUTHENTICATION",
      v.get("message_template_category") in ("MARKETING", "UTILITY", "AUTHENTICATION"),
      repr(v.get("message_template_category")))


TEMPLATE_STATUSES = {"APPROVED", "PENDING", "REJECTED", "PAUSED", "DISABLED", "IN_APPEAL", "FLAGGED", "REINSTATED",
                     "PENDING_DELETION", "DELETED", "ARCHIVED", "UNARCHIVED", "LIMIT_EXCEEDED", "LOCKED"}
TEMPLATE_CATEGORIES = {"MARKETING", "UTILITY", "AUTHENTICATION"}


def check_template_created(b: "Bundle", body: dict) -> None:
    """cloud-api.md §6 Create: {"id":"…","status":"PENDING|APPROVED|REJECTED","category":"UTILITY"}."""
    b("id is a decimal string (§1)", isinstance(body.get("id"), str) and bool(DIGITS.match(body["id"])), repr(body.get("id")))
    b("status is PENDING|APPROVED|REJECTED", body.get("status") in ("PENDING", "APPROVED", "REJECTED"),
      repr(body.get("status")))
    b("category is MARKETING|UTILITY|AUTHENTICATION", body.get("category") in TEMPLATE_CATEGORIES,
      repr(body.get("category")))


def check_template_list(b: "Bundle", body: dict) -> None:
    """cloud-api.md §6 List: {"data":[{…,"id"}],"paging":{"cursors":{"before","after"}}}."""
    data = body.get("data")
    b("data is a non-empty list", isinstance(data, list) and bool(data), repr(data)[:200])
    for t in data or []:
        n = t.get("name")
        b(f"{n}: id is a decimal string (§1)", isinstance(t.get("id"), str) and bool(DIGITS.match(t["id"])),
          repr(t.get("id")))
        b(f"{n}: status documented (§6)", t.get("status") in TEMPLATE_STATUSES, repr(t.get("status")))
        b(f"{n}: category documented (§6)", t.get("category") in TEMPLATE_CATEGORIES, repr(t.get("category")))
        b(f"{n}: language is a locale", isinstance(t.get("language"), str), repr(t.get("language")))
    cursors = (body.get("paging") or {}).get("cursors") or {}
    b("paging.cursors has before and after", "before" in cursors and "after" in cursors, repr(body.get("paging")))


def check_settings(b: "Bundle", body: dict) -> None:
    """cloud-api.md §7.2: GET settings = {"calling": {status, call_icon_visibility,
    callback_permission_status, ...}} with the docs' upper-case values."""
    cs = body.get("calling")
    b("calling is an object", isinstance(cs, dict), repr(cs))
    cs = cs if isinstance(cs, dict) else {}
    b("calling.status is ENABLED|DISABLED", cs.get("status") in CALLING_STATUS, repr(cs.get("status")))
    b("calling.call_icon_visibility is DEFAULT|DISABLE_ALL",
      cs.get("call_icon_visibility", "DEFAULT") in ("DEFAULT", "DISABLE_ALL"), repr(cs.get("call_icon_visibility")))
    b("calling.callback_permission_status is ENABLED|DISABLED",
      cs.get("callback_permission_status", "DISABLED") in CALLING_STATUS, repr(cs.get("callback_permission_status")))
    if "srtp_key_exchange_protocol" in cs:
        b("calling.srtp_key_exchange_protocol is DTLS|SDES", cs["srtp_key_exchange_protocol"] in ("DTLS", "SDES"),
          repr(cs["srtp_key_exchange_protocol"]))


def check_call_action(b: "Bundle", body: dict) -> None:
    """cloud-api.md §7.3: connect -> {messaging_product, calls:[{id: wacid.…}]}; the other actions
    -> {messaging_product, success: true}."""
    b("messaging_product == 'whatsapp'", body.get("messaging_product") == "whatsapp", repr(body.get("messaging_product")))
    if "calls" in body:
        calls = body["calls"]
        b("calls is one {id: wacid.…}", isinstance(calls, list) and len(calls) == 1
          and str((calls[0] or {}).get("id", "")).startswith("wacid."), repr(calls))
        b("no `success` next to calls", "success" not in body)
    else:
        b("success is true", body.get("success") is True, repr(body.get("success")))


def check_call_permissions(b: "Bundle", body: dict) -> None:
    """cloud-api.md §7.5 (docs' shape): permission {status, expiration_time only when
    temporary}; actions send_call_permission_request and start_call with limits
    [{time_period ISO 8601 (PT24H, P7D), max_allowed, current_usage, limit_expiration_time only
    when reached}]."""
    b("messaging_product == 'whatsapp'", body.get("messaging_product") == "whatsapp", repr(body.get("messaging_product")))
    perm = body.get("permission") or {}
    st = perm.get("status")
    b("permission.status is no_permission|temporary|permanent", st in ("no_permission", "temporary", "permanent"),
      repr(st))
    if st == "temporary":
        exp = perm.get("expiration_time")
        b("temporary: expiration_time is unix seconds within 7 days (§7.5)",
          is_int(exp) and time.time() < exp <= time.time() + 7 * 86400 + 60, repr(exp))
    else:
        b(f"{st}: no expiration_time", "expiration_time" not in perm, repr(perm))
    actions = {a.get("action_name"): a for a in body.get("actions") or [] if isinstance(a, dict)}
    b("actions are send_call_permission_request and start_call",
      set(actions) == {"send_call_permission_request", "start_call"}, repr(sorted(actions)))
    for name, a in actions.items():
        b(f"{name}: can_perform_action is a boolean", isinstance(a.get("can_perform_action"), bool))
        for lim in a.get("limits") or []:
            b(f"{name}: limit time_period is ISO 8601 (PT24H, P7D)",
              re.match(r"^P(T[0-9]+H|[0-9]+D)$", str(lim.get("time_period"))) is not None, repr(lim))
            b(f"{name}: max_allowed/current_usage are integers",
              is_int(lim.get("max_allowed")) and is_int(lim.get("current_usage")), repr(lim))
            reached = is_int(lim.get("current_usage")) and is_int(lim.get("max_allowed")) \
                and lim["current_usage"] >= lim["max_allowed"]
            if not reached:
                b(f"{name}: limit_expiration_time only when the limit is reached", "limit_expiration_time" not in lim,
                  repr(lim))
    if st in ("temporary", "permanent"):
        b("with permission, start_call is allowed", (actions.get("start_call") or {}).get("can_perform_action") is True)
    elif st == "no_permission":
        b("without permission, start_call is not allowed",
          (actions.get("start_call") or {}).get("can_perform_action") is False)


# Hand checks (from cloud-api.md) for 200 responses, per operationId; add one per operation.
RESPONSE_CHECKS: dict[str, Callable[["Bundle", dict], None]] = {
    "createAuthenticationTemplateWOtpCopyCodeButton": check_template_created,
    "getTemplateByNameDefaultFields": check_template_list,
    "getPhoneNumberSettings": check_settings,
    "manageCalls": check_call_action,
    "checkCallPermissions": check_call_permissions,
}


def check_number_metadata(b: Bundle, v: dict) -> None:
    """§2.4: metadata of a known number, display_phone_number digits only (no '+')."""
    md = v.get("metadata") or {}
    pnid, dpn = md.get("phone_number_id"), md.get("display_phone_number")
    b("metadata.phone_number_id is one of the sandbox's numbers", pnid in NUMBERS, repr(pnid))
    b("metadata.display_phone_number is that number's, digits only (no '+')",
      isinstance(dpn, str) and bool(DIGITS.match(dpn)) and dpn == NUMBERS.get(pnid, dpn), repr(dpn))


def check_calls_value(b: Bundle, v: dict) -> None:
    """cloud-api.md §7.4 (`calls` is not in Meta's OAS): connect / terminate under `calls[]`,
    business-initiated call statuses under `statuses[]`, contacts with BSUIDs (§2.5)."""
    b("value.messaging_product == 'whatsapp'", v.get("messaging_product") == "whatsapp", repr(v.get("messaging_product")))
    check_number_metadata(b, v)
    display = (v.get("metadata") or {}).get("display_phone_number")
    b("value has calls[] or statuses[]", bool(v.get("calls")) or bool(v.get("statuses")), repr(sorted(v)))
    contacts = {ct.get("wa_id"): ct for ct in v.get("contacts") or [] if isinstance(ct, dict)}
    for ct in contacts.values():
        b(f"contact {ct.get('wa_id')}: user_id is a BSUID (§2.5)",
          isinstance(ct.get("user_id"), str) and BSUID.match(ct["user_id"]) is not None, repr(ct.get("user_id")))
    for c in v.get("calls") or []:
        ev, d = c.get("event"), c.get("direction")
        t = f"call {ev} {c.get('id')}"
        b(f"{t}: id is a wacid", str(c.get("id", "")).startswith("wacid."), repr(c.get("id")))
        b(f"{t}: event is connect|terminate", ev in ("connect", "terminate"), repr(ev))
        b(f"{t}: direction is USER_INITIATED|BUSINESS_INITIATED", d in ("USER_INITIATED", "BUSINESS_INITIATED"), repr(d))
        b(f"{t}: timestamp is a string of unix seconds (§1)",
          isinstance(c.get("timestamp"), str) and bool(TIMESTAMP.match(c["timestamp"])), repr(c.get("timestamp")))
        b(f"{t}: from/to are digits", all(isinstance(c.get(k), str) and DIGITS.match(c[k]) for k in ("from", "to")),
          f"{c.get('from')!r} -> {c.get('to')!r}")
        business, user = (c.get("to"), c.get("from")) if d == "USER_INITIATED" else (c.get("from"), c.get("to"))
        b(f"{t}: the business side is the number's display_phone_number", business == display, f"{business!r}")
        b(f"{t}: contacts[] has the user ({user})", user in contacts, repr(sorted(contacts)))
        if ev == "connect":
            sess = c.get("session") or {}
            want = "offer" if d == "USER_INITIATED" else "answer"
            b(f"{t}: session.sdp_type == {want!r}", sess.get("sdp_type") == want, repr(sess.get("sdp_type")))
            sdp = sess.get("sdp")
            b(f"{t}: session.sdp is RFC 8866 with CRLF line ends (§7.1)", isinstance(sdp, str) and sdp.startswith("v=0\r\n")
              and "\n" not in sdp.replace("\r\n", ""), repr(sdp)[:80])
            b(f"{t}: no terminate fields", not {"status", "duration", "start_time", "end_time"} & set(c), repr(sorted(c)))
        elif ev == "terminate":
            st = c.get("status")
            b(f"{t}: status is COMPLETED|FAILED (one string)", st in ("COMPLETED", "FAILED"), repr(st))
            answered = "duration" in c
            b(f"{t}: start_time/end_time/duration all or none (only when answered)",
              all(k in c for k in ("start_time", "end_time")) == answered
              and any(k in c for k in ("start_time", "end_time")) == answered, repr(sorted(c)))
            if answered:
                b(f"{t}: duration is an integer >= 1 (§1)", is_int(c["duration"]) and c["duration"] >= 1,
                  repr(c["duration"]))
                ok = all(isinstance(c.get(k), str) and TIMESTAMP.match(c[k]) for k in ("start_time", "end_time"))
                b(f"{t}: start_time/end_time are strings of unix seconds", ok, f"{c.get('start_time')!r} {c.get('end_time')!r}")
                if ok and is_int(c["duration"]):
                    b(f"{t}: end_time - start_time == duration (±1 s)",
                      abs(int(c["end_time"]) - int(c["start_time"]) - c["duration"]) <= 1, repr(c))
            b(f"{t}: COMPLETED iff answered", (st == "COMPLETED") == answered, f"{st!r}, duration {c.get('duration')!r}")
            b(f"{t}: no session", "session" not in c)
    for s_ in v.get("statuses") or []:
        t = f"call status {s_.get('status')} {s_.get('id')}"
        b(f"{t}: id is a wacid", str(s_.get("id", "")).startswith("wacid."), repr(s_.get("id")))
        b(f"{t}: type == 'call'", s_.get("type") == "call", repr(s_.get("type")))
        b(f"{t}: status is RINGING|ACCEPTED|REJECTED", s_.get("status") in ("RINGING", "ACCEPTED", "REJECTED"),
          repr(s_.get("status")))
        b(f"{t}: timestamp is a string of unix seconds (§1)",
          isinstance(s_.get("timestamp"), str) and bool(TIMESTAMP.match(s_["timestamp"])), repr(s_.get("timestamp")))
        b(f"{t}: recipient_id is digits", isinstance(s_.get("recipient_id"), str) and bool(DIGITS.match(s_["recipient_id"])),
          repr(s_.get("recipient_id")))


# Per-field hand checks for webhook fields Meta's OAS does not describe; add one per field.
FIELD_CHECKS: dict[str, Callable[[Bundle, dict], None]] = {
    "message_template_status_update": check_template_status_update,
    "calls": check_calls_value,
}


@dataclass
class Expectation:
    case: str
    wamid: str
    statuses: tuple[str, ...]
    to: str
    biz_opaque: str | None


@dataclass
class CallExpectation:
    case: str
    label: str
    user: str
    pnid: str
    direction: str
    biz_opaque: str | None
    events: list[str] = dataclasses.field(default_factory=list)


@dataclass
class ReplyExpectation:
    """An inbound interactive call_permission_reply (§7.5), found by its context.id."""
    case: str
    user: str
    pnid: str
    context_id: str
    response: str
    source: str
    permanent: bool
    wamid: str | None = None  # known for replies the user sent; automatic ones are found by context


@dataclass
class InboundExpectation:
    wamid: str
    user: str
    text: str
    name: str


@dataclass
class ActionExpectation:
    """A simulated user action and the Meta webhook example its inbound message must match."""
    wamid: str
    user: str
    action: str
    example: str
    context: str | None      # the business message it answers (None for reactions: in the body)
    fields: dict


class Runner:
    def __init__(self, spec: Spec, base: str, rx: Receiver, timeout: float):
        self.spec = spec
        self.base = base
        self.rx = rx
        self.timeout = timeout
        self.expect_statuses: list[Expectation] = []
        self.expect_inbound: list[InboundExpectation] = []
        self.expect_template_events: list[tuple[str, str]] = []
        self.responses: dict[str, Any] = {}            # case name -> its response body
        self.call_ids: dict[str, str] = {}             # call label -> wacid
        self.expect_calls: dict[str, CallExpectation] = {}  # wacid -> expected calls webhooks
        self.expect_replies: list[ReplyExpectation] = []
        self.expect_actions: list[ActionExpectation] = []

    @property
    def inbound(self) -> list[InboundExpectation]:
        return self.expect_inbound

    def inbound_wamid(self, user: str) -> str:
        """The wamid of the last simulated inbound message from `user` (for reactions, replies)."""
        return next((x.wamid for x in reversed(self.expect_inbound) if x.user == user), "wamid.none")

    # -- inbound (sandbox control API; not part of Meta's API, so no schema) ------------------
    def simulate_inbound(self, user: str, text_: str, name: str, pnid: str | None = None) -> None:
        r = http_call(self.base, "POST", "/sandbox/simulate/message",
                      {"from": user, "text": text_, "name": name, **({"phone_number_id": pnid} if pnid else {})})
        ok = r.status == 200
        wamid = r.json().get("wamid") if ok else None
        if check(f"setup: simulate inbound message from {user}", ok and isinstance(wamid, str),
                 f"HTTP {r.status} {r.raw[:200]!r}"):
            self.expect_inbound.append(InboundExpectation(wamid, user, text_, name))

    def user_action(self, user: str, action: str, example: str, context_case: str | None, fields: dict) -> None:
        ctx = None
        if context_case is not None:
            sent = (self.responses.get(context_case) or {}).get("messages") or [{}]
            ctx = sent[0].get("id")
            if not check(f"setup: {context_case} returned a wamid for the {action} to answer", isinstance(ctx, str)):
                return
        body = {"from": user, "type": action, **fields, **({"context": ctx} if ctx else {})}
        r = http_call(self.base, "POST", "/sandbox/users/message", body)
        wamid = r.json().get("wamid") if r.status == 200 else None
        if check(f"setup: simulate user action {action} from {user}", isinstance(wamid, str),
                 f"HTTP {r.status} {r.raw[:200]!r}"):
            self.expect_actions.append(ActionExpectation(wamid, user, action, example, ctx, fields))

    # -- one row ------------------------------------------------------------------------------
    def run(self, c: Case) -> None:
        if c.pending and not os.environ.get("CONFORMANCE_RUN_PENDING"):
            skip(c.name, c.pending + " (CONFORMANCE_RUN_PENDING=1 runs it anyway)")
            return
        _, _, op_ptr = self.spec.operation(c.operation)
        req_ptr = SCHEMAS + c.req_schema if c.req_schema else self.spec.request_schema(op_ptr)

        # setup
        if c.open_window:
            self.simulate_inbound(c.open_window, "hi", "Window Opener")
            time.sleep(0.05)
        if c.after_template_events:
            deadline = time.time() + self.timeout
            while time.time() < deadline:
                seen = self.index(self.rx.snapshot())[2]
                if all(ev in seen.get(name, []) for name, ev in c.after_template_events):
                    break
                time.sleep(0.1)
            seen = self.index(self.rx.snapshot())[2]
            check(f"setup: template events {list(c.after_template_events)} arrived first",
                  all(ev in seen.get(name, []) for name, ev in c.after_template_events), f"seen {seen}")
        if c.fault:
            f = http_call(self.base, "POST", "/sandbox/faults",
                          {"phone_number_id": PHONE_NUMBER_ID, "errors": [c.fault]})
            check(f"setup: inject fault {c.fault}", f.status == 200, f"HTTP {f.status} {f.raw[:200]!r}")
        for step in c.before:
            step(self)
        if callable(c.body):
            c = dataclasses.replace(c, body=c.body(self))

        # (a) the fixture against Meta's request schema
        if c.body is not None:
            errs = self.spec.errors(req_ptr, c.body)
            label = c.req_schema or "the request schema"
            if c.req_valid:
                check(f"{c.name}: request validates against {label}", not errs, "; ".join(errs))
            else:
                check(f"{c.name}: request is rejected by {label} (deliberately invalid)",
                      bool(errs), "the schema accepts it")

        r = http_call(self.base, c.method, c.path, c.body, c.token)
        check(f"{c.name}: HTTP {r.status} in {list(c.http)}", r.status in c.http,
              r.raw[:300].decode(errors="replace"))
        ctype = r.headers.get("content-type", "")
        check(f"{c.name}: response Content-Type is application/json", ctype.startswith("application/json"),
              repr(ctype))
        try:
            body = r.json()
        except ValueError:
            check(f"{c.name}: response is JSON", False, repr(r.raw[:200]))
            return

        if r.status in c.http:
            self.expect_template_events.extend(c.template_events)
        self.responses[c.name] = body
        if not c.error_codes:
            self.check_success(c, op_ptr, r, body)
        else:
            self.check_error(c, op_ptr, r, body)
        for step in c.after:
            step(self)

    # -- Business Calling: calls this run makes, and the simulated users' side -----------------
    def register_call(self, c: Case, body: Any) -> None:
        if c.call_label:  # a connect: the wacid comes back in calls[0].id (§7.3)
            calls = body.get("calls") if isinstance(body, dict) else None
            wacid = calls[0].get("id") if isinstance(calls, list) and calls and isinstance(calls[0], dict) else None
            if not check(f"{c.name}: calls[0].id is a wacid", isinstance(wacid, str) and wacid.startswith("wacid."),
                         repr(wacid)):
                return
            self.call_ids[c.call_label] = wacid
            self.expect_calls[wacid] = CallExpectation(c.name, c.call_label, str(c.body.get("to")),
                                                       c.path.split("/")[2], "BUSINESS_INITIATED",
                                                       c.body.get("biz_opaque_callback_data"))
        else:
            wacid = c.body.get("call_id")
        if wacid in self.expect_calls:
            self.expect_calls[wacid].events.extend(c.call_events)
        else:
            check(f"{c.name}: acts on a call this run knows", False, repr(wacid))

    def user_call(self, label: str, user: str, pnid: str) -> None:
        """The user calls the business (POST /sandbox/users/call): a `connect` webhook (§7.4)."""
        r = http_call(self.base, "POST", "/sandbox/users/call", {"phone_number_id": pnid, "from": user, "event": "connect"})
        wacid = r.json().get("call_id") if r.status == 200 else None
        if check(f"setup: user {user} calls {NUMBERS.get(pnid)}", isinstance(wacid, str) and wacid.startswith("wacid."),
                 f"HTTP {r.status} {r.raw[:200]!r}"):
            self.call_ids[label] = wacid
            self.expect_calls[wacid] = CallExpectation(f"user {user} calls", label, user, pnid, "USER_INITIATED",
                                                       None, ["connect"])

    def user_hang_up(self, label: str, duration: int | None, auto_reply: bool) -> None:
        """The user ends their call: `terminate`, COMPLETED with `duration` or FAILED (never
        answered); with callback permission on, also an automatic call_permission_reply (§7.2)."""
        x = self.expect_calls.get(self.call_ids.get(label, ""))
        if not check(f"setup: call {label} exists", x is not None):
            return
        body = {"phone_number_id": x.pnid, "from": x.user, "event": "terminate", "call_id": self.call_ids[label],
                **({"duration": duration} if duration is not None else {})}
        r = http_call(self.base, "POST", "/sandbox/users/call", body)
        if check(f"setup: user {x.user} hangs up call {label}", r.status == 200, f"HTTP {r.status} {r.raw[:200]!r}"):
            x.events.append("terminate:COMPLETED" if duration else "terminate:FAILED")
            if auto_reply:
                self.expect_replies.append(ReplyExpectation(f"automatic reply after call {label}", x.user, x.pnid,
                                                            self.call_ids[label], "accept", "automatic", False))

    def user_answer(self, label: str, action: str, duration: int | None = None) -> None:
        """The user answers / rejects / ignores a business-initiated call (§7.4 statuses)."""
        wacid = self.call_ids.get(label, "wacid.unknown")
        body = {"call_id": wacid, "action": action, **({"duration": duration} if duration is not None else {})}
        r = http_call(self.base, "POST", "/sandbox/users/answer-call", body)
        x = self.expect_calls.get(wacid)
        if check(f"setup: the user does {action!r} on call {label}", r.status == 200 and x is not None,
                 f"HTTP {r.status} {r.raw[:200]!r}"):
            if action == "answer":
                # §7.4: when the user picks up, Meta also posts a business-initiated `connect`
                # carrying its SDP answer for the business to apply.
                x.events.append("connect")
            x.events.extend({"answer": ["ACCEPTED"] + (["terminate:COMPLETED"] if duration else []),
                             "reject": ["REJECTED", "terminate:FAILED"],
                             "ignore": ["terminate:FAILED"]}[action])

    def user_permission_reply(self, user: str, response: str, request_case: str, permanent: bool) -> None:
        """The user answers the call_permission_request sent by `request_case` (§7.5)."""
        sent = self.responses.get(request_case) or {}
        request = ((sent.get("messages") or [{}])[0]).get("id")
        r = http_call(self.base, "POST", "/sandbox/users/call-permission",
                      {"phone_number_id": CALLING_PNID, "from": user, "response": response, "permanent": permanent})
        wamid = r.json().get("wamid") if r.status == 200 else None
        if check(f"setup: user {user} answers the call permission request: {response}"
                 + (" (permanent)" if permanent else ""), isinstance(wamid, str) and isinstance(request, str),
                 f"HTTP {r.status} {r.raw[:200]!r}; request {request!r}"):
            self.expect_replies.append(ReplyExpectation(f"reply to {request_case!r}", user, CALLING_PNID, request,
                                                        response, "user_action", permanent, wamid))

    # (b) success
    def check_success(self, c: Case, op_ptr: str, r: Response, body: Any) -> None:
        ptr = SCHEMAS + c.resp_schema if c.resp_schema else self.spec.response_schema(op_ptr, 200)
        errs = self.spec.errors(ptr, body)
        check(f"{c.name}: response validates against {c.resp_schema or 'the 200 schema'}", not errs, "; ".join(errs))
        if c.expect is not None:
            diff = {k: body.get(k) if isinstance(body, dict) else None for k, v in c.expect.items()
                    if not isinstance(body, dict) or body.get(k) != v}
            check(f"{c.name}: response contains {c.expect}", not diff, f"got {diff}")
        if c.expect_at is not None:
            got = {}
            for ptr, want in c.expect_at.items():
                try:
                    got[ptr] = ptr_get(body, ptr)
                except (KeyError, IndexError, TypeError, ValueError):
                    got[ptr] = "<missing>"
            check(f"{c.name}: response has {c.expect_at}", all(got[k] == v for k, v in c.expect_at.items()),
                  f"got {got}")
        if c.call_label or c.call_events:
            self.register_call(c, body)
        if c.operation in RESPONSE_CHECKS and isinstance(body, dict):
            b = Bundle(f"{c.name}: response assertions from cloud-api.md")
            RESPONSE_CHECKS[c.operation](b, body)
            b.done()
        if not c.is_send:
            return
        # cloud-api.md §3.1 / §11.2
        check(f"{c.name}: messaging_product == 'whatsapp'", body.get("messaging_product") == "whatsapp",
              repr(body.get("messaging_product")))
        contacts = body.get("contacts") or [{}]
        check(f"{c.name}: contacts[0].input echoes `to` verbatim", contacts[0].get("input") == c.body.get("to"),
              f"{contacts[0].get('input')!r} != {c.body.get('to')!r}")
        wa_id = contacts[0].get("wa_id")
        check(f"{c.name}: contacts[0].wa_id is digits only", isinstance(wa_id, str) and bool(DIGITS.match(wa_id)),
              repr(wa_id))
        msgs = body.get("messages") or [{}]
        wamid = msgs[0].get("id")
        check(f"{c.name}: messages[0].id is a wamid", isinstance(wamid, str) and wamid.startswith("wamid."),
              repr(wamid))
        if c.message_status is not None:
            check(f"{c.name}: messages[0].message_status == {c.message_status!r}",
                  msgs[0].get("message_status") == c.message_status, repr(msgs[0].get("message_status")))
        if isinstance(wamid, str) and c.statuses:
            self.expect_statuses.append(Expectation(c.name, wamid, c.statuses, str(wa_id),
                                                    c.body.get("biz_opaque_callback_data")))

    # (b) error
    def check_error(self, c: Case, op_ptr: str, r: Response, body: Any) -> None:
        own = self.spec.response_schema(op_ptr, r.status)
        resp_name = ERROR_RESPONSE_BY_STATUS.get(r.status)
        if self.spec.has(own):
            errs = self.spec.errors(own, body)
            check(f"{c.name}: error validates against the operation's {r.status} schema", not errs, "; ".join(errs))
        elif resp_name:
            ptr = f"/components/responses/{resp_name}/content/application~1json/schema"
            errs = self.spec.errors(ptr, body)
            check(f"{c.name}: error validates against components/responses/{resp_name} (ErrorResponse)",
                  not errs, "; ".join(errs))
        else:
            check(f"{c.name}: an OAS error response exists for HTTP {r.status}", False)
        errs = self.spec.errors(SCHEMAS + "GraphAPIError", body)
        check(f"{c.name}: error validates against GraphAPIError", not errs, "; ".join(errs))

        e = body.get("error") if isinstance(body, dict) else None
        e = e if isinstance(e, dict) else {}
        code = e.get("code")
        check(f"{c.name}: error.code in {list(c.error_codes)}", code in c.error_codes, repr(code))
        # cloud-api.md §4.1: message = "(#<code>) <title>"
        msg = e.get("message")
        check(f"{c.name}: error.message == '(#{code}) <title>'",
              isinstance(msg, str) and re.match(rf"^\(#{code}\) \S.*$", msg) is not None, repr(msg))
        check(f"{c.name}: error.type == 'OAuthException'", e.get("type") == "OAuthException", repr(e.get("type")))
        ed = e.get("error_data")
        check(f"{c.name}: error.error_data == {{messaging_product:'whatsapp', details:<text>}}",
              isinstance(ed, dict) and ed.get("messaging_product") == "whatsapp"
              and isinstance(ed.get("details"), str) and ed["details"] != "", repr(ed))
        check(f"{c.name}: error.fbtrace_id is a non-empty string",
              isinstance(e.get("fbtrace_id"), str) and e["fbtrace_id"] != "", repr(e.get("fbtrace_id")))

    # (c) webhooks -----------------------------------------------------------------------------
    def wait_for_webhooks(self, rx: Receiver, timeout: float, settle: float) -> list[Hook]:
        deadline = time.time() + timeout
        while time.time() < deadline:
            snap = rx.snapshot()
            seen_statuses, seen_msgs, seen_tpl = self.index(snap)
            seen_calls = self.index_calls(snap)
            replies = self.index_replies(seen_msgs)
            done = all(len(seen_statuses.get(x.wamid, [])) >= len(x.statuses) for x in self.expect_statuses) \
                and all(x.wamid in seen_msgs for x in self.expect_inbound) \
                and all(ev in seen_tpl.get(name, []) for name, ev in self.expect_template_events) \
                and all(len(seen_calls.get(w, [])) >= len(x.events) for w, x in self.expect_calls.items()) \
                and all(x.context_id in replies for x in self.expect_replies) \
                and all(x.wamid in seen_msgs for x in self.expect_actions)
            if done:
                break
            time.sleep(0.1)
        time.sleep(settle)  # give stray / duplicate webhooks a chance to show up
        return rx.snapshot()

    @staticmethod
    def values(body: Any):
        for entry in body.get("entry", []) if isinstance(body, dict) else []:
            for change in entry.get("changes", []) if isinstance(entry, dict) else []:
                if isinstance(change, dict) and isinstance(change.get("value"), dict):
                    yield entry, change, change["value"]

    def index(self, hooks: list[Hook]):
        statuses: dict[str, list[dict]] = {}
        msgs: dict[str, tuple[dict, dict]] = {}
        templates: dict[str, list[str]] = {}
        for h in hooks:
            try:
                body = json.loads(h.raw)
            except ValueError:
                continue
            for _, change, value in self.values(body):
                if change.get("field") == "message_template_status_update":
                    templates.setdefault(str(value.get("message_template_name")), []).append(str(value.get("event")))
                    continue
                if change.get("field") == "calls":  # call statuses: see index_calls
                    continue
                for s in value.get("statuses", []) or []:
                    statuses.setdefault(s.get("id"), []).append(s)
                for m in value.get("messages", []) or []:
                    msgs[m.get("id")] = (m, value)
        return statuses, msgs, templates

    def index_calls(self, hooks: list[Hook]) -> dict[str, list[tuple[str, dict, dict]]]:
        """wacid -> [(event, item, value)] over every `calls` webhook (§7.4), in arrival order;
        event is connect | terminate:<status> | <call status>."""
        out: dict[str, list[tuple[str, dict, dict]]] = {}
        for h in hooks:
            try:
                body = json.loads(h.raw)
            except ValueError:
                continue
            for _, change, value in self.values(body):
                if change.get("field") != "calls":
                    continue
                for c in value.get("calls") or []:
                    ev = str(c.get("event")) + (f":{c.get('status')}" if c.get("event") == "terminate" else "")
                    out.setdefault(str(c.get("id")), []).append((ev, c, value))
                for st in value.get("statuses") or []:
                    out.setdefault(str(st.get("id")), []).append((str(st.get("status")), st, value))
        return out

    @staticmethod
    def index_replies(msgs: dict[str, tuple[dict, dict]]) -> dict[str, list[tuple[dict, dict]]]:
        """context.id -> inbound call_permission_reply messages (§7.5)."""
        out: dict[str, list[tuple[dict, dict]]] = {}
        for m, value in msgs.values():
            if (m.get("interactive") or {}).get("type") == "call_permission_reply":
                out.setdefault(str((m.get("context") or {}).get("id")), []).append((m, value))
        return out

    def check_calls(self, hooks: list[Hook]) -> None:
        calls = self.index_calls(hooks)
        for wacid, x in self.expect_calls.items():
            got = calls.get(wacid, [])
            name = f"{x.case}: call {x.label}"
            check(f"{name}: calls webhooks {sorted(x.events)}", sorted(e for e, _, _ in got) == sorted(x.events),
                  f"got {[e for e, _, _ in got]}")
            if not got:
                continue
            b = Bundle(f"{name}: webhooks agree with the call (§7.4)")
            display = NUMBERS.get(x.pnid)
            for ev, item, value in got:
                md = value.get("metadata") or {}
                b(f"{ev}: metadata.phone_number_id == {x.pnid}", md.get("phone_number_id") == x.pnid,
                  repr(md.get("phone_number_id")))
                if "event" in item:  # connect / terminate
                    b(f"{ev}: direction == {x.direction}", item.get("direction") == x.direction, repr(item.get("direction")))
                    want = (x.user, display) if x.direction == "USER_INITIATED" else (display, x.user)
                    b(f"{ev}: from/to == {want}", (item.get("from"), item.get("to")) == want,
                      repr((item.get("from"), item.get("to"))))
                else:  # call status (business-initiated only)
                    b(f"{ev}: only for business-initiated calls", x.direction == "BUSINESS_INITIATED")
                    b(f"{ev}: recipient_id == the callee", item.get("recipient_id") == x.user, repr(item.get("recipient_id")))
                if x.biz_opaque is not None and (ev.startswith("terminate") or "event" not in item):
                    # §7.3/§7.4: echoed in statuses and terminate
                    b(f"{ev}: echoes biz_opaque_callback_data", item.get("biz_opaque_callback_data") == x.biz_opaque,
                      repr(item.get("biz_opaque_callback_data")))
            stamps = [(e, int(i["timestamp"])) for e, i, _ in got if str(i.get("timestamp", "")).isdigit()]
            first = [t for e, t in stamps if e in ("connect", "RINGING")]
            last = [t for e, t in stamps if e.startswith("terminate")]
            if first and last:
                b("terminate.timestamp >= the first event's", min(last) >= min(first), repr(stamps))
            b.done()
        stray = sorted(w for w in calls if w not in self.expect_calls)
        check("webhooks: no calls webhooks for calls this run did not make", not stray, f"unexpected {stray}")

    def check_replies(self, msgs: dict[str, tuple[dict, dict]]) -> set[str]:
        """Each expected call_permission_reply arrives once, with the docs' fields (§7.5).
        Returns the wamids it accounted for."""
        replies = self.index_replies(msgs)
        seen: set[str] = set()
        for x in self.expect_replies:
            got = replies.get(x.context_id, [])
            name = f"{x.case}: call_permission_reply"
            if not check(f"{name} received once (context.id {x.context_id})", len(got) == 1, f"got {len(got)}"):
                continue
            m, value = got[0]
            seen.add(m.get("id"))
            r = (m.get("interactive") or {}).get("call_permission_reply") or {}
            b = Bundle(f"{name}: fields from cloud-api.md §7.5")
            if x.wamid:
                b("id == the wamid the sandbox returned", m.get("id") == x.wamid, repr(m.get("id")))
            b(f"from == {x.user}", m.get("from") == x.user, repr(m.get("from")))
            b(f"metadata.phone_number_id == {x.pnid}", (value.get("metadata") or {}).get("phone_number_id") == x.pnid)
            b("context.from is the business number", (m.get("context") or {}).get("from") == NUMBERS.get(x.pnid),
              repr(m.get("context")))
            b(f"response == {x.response!r}", r.get("response") == x.response, repr(r.get("response")))
            b(f"response_source == {x.source!r}", r.get("response_source") == x.source, repr(r.get("response_source")))
            b(f"is_permanent == {x.permanent}", r.get("is_permanent") is x.permanent, repr(r.get("is_permanent")))
            exp = r.get("expiration_timestamp")
            if x.response == "accept" and not x.permanent:
                # temporary = 7 days from approval (§7.5; §1: an integer)
                b("expiration_timestamp is an integer ~7 days ahead", is_int(exp)
                  and abs(exp - (int(m.get("timestamp", 0)) + 7 * 86400)) <= 120, repr(exp))
            else:
                b("no expiration_timestamp (only when accepted and temporary)", "expiration_timestamp" not in r, repr(exp))
            b.done()
        return seen

    def check_webhooks(self, hooks: list[Hook], webhook_ptr: str) -> None:
        check(f"webhooks: received at least one (got {len(hooks)})", len(hooks) > 0)
        for i, h in enumerate(hooks, 1):
            try:
                body = json.loads(h.raw)
            except ValueError:
                body = None
            tag = f"webhook #{i} [{self.describe(body)}]"
            # cloud-api.md §2.2: X-Hub-Signature-256: sha256=<lowercase hex HMAC-SHA256(raw body, app secret)>
            sig = h.headers.get("x-hub-signature-256", "")
            want = "sha256=" + hmac.new(APP_SECRET.encode(), h.raw, hashlib.sha256).hexdigest()
            check(f"{tag}: X-Hub-Signature-256 matches HMAC-SHA256(raw body, app secret)",
                  hmac.compare_digest(sig, want), f"got {sig!r}")
            # cloud-api.md §2.2: Meta signs the payload as sent, with non-ASCII escaped as \uXXXX
            # (source: third-party quotes of the Graph webhook docs; lower authority).
            pos = next((k for k, b in enumerate(h.raw) if b > 0x7F), None)
            check(f"{tag}: body is ASCII, non-ASCII escaped as \\uXXXX (cloud-api.md §2.2)", pos is None,
                  "" if pos is None else f"raw UTF-8 at byte {pos}: {h.raw[max(0, pos - 24):pos + 16]!r}")
            if body is None:
                check(f"{tag}: body is JSON", False, repr(h.raw[:200]))
                continue
            fields = {str(ch.get("field")) for _, ch, _ in self.values(body)}
            if fields <= self.spec.oas_webhook_fields:
                errs = self.spec.errors(webhook_ptr, body)
                check(f"{tag}: validates against the webhook schema (WebhookPayload)", not errs, "; ".join(errs))
            else:
                errs = self.spec.errors(SCHEMAS + "XConformanceWebhookEnvelope", body)
                check(f"{tag}: validates against WebhookPayload's envelope (field {sorted(fields - self.spec.oas_webhook_fields)} "
                      f"is not in Meta's OAS; shape checked from the docs)", not errs, "; ".join(errs))
            b = Bundle(f"{tag}: envelope/field assertions from cloud-api.md §2")
            b("Content-Type application/json", h.headers.get("content-type", "").startswith("application/json"),
              repr(h.headers.get("content-type")))
            self.check_envelope(b, body)
            b.done()

        statuses, msgs, templates = self.index(hooks)
        want: dict[str, list[str]] = {}
        for name, ev in self.expect_template_events:
            want.setdefault(name, []).append(ev)
        for name, evs in want.items():
            got = templates.get(name, [])
            check(f"template {name}: message_template_status_update events {sorted(evs)}", sorted(got) == sorted(evs),
                  f"got {got}")
        stray_t = sorted(n for n in templates if n not in want)
        check("webhooks: no template events for templates we did not touch", not stray_t, f"unexpected {stray_t}")
        for x in self.expect_statuses:
            self.check_status_sequence(x, statuses.get(x.wamid, []))
        for x in self.expect_inbound:
            self.check_inbound(x, msgs.get(x.wamid))
        for x in self.expect_actions:
            self.check_action(x, msgs.get(x.wamid))
        self.check_calls(hooks)
        replies_seen = self.check_replies(msgs)
        known = {x.wamid for x in self.expect_statuses}
        stray = sorted(str(k) for k in statuses if k not in known)
        check("webhooks: no statuses for messages we did not send (rejected requests make none)",
              not stray, f"unexpected ids {stray}")
        known_in = {x.wamid for x in self.expect_inbound} | {x.wamid for x in self.expect_actions} | replies_seen
        stray_in = sorted(str(k) for k in msgs if k not in known_in)
        check("webhooks: no inbound messages we did not simulate", not stray_in, f"unexpected {stray_in}")

    def describe(self, body: Any) -> str:
        parts = []
        for _, change, value in self.values(body):
            for s in value.get("statuses", []) or []:
                parts.append(f"{s.get('status')} {s.get('id')}")
            for m in value.get("messages", []) or []:
                sub = (m.get("interactive") or {}).get("type") if m.get("type") == "interactive" else None
                parts.append(f"inbound {sub or m.get('type')} {m.get('id')}")
            for c in value.get("calls", []) or []:
                parts.append(f"call {c.get('event')} {c.get('id')}")
            if change.get("field") == "message_template_status_update":
                parts.append(f"template {value.get('message_template_name')} {value.get('event')}")
            elif not value.get("statuses") and not value.get("messages") and not value.get("calls"):
                parts.append(str(change.get("field")))
        return ", ".join(parts) or "?"

    def check_envelope(self, b: Bundle, body: dict) -> None:
        # cloud-api.md §2.4
        b("object == 'whatsapp_business_account'", body.get("object") == "whatsapp_business_account",
          repr(body.get("object")))
        for ei, entry in enumerate(body.get("entry", [])):
            b(f"entry[{ei}].id == WABA id {WABA_ID}", entry.get("id") == WABA_ID, repr(entry.get("id")))
            # `time` is only on management fields, not on "messages"
            if {ch.get("field") for ch in entry.get("changes", [])} == {"messages"}:
                b(f"entry[{ei}] has no `time` (messages field)", "time" not in entry, repr(entry.get("time")))
        for entry, change, value in self.values(body):
            fld = change.get("field")
            b(f"field {fld!r} is a documented subscribable field (§2.4)", fld in DOCUMENTED_FIELDS)
            if fld != "messages":
                if fld not in ("calls", "user_preferences") and not str(fld).startswith("group_"):
                    b(f"{fld}: entry.time is an integer (management field, §2.4/§2.8)",
                      isinstance(entry.get("time"), int) and not isinstance(entry.get("time"), bool),
                      repr(entry.get("time")))
                if fld in FIELD_CHECKS:
                    FIELD_CHECKS[fld](b, value)
                continue
            b("value.messaging_product == 'whatsapp'", value.get("messaging_product") == "whatsapp",
              repr(value.get("messaging_product")))
            check_number_metadata(b, value)
            # §2.5 (BSUIDs): from 31 Mar 2026 every messages webhook carries contacts[].user_id
            # ("US.13491208655302741918": ISO country code + '.' + ≤128 alnum); messages carry
            # from_user_id, statuses recipient_user_id.
            user_ids = {}
            for ct in value.get("contacts", []) or []:
                uid = ct.get("user_id")
                b(f"contact {ct.get('wa_id')}: user_id is a BSUID (§2.5)", isinstance(uid, str)
                  and BSUID.match(uid) is not None, repr(uid))
                user_ids[ct.get("wa_id")] = uid
            for s in value.get("statuses", []) or []:
                st = f"status {s.get('status')}"
                ts = s.get("timestamp")
                b(f"{st}: timestamp is a string of unix seconds (§1)", isinstance(ts, str) and bool(TIMESTAMP.match(ts)),
                  repr(ts))
                rid = s.get("recipient_id")
                b(f"{st}: recipient_id present, digits only", isinstance(rid, str) and bool(DIGITS.match(rid)), repr(rid))
                b(f"{st}: id is a wamid", str(s.get("id", "")).startswith("wamid."), repr(s.get("id")))
                ruid = s.get("recipient_user_id")
                b(f"{st}: recipient_user_id is a BSUID (§2.5)", isinstance(ruid, str) and BSUID.match(ruid) is not None,
                  repr(ruid))
                if "pricing" in s:  # §2.6
                    p = s["pricing"]
                    b(f"{st}: pricing.pricing_model == 'PMP' (CBP ended 1 Jul 2025)", p.get("pricing_model") == "PMP",
                      repr(p.get("pricing_model")))
                    b(f"{st}: pricing.category documented", p.get("category") in PRICING_CATEGORIES,
                      repr(p.get("category")))
                    if "type" in p:
                        b(f"{st}: pricing.type in regular|free_customer_service|free_entry_point",
                          p["type"] in ("regular", "free_customer_service", "free_entry_point"), repr(p["type"]))
                for err in s.get("errors", []) or []:
                    # §4.2: {code,title,message,error_data{details},href}, title == message
                    b(f"{st}: error has code/title/message/error_data.details/href",
                      isinstance(err.get("code"), int)
                      and all(isinstance(err.get(k), str) for k in ("title", "message", "href"))
                      and isinstance((err.get("error_data") or {}).get("details"), str), repr(err))
                    b(f"{st}: error title == message", err.get("title") == err.get("message"),
                      f"{err.get('title')!r} vs {err.get('message')!r}")
                if s.get("status") == "failed":
                    b(f"{st}: carries errors[]", bool(s.get("errors")), repr(s))
            for m in value.get("messages", []) or []:
                mt = f"message {m.get('id')}"
                b(f"{mt}: timestamp is a string of unix seconds (§1)",
                  isinstance(m.get("timestamp"), str) and bool(TIMESTAMP.match(m["timestamp"])), repr(m.get("timestamp")))
                b(f"{mt}: `from` present, digits only", isinstance(m.get("from"), str) and bool(DIGITS.match(m["from"])),
                  repr(m.get("from")))
                b(f"{mt}: id is a wamid", str(m.get("id", "")).startswith("wamid."), repr(m.get("id")))
                fuid = m.get("from_user_id")
                b(f"{mt}: from_user_id is the sender's BSUID (§2.5)", isinstance(fuid, str)
                  and BSUID.match(fuid) is not None and fuid == user_ids.get(m.get("from"), fuid),
                  f"from_user_id={fuid!r}, contacts user_id={user_ids.get(m.get('from'))!r}")
                if m.get("type") != "system":  # §2.5: contacts[] for all non-system messages
                    contacts = value.get("contacts") or []
                    b(f"{mt}: contacts[] has wa_id == from", any(ct.get("wa_id") == m.get("from") for ct in contacts),
                      repr(contacts))

    def check_status_sequence(self, x: Expectation, got: list[dict]) -> None:
        names = sorted(str(s.get("status")) + (f":{s['errors'][0].get('code')}" if s.get("errors") else "")
                       for s in got)
        check(f"{x.case}: status webhooks {sorted(x.statuses)} for {x.wamid}", names == sorted(x.statuses),
              f"got {names}")
        by = {s.get("status"): s for s in got}
        for s in got:
            check(f"{x.case}: status {s.get('status')}.recipient_id == response wa_id",
                  s.get("recipient_id") == x.to, f"{s.get('recipient_id')!r} != {x.to!r}")
            if x.biz_opaque is not None:
                # cloud-api.md §2.6: echo of what you sent
                check(f"{x.case}: status {s.get('status')} echoes biz_opaque_callback_data",
                      s.get("biz_opaque_callback_data") == x.biz_opaque, repr(s.get("biz_opaque_callback_data")))
        # cloud-api.md §2.6: pricing on `sent` and on one of delivered/read
        if "sent" in by:
            check(f"{x.case}: `sent` carries pricing", isinstance(by["sent"].get("pricing"), dict),
                  repr(by["sent"].get("pricing")))
        if "delivered" in by or "read" in by:
            check(f"{x.case}: `delivered` or `read` carries pricing",
                  any(isinstance(by.get(k, {}).get("pricing"), dict) for k in ("delivered", "read")))
        if "sent" in by and "delivered" in by:
            try:
                ok = int(by["sent"]["timestamp"]) <= int(by["delivered"]["timestamp"])
            except (KeyError, ValueError, TypeError):
                ok = False
            check(f"{x.case}: sent.timestamp <= delivered.timestamp", ok)

    def check_inbound(self, x: InboundExpectation, got: tuple[dict, dict] | None) -> None:
        name = f"inbound from {x.user}"
        if not check(f"{name}: message webhook {x.wamid} received", got is not None):
            return
        m, value = got
        check(f"{name}: type == 'text' and text.body == what was sent",
              m.get("type") == "text" and (m.get("text") or {}).get("body") == x.text, repr(m.get("text")))
        check(f"{name}: from == {x.user}", m.get("from") == x.user, repr(m.get("from")))
        ct = [c for c in value.get("contacts") or [] if c.get("wa_id") == x.user]
        check(f"{name}: contacts[].profile.name == {x.name!r}",
              bool(ct) and (ct[0].get("profile") or {}).get("name") == x.name, repr(ct))


    def check_action(self, x: ActionExpectation, got: tuple[dict, dict] | None) -> None:
        """The webhook of a simulated user action against Meta's webhook example of that kind: same
        `type`, same keys (ADDED_KEYS aside), same keys inside the type's object, recursively
        (a subset where SUBSET_KEYS_OK), and the values the action gave."""
        name = f"user action {x.action} from {x.user} (Meta's example {x.example!r})"
        if not check(f"{name}: message webhook {x.wamid} received", got is not None):
            return
        m, _ = got
        examples = ptr_get(self.spec.doc, "/paths/" + ptr_escape("/whatsapp/webhooks") +
                           "/post/requestBody/content/application~1json/examples")
        if not check(f"{name}: the example exists in the OpenAPI document", x.example in examples):
            return
        want = examples[x.example]["value"]["entry"][0]["changes"][0]["value"]["messages"][0]
        check(f"{name}: type == {want['type']!r}", m.get("type") == want["type"], repr(m.get("type")))
        check(f"{name}: message keys == the example's (+ {sorted(ADDED_KEYS)})",
              set(m) - ADDED_KEYS == set(want), f"got {sorted(m)}, example {sorted(want)}")
        kind = want["type"]
        subset = kind in SUBSET_KEYS_OK
        for key in set(want) - {"from", "id", "timestamp", "type"}:
            diffs = shape_diff(m.get(key), want[key], subset, key)
            check(f"{name}: {key} has the example's shape" + (" (keys a subset)" if subset else ""),
                  not diffs, "; ".join(diffs))
        if kind == "reaction":
            check(f"{name}: reaction.message_id names the message, and there is no context",
                  (m.get("reaction") or {}).get("message_id") == x.context and "context" not in m, repr(m))
        elif x.context is not None:
            check(f"{name}: context.id is the message it answers",
                  (m.get("context") or {}).get("id") == x.context, repr(m.get("context")))
        inner = (m.get("interactive") or {}).get(x.action) if kind == "interactive" else m.get("button")
        if inner is not None:
            given = {"button_reply": ("id", "title"), "list_reply": ("id", "title", "description"),
                     "button": ("payload", "text")}[x.action]
            sources = {"id": "id", "title": "title", "description": "description", "payload": "id", "text": "title"}
            check(f"{name}: carries the id/title the user tapped",
                  all(inner.get(k) == x.fields.get(sources[k]) for k in given), repr(inner))


def shape_diff(got: Any, want: Any, subset: bool, path: str) -> list[str]:
    """Where `got` differs in shape from Meta's example `want`: missing/extra keys of objects
    (only extra keys count when `subset`), recursively; lists by their first element."""
    if isinstance(want, dict):
        if not isinstance(got, dict):
            return [f"{path}: expected an object, got {type(got).__name__}"]
        out = []
        extra, missing = sorted(set(got) - set(want)), sorted(set(want) - set(got))
        if extra:
            out.append(f"{path}: keys not in Meta's example {extra}")
        if missing and not subset:
            out.append(f"{path}: missing {missing}")
        for k in set(got) & set(want):
            out += shape_diff(got[k], want[k], subset, f"{path}.{k}")
        return out
    if isinstance(want, list):
        if not isinstance(got, list) or not got:
            return [f"{path}: expected a non-empty array"]
        return shape_diff(got[0], want[0], subset, f"{path}[0]") if want else []
    return []


# ---------------------------------------------------------------------------------------------
# Self-check: Meta's own examples must validate against the patched schemas. This is what shows
# that the patches fix the schemas rather than just loosen them until anything passes.
# ---------------------------------------------------------------------------------------------

SELF_CHECK_REQUEST_EXAMPLES = ["Send Text Message", "Send Reply to Text Message", "Send Reply Button",
                               "Send List Message", "Send Message Template Text", "Send Test Message",
                               "Send Message Template Interactive", "Send Flow Template Message",
                               "Send Location Message", "Send Contact Message",
                               "Send Image Message by URL", "Send Reply with Reaction Message"]


def self_check(spec: Spec, send_ptr: str, webhook_ptr: str, webhook_op_ptr: str) -> None:
    req_ptr = spec.request_schema(send_ptr)
    examples = ptr_get(spec.doc, send_ptr + "/requestBody/content/application~1json/examples")
    for name in SELF_CHECK_REQUEST_EXAMPLES:
        if name not in examples:
            check(f"self-check: OAS request example {name!r} exists", False)
            continue
        value = examples[name]["value"]
        # "Send Test Message" omits recipient_type, which BaseMessageProperties requires; the docs
        # (§3.1) always send it and so do our fixtures, so the requirement is kept and the example
        # is checked with it filled in.
        value = {"recipient_type": "individual", **value}
        errs = spec.errors(req_ptr, value)
        check(f"self-check: OAS request example {name!r} validates", not errs, "; ".join(errs))
    wh_examples = ptr_get(spec.doc, webhook_op_ptr + "/requestBody/content/application~1json/examples")
    for name, ex in wh_examples.items():
        if name.startswith("Group"):
            continue  # group webhooks: out of scope (and the OAS group examples contradict their schema)
        errs = spec.errors(webhook_ptr, ex["value"])
        check(f"self-check: OAS webhook example {name!r} validates", not errs, "; ".join(errs))
    # and a wrong one must not: an inbound text without a body
    bad = copy.deepcopy(wh_examples["Text Message"]["value"])
    del bad["entry"][0]["changes"][0]["value"]["messages"][0]["text"]["body"]
    check("self-check: webhook schema rejects an inbound text without text.body",
          bool(spec.errors(webhook_ptr, bad)))


def self_check_calling(spec: Spec) -> None:
    """The calling patches (§7.2, §7.3) against Meta's own calling examples: the docs-shaped ones
    validate, the ones showing the OAS errors are rejected — and validate once corrected."""
    _, _, calls_ptr = spec.operation("manageCalls")
    req, resp = spec.request_schema(calls_ptr), spec.response_schema(calls_ptr, 200)
    ex = ptr_get(spec.doc, calls_ptr + "/requestBody/content/application~1json/examples")
    for name in ("Connect Call", "Terminate Call"):
        errs = spec.errors(req, ex[name]["value"])
        check(f"self-check: OAS calls example {name!r} validates", not errs, "; ".join(errs))
    for name in ("Accept Call", "Reject Call"):
        value = ex[name]["value"]
        check(f"self-check: OAS calls example {name!r} (`to`, no call_id) is rejected (§7.3)",
              bool(spec.errors(req, value)))
        fixed = {**without(value, "to"), "call_id": "wacid.HBgLMTIxODU1NTI4MjgVAgARGCAyODRQIAFRoA"}
        errs = spec.errors(req, fixed)
        check(f"self-check: OAS calls example {name!r} with call_id instead of `to` validates", not errs,
              "; ".join(errs))
    rex = ptr_get(spec.doc, calls_ptr + "/responses/200/content/application~1json/examples")
    for name, e in rex.items():
        errs = spec.errors(resp, e["value"])
        check(f"self-check: OAS calls response example {name!r} validates", not errs, "; ".join(errs))
    check("self-check: calls response schema rejects {} (neither calls nor success)", bool(spec.errors(resp, {})))
    _, _, set_ptr = spec.operation("updatePhoneNumberSettings")
    sreq = spec.request_schema(set_ptr)
    sex = ptr_get(spec.doc, set_ptr + "/requestBody/content/application~1json/examples")
    for name in ("Enable payload encryption", "Enable user identity change"):
        errs = spec.errors(sreq, sex[name]["value"])
        check(f"self-check: OAS settings example {name!r} validates (not a calling feature)", not errs, "; ".join(errs))
    value = sex["Disable calling"]["value"]
    check("self-check: OAS settings example 'Disable calling' (lowercase) is rejected (§7.2)",
          bool(spec.errors(sreq, value)))
    errs = spec.errors(sreq, {"calling": {"status": "DISABLED"}})
    check("self-check: OAS settings example 'Disable calling' with the docs' DISABLED validates", not errs,
          "; ".join(errs))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base-url", required=True, help="the sandbox, e.g. http://127.0.0.1:8090")
    ap.add_argument("--webhook-port", type=int, required=True,
                    help="port to receive webhooks on (the sandbox posts to http://127.0.0.1:<port>/webhook)")
    ap.add_argument("--openapi", type=Path, default=None, help=f"default: $RINGBACK_SHARED/{OPENAPI_REL}")
    ap.add_argument("--webhook-timeout", type=float, default=float(os.environ.get("CONFORMANCE_WEBHOOK_TIMEOUT", 15)))
    ap.add_argument("--settle", type=float, default=1.5, help="seconds to wait for stray webhooks")
    args = ap.parse_args()

    path = args.openapi or openapi_path()
    if not check(f"openapi document exists: {path}", path.is_file()):
        print(f"{PASSED} passed, {FAILED} failed")
        return 1
    spec = Spec(path)

    send_path, send_method, send_ptr = spec.operation("sendMessage")
    check(f"send operation is {send_method.upper()} {send_path}",
          send_method == "post" and send_path == "/{Version}/{Phone-Number-ID}/messages")
    webhook_op_ptr = "/paths/" + ptr_escape("/whatsapp/webhooks") + "/post"
    webhook_ptr = webhook_op_ptr + "/requestBody/content/application~1json/schema"
    for label, ptr in [("request", spec.request_schema(send_ptr)), ("200 response", spec.response_schema(send_ptr, 200)),
                       ("webhook", webhook_ptr)]:
        try:
            ref = ptr_get(spec.doc, ptr).get("$ref", "(inline)")
            check(f"schema for the {label}: {ptr} -> {ref}", True)
        except KeyError as e:
            check(f"schema for the {label}: {ptr}", False, f"missing {e}")
            print(f"{PASSED} passed, {FAILED} failed")
            return 1

    self_check(spec, send_ptr, webhook_ptr, webhook_op_ptr)
    self_check_calling(spec)

    rx = Receiver(args.webhook_port)
    try:
        runner = Runner(spec, args.base_url.rstrip("/"), rx, args.webhook_timeout)
        for user, text_, name in INBOUND_EXTRA:
            runner.simulate_inbound(user, text_, name)
        for user, action, example, fields in USER_ACTIONS_EXTRA:
            runner.user_action(user, action, example, None, fields)
        for case in CASES:
            try:
                runner.run(case)
            except Exception as e:  # a crashing row is a failed row, not a crashed run
                check(f"{case.name}: ran without exceptions", False, f"{type(e).__name__}: {e}")
        hooks = runner.wait_for_webhooks(rx, args.webhook_timeout, args.settle)
        runner.check_webhooks(hooks, webhook_ptr)
    finally:
        rx.stop()

    print(f"{PASSED} passed, {FAILED} failed")
    return 0 if FAILED == 0 else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception as exc:  # still end with the summary line
        import traceback
        traceback.print_exc()
        check("the checker ran to completion", False, f"{type(exc).__name__}: {exc}")
        print(f"{PASSED} passed, {FAILED} failed")
        sys.exit(1)
