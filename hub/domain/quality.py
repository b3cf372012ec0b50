"""The data audit: what is wrong with a golden record, found as it changes.

Each finding becomes a `data_quality` (or `compliance`) flag once per contact and finding.
Lists that change over time come from maintained packages (disposable domains); the two short
lists below are definitions, not data that drifts: role mailboxes (RFC 2142 and common
practice) and the EU/EEA member states.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache

from disposable_email_domains import blocklist as DISPOSABLE_DOMAINS
from stdnum import iban, luhn

from hub.domain.flags import FlagKind, NewFlag
from hub.domain.golden import GoldenRecord
from hub.domain.identity import IdentityKind

ROLE_LOCAL_PARTS = frozenset({
    "abuse", "admin", "administrator", "billing", "contact", "enquiries", "help", "hello",
    "hostmaster", "info", "inquiries", "marketing", "noc", "no-reply", "noreply", "office",
    "postmaster", "sales", "security", "support", "team", "webmaster",
})
EEA_COUNTRIES = frozenset({
    "AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE", "GR", "HU", "IE", "IT",
    "LV", "LT", "LU", "MT", "NL", "PL", "PT", "RO", "SK", "SI", "ES", "SE", "IS", "LI", "NO",
})
CONSENT_CHANNELS = ("email", "sms", "phone")


@dataclass(frozen=True)
class QualityRules:
    """What the admin asked for: fields every contact must have."""

    required_fields: tuple[str, ...] = ()


@dataclass(frozen=True)
class Finding:
    kind: FlagKind
    topic: str
    summary: str
    details: dict[str, object] = field(default_factory=dict)


def audit_record(golden: GoldenRecord, rules: QualityRules | None = None) -> list[Finding]:
    """Everything the data audit finds on one golden record."""
    rules = rules or QualityRules()
    findings: list[Finding] = []
    for address in golden.identities_of(IdentityKind.EMAIL):
        findings.extend(_email_findings(address))
    if golden.values.get("email_status") == "undeliverable":
        findings.append(Finding(FlagKind.DATA_QUALITY, "undeliverable",
                                "an email tool marked the address undeliverable (bounced or "
                                "cleaned)"))
    missing = [f for f in rules.required_fields if golden.values.get(f) in (None, "", [])]
    if missing:
        findings.append(Finding(FlagKind.DATA_QUALITY, "missing:" + ",".join(missing),
                                f"required fields missing: {', '.join(missing)}",
                                {"fields": missing}))
    if golden.values.get("address.country") in EEA_COUNTRIES and not any(
            golden.values.get(f"consent.{ch}.lawful_basis") for ch in CONSENT_CHANNELS):
        findings.append(Finding(FlagKind.COMPLIANCE, "eea_without_basis",
                                "EU/EEA contact without a recorded lawful basis"))
    return findings


def _email_findings(address: str) -> Iterable[Finding]:
    local, _, domain = address.partition("@")
    if local in ROLE_LOCAL_PARTS:
        yield Finding(FlagKind.DATA_QUALITY, f"role:{address}",
                      "a role address, not a person's: " + address, {"reason": "role"})
    if domain in DISPOSABLE_DOMAINS:
        yield Finding(FlagKind.DATA_QUALITY, f"disposable:{address}",
                      "a disposable email domain: " + domain, {"reason": "disposable"})


def problem_findings(problems: list[str], connection: str) -> list[Finding]:
    """Mapping problems on identity fields are data-quality findings an admin should see."""
    found = []
    for problem in problems:
        target = re.search(r"\((email|phone)\)", problem)
        if target:
            found.append(Finding(FlagKind.DATA_QUALITY, f"invalid_{target.group(1)}:{connection}",
                                 f"invalid {target.group(1)} from {connection}: {problem}"))
    return found


def as_flags(contact_id: int, findings: list[Finding]) -> list[NewFlag]:
    return [NewFlag(kind=f.kind, contact_id=contact_id, summary=f.summary, topic=f.topic,
                    details=dict(f.details)) for f in findings]


# --- personal data in free text -------------------------------------------------------------

_CARD = re.compile(r"(?<![\d-])(?:\d[ -]?){12,18}\d(?![\d-])")
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?:[ ]?[A-Z0-9]{2,4}){3,8}\b")


def redact_pii(text: str) -> tuple[str, list[str]]:
    """Card numbers (Luhn-valid, 13-19 digits) and IBANs (checksum-valid) replaced by a
    marker; the kinds found are returned so a flag can say what was removed (never the value).
    """
    kinds: list[str] = []

    def card(match: re.Match[str]) -> str:
        digits = re.sub(r"\D", "", match.group(0))
        if 13 <= len(digits) <= 19 and luhn.is_valid(digits):
            kinds.append("card_number")
            return "[redacted card number]"
        return match.group(0)

    def account(match: re.Match[str]) -> str:
        if iban.is_valid(match.group(0)):
            kinds.append("iban")
            return "[redacted IBAN]"
        return match.group(0)

    result = _IBAN.sub(account, _CARD.sub(card, text))
    return result, kinds


def might_hold_pii(text: str) -> bool:
    """A cheap test before the real one: a long run of digits or an IBAN-like token."""
    return bool(_CARD.search(text) or _IBAN.search(text))


FREE_TEXT_KEYS = re.compile(
    r"(?i)note|comment|description|message|memo|remark|bio|text|answer|feedback|question|"
    r"instruction|reason|body|content")


@lru_cache(maxsize=4096)
def is_free_text_key(key: str) -> bool:
    """Payloads repeat the same few hundred keys: each is tested once per process."""
    return bool(FREE_TEXT_KEYS.search(key))


def holds_pii_candidate(value: object, free_text: bool = False) -> bool:
    """Whether a free-text string inside a parsed body passes the cheap test: the common
    answer, no, costs a walk without copying anything (~20 µs for a Shopify customer, where
    one regex over the raw text cost ~400 µs)."""
    if isinstance(value, str):
        return free_text and might_hold_pii(value)
    if isinstance(value, dict):
        return any(holds_pii_candidate(item, free_text or is_free_text_key(str(key)))
                   for key, item in value.items())
    if isinstance(value, list):
        return any(holds_pii_candidate(item, free_text) for item in value)
    return False


def scrub(value: object, free_text: bool = False) -> tuple[object, list[str]]:
    """Strings in free-text fields (notes, comments, answers...) anywhere inside a JSON-like
    value, redacted; returns the value and the kinds found. Only free text is touched: an id
    that happens to pass a Luhn check must never be mangled."""
    if isinstance(value, str):
        if free_text and might_hold_pii(value):
            return redact_pii(value)
        return value, []
    if isinstance(value, dict):
        kinds: list[str] = []
        out = {}
        for key, item in value.items():
            out[key], found = scrub(item, free_text or is_free_text_key(str(key)))
            kinds += found
        return out, kinds
    if isinstance(value, list):
        kinds = []
        items = []
        for item in value:
            cleaned, found = scrub(item, free_text)
            items.append(cleaned)
            kinds += found
        return items, kinds
    return value, []
