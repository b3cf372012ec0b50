"""Probabilistic matching: which contacts that share no deciding identifier are one person.

Deterministic identity (identity.py) settles records that carry a known external id, email or
phone. What is left are look-alikes: "Jon Smith, 12 High St" in the shop and "John Smith,
12 High Street" in the CRM. This module scores such pairs the Fellegi–Sunter way:

- a compact view of each contact (`MatchRecord`), normalised once;
- blocking keys, one per pass (`PASSES`): only contacts that share a key are compared, so the
  work grows with the number of contacts, not with its square;
- field comparisons with a few agreement levels each (exact, nickname, Jaro–Winkler >= 0.92,
  >= 0.80, ... different), `null` when either side is empty;
- a model with, per comparison level, m = P(level | same person) and u = P(level | different
  people); the evidence of a level is log2(m/u) and a pair's match weight is the sum of its
  levels' weights plus the prior log-odds. u is counted on random pairs (nearly all different
  people), m is estimated by EM on blocked pairs (see `fit_model`);
- a decision: merge only above the merge threshold AND with a shared strong identifier AND
  names that agree; a duplicate flag above the review threshold; otherwise nothing.

Pure: rapidfuzz, jellyfish, nicknames and numpy are the only libraries used (decision 0016).
"""

from __future__ import annotations

import math
import re
import sys
import unicodedata
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from functools import lru_cache
from typing import Any, NamedTuple

import jellyfish
import numpy as np
import numpy.typing as npt
from nicknames import NickNamer
from rapidfuzz import fuzz
from rapidfuzz.distance import DamerauLevenshtein, JaroWinkler

NULL = -1  # a comparison level meaning "one side is empty": no evidence either way
DOB_FIELDS = ("date_of_birth", "birth_date", "birthdate", "custom.date_of_birth")
FREE_MAIL_DOMAINS = frozenset({
    "gmail.com", "googlemail.com", "yahoo.com", "yahoo.co.uk", "ymail.com", "hotmail.com",
    "hotmail.co.uk", "outlook.com", "live.com", "msn.com", "icloud.com", "me.com", "mac.com",
    "aol.com", "proton.me", "protonmail.com", "gmx.com", "gmx.de", "gmx.net", "web.de",
    "mail.com", "yandex.com", "yandex.ru", "zoho.com", "fastmail.com", "qq.com", "163.com",
    "orange.fr", "free.fr", "btinternet.com", "comcast.net", "verizon.net", "att.net",
    "bigpond.com", "optusnet.com.au",
})
ROLE_LOCAL_PARTS = frozenset({
    "info", "sales", "contact", "admin", "office", "hello", "support", "mail", "team",
    "billing", "accounts", "noreply", "enquiries", "inquiries", "hr", "jobs", "marketing",
    "service", "help", "orders", "shop", "reception", "finance",
})
LEGAL_FORMS = frozenset({
    "inc", "incorporated", "llc", "llp", "ltd", "limited", "gmbh", "ag", "sa", "sarl", "sas",
    "bv", "nv", "plc", "co", "corp", "corporation", "company", "pty", "srl", "spa", "oy", "ab",
    "as", "kg", "the", "and",
})
_SPLIT = re.compile(r"[^a-z0-9]+")
# Street types written out and abbreviated alike ("12 High Street" = "12 High St")
STREET_TYPES = {"street": "st", "road": "rd", "avenue": "ave", "av": "ave", "lane": "ln",
                "drive": "dr", "court": "ct", "place": "pl", "boulevard": "blvd",
                "highway": "hwy", "square": "sq", "crescent": "cres", "terrace": "tce",
                "parade": "pde", "circuit": "cct", "close": "cl", "way": "wy",
                "apartment": "apt", "suite": "ste", "north": "n", "south": "s", "east": "e",
                "west": "w"}
_NOT_LETTER = re.compile(r"[^a-z]+")
_NOT_DIGIT = re.compile(r"[^0-9]+")


class MatchRecord(NamedTuple):
    """What matching looks at, normalised (ASCII, lower case); "" when unknown."""

    id: int
    first: str
    last: str
    email_local: str
    email_domain: str
    email_named: bool  # the local part is made of the person's names (john.smith, jsmith)
    emails: tuple[str, ...]
    phones: tuple[str, ...]  # digits of E.164 numbers
    external_ids: tuple[str, ...]  # "scope:value"
    company: str  # legal forms dropped
    street: str  # address line 1
    line2: str
    city: str
    postcode: str
    region: str
    country: str
    dob: str  # YYYYMMDD


def fold(value: Any) -> str:
    """ASCII, lower case, apostrophes dropped, any other punctuation as one space."""
    if value is None:
        return ""
    text = str(value)
    if not text.isascii():
        text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    text = text.lower().replace("'", "")
    return " ".join(_SPLIT.split(text)).strip()


def _intern(text: str) -> str:
    return sys.intern(text) if text else ""


def _dob(values: Mapping[str, Any]) -> str:
    for name in DOB_FIELDS:
        raw = values.get(name)
        if raw:
            digits = "".join(ch for ch in str(raw)[:10] if ch.isdigit())
            return digits if len(digits) == 8 else ""
    return ""


def _street_text(value: Any) -> str:
    return " ".join(STREET_TYPES.get(t, t) for t in fold(value).split())


def _company(value: Any) -> str:
    return " ".join(t for t in fold(value).split() if t not in LEGAL_FORMS)


def _names(values: Mapping[str, Any]) -> tuple[str, str]:
    first, last = fold(values.get("first_name")), fold(values.get("last_name"))
    if not (first or last):
        parts = fold(values.get("full_name")).split()
        if len(parts) >= 2:
            first, last = parts[0], " ".join(parts[1:])
        elif parts:
            last = parts[0]
    return first, last


def match_record(
    contact_id: int,
    values: Mapping[str, Any],
    identities: Iterable[tuple[str, str, str]] = (),
) -> MatchRecord:
    """The matching view of a contact: its canonical values and its (kind, scope, value) ids."""
    emails: list[str] = []
    phones: list[str] = []
    externals: list[str] = []
    if values.get("email"):
        emails.append(str(values["email"]).strip().lower())
    if values.get("phone"):
        phones.append(_NOT_DIGIT.sub("", str(values["phone"])))
    if values.get("finance.erp_customer_id"):
        externals.append(f"erp:{values['finance.erp_customer_id']}")
    for kind, scope, value in identities:
        if kind == "email" and value.lower() not in emails:
            emails.append(value.lower())
        elif kind == "phone":
            digits = _NOT_DIGIT.sub("", value)
            if digits not in phones:
                phones.append(digits)
        elif kind == "external":
            externals.append(f"{scope}:{value}")
    local, _, domain = emails[0].partition("@") if emails else ("", "", "")
    first, last = _names(values)
    letters = _NOT_LETTER.sub("", local)
    named = any(len(n) >= 3 and n.replace(" ", "") in letters for n in (first, last))
    return MatchRecord(
        id=contact_id, first=_intern(first), last=_intern(last),
        email_local=local, email_domain=_intern(domain), email_named=named,
        emails=tuple(emails), phones=tuple(p for p in phones if p), external_ids=tuple(externals),
        company=_intern(_company(values.get("company"))),
        street=_street_text(values.get("address.line1")),
        line2=_intern(_street_text(values.get("address.line2"))),
        city=_intern(fold(values.get("address.city"))),
        postcode=_intern(fold(values.get("address.postal_code")).replace(" ", "")),
        region=_intern(fold(values.get("address.region"))),
        country=_intern(fold(values.get("address.country"))), dob=_intern(_dob(values)),
    )


# --- blocking -------------------------------------------------------------------------------

PASSES = ("email", "phone", "name", "postcode", "address", "company", "dob")
# The comparisons a pass's key is made of: EM on that pass's pairs leaves them out, since
# every pair in it agrees on them by construction (decision 0016).
PASS_FIELDS: dict[str, tuple[str, ...]] = {
    "email": ("email",),
    "phone": ("phone",),
    "name": ("first_name", "last_name"),
    "postcode": ("place", "region", "first_name", "last_name"),
    "address": ("street",),
    "company": ("email", "company", "last_name"),
    "dob": ("dob",),
}
Keys = tuple[tuple[str, ...], ...]  # per pass, the record's keys (none, one or two)


@lru_cache(maxsize=65536)
def _soundex(name: str) -> str:
    return str(jellyfish.soundex(name.replace(" ", ""))) if name else ""


def _street_key(street: str) -> str | None:
    """House number and the sound of the street's first word: "12|H240" for 12 High St."""
    tokens = street.split()
    number = next((t for t in tokens if t.isdigit()), None)
    word = next((t for t in tokens if t.isalpha() and len(t) > 1), None)
    return f"{number}|{_soundex(word)}" if number and word else None


def _keys(*candidates: str | None) -> tuple[str, ...]:
    return tuple(sorted({c for c in candidates if c}))


def blocking_keys(r: MatchRecord) -> Keys:
    """A record's keys for each pass in PASSES. The name and postcode passes give two keys,
    one per name, so that a typo in either name, or first and last names swapped, still
    meets the other record in one block."""
    local = r.email_local.split("+", 1)[0].replace(".", "").replace("_", "").replace("-", "")
    corporate = r.email_domain if r.email_domain not in FREE_MAIL_DOMAINS else r.company
    both = r.first and r.last
    return (
        _keys(local if local not in ROLE_LOCAL_PARTS else None),
        _keys(r.phones[0][-7:] if r.phones and len(r.phones[0]) >= 7 else None),
        _keys(both and _soundex(r.last) + r.first[0], both and _soundex(r.first) + r.last[0]),
        _keys(r.postcode and r.first and f"{r.postcode}|{r.first[0]}",
              r.postcode and r.last and f"{r.postcode}|{r.last[0]}"),
        _keys(_street_key(r.street)),
        _keys(corporate and f"{corporate}|{r.last[:1]}"),
        _keys(r.dob),
    )


def block_pairs(
    members: Sequence[int], records: Sequence[MatchRecord], max_block: int, window: int
) -> Iterator[tuple[int, int]]:
    """Pairs of positions to compare in one block; a block too large for all its pairs is
    sorted by name (then postcode, email) and each member compared with the next `window` ones
    (sorted neighbourhood), so one common key cannot make the work quadratic."""
    n = len(members)
    if n <= max_block:
        for i in range(n - 1):
            for j in range(i + 1, n):
                yield members[i], members[j]
        return
    ordered = sorted(members, key=lambda p: (records[p].last, records[p].first,
                                             records[p].postcode, records[p].email_local, p))
    for i in range(n - 1):
        for j in range(i + 1, min(n, i + 1 + window)):
            yield ordered[i], ordered[j]


def block_pair_count(size: int, max_block: int, window: int) -> int:
    if size <= max_block or size - 1 <= window:
        return size * (size - 1) // 2
    return window * (size - 1) - window * (window - 1) // 2


def covered_earlier(ka: Keys, kb: Keys, pass_index: int, key: str,
                    oversize: Sequence[frozenset[str]]) -> bool:
    """True when this pair was compared before reaching block `key` of pass `pass_index`:
    it shares a key of an earlier pass, or an earlier (smaller) key of this pass, whose block
    was compared in full. So each pair is scored once however many keys it shares."""
    for k in range(pass_index + 1):
        theirs = kb[k]
        for shared in ka[k]:
            if shared in theirs and shared not in oversize[k] and (k < pass_index or
                                                                    shared < key):
                return True
    return False


# --- comparisons ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Comparison:
    name: str
    label: str  # what an admin calls the field
    levels: tuple[str, ...]  # best first; the last is "different"


COMPARISONS: tuple[Comparison, ...] = (
    Comparison("first_name", "first name",
               ("exact", "nickname", "jw>=0.92", "jw>=0.80", "initial", "different")),
    Comparison("last_name", "surname", ("exact", "jw>=0.92", "jw>=0.80", "part", "different")),
    Comparison("email", "email",
               ("exact", "same local part", "similar local part", "same company domain",
                "different")),
    Comparison("phone", "phone", ("exact", "same last 7 digits", "different")),
    Comparison("company", "company", ("exact", "tokens>=0.90", "tokens>=0.70", "different")),
    Comparison("street", "street address",
               ("exact", "tokens>=0.90", "tokens>=0.70", "different")),
    Comparison("line2", "address line 2", ("exact", "jw>=0.90", "different")),
    Comparison("place", "place", ("postcode and city", "city, postcode near", "postcode only",
                                  "city only", "postcode near", "region", "different")),
    Comparison("region", "region", ("exact", "different")),
    Comparison("country", "country", ("exact", "different")),
    Comparison("dob", "date of birth", ("exact", "one edit", "two edits", "different")),
)
INDEX = {c.name: i for i, c in enumerate(COMPARISONS)}
Levels = tuple[int, ...]


@lru_cache(maxsize=1)
def _namer() -> NickNamer:
    return NickNamer()


@lru_cache(maxsize=131072)
def _formal_names(name: str) -> frozenset[str]:
    return frozenset(_namer().canonicals_of(name))


def nicknames_match(a: str, b: str) -> bool:
    """Bill ~ William, Jon ~ John, Peggy ~ Margaret (the `nicknames` package's table): one is
    short for the other, or both are short for one name and start alike (Will ~ Willy). Two
    short forms of one long name that start differently (Chris, Ann: Christiana) do not match."""
    formal_a, formal_b = _formal_names(a), _formal_names(b)
    return b in formal_a or a in formal_b or (a[0] == b[0] and not formal_a.isdisjoint(formal_b))


def _first(a: str, b: str) -> tuple[int, float]:
    if not a or not b:
        return NULL, 0.0
    if a == b:
        return 0, 1.0
    sim = JaroWinkler.similarity(a, b)
    if nicknames_match(a, b):
        return 1, sim
    if sim >= 0.92:
        return 2, sim
    if sim >= 0.80:
        return 3, sim
    if (len(a) == 1 or len(b) == 1) and a[0] == b[0]:
        return 4, sim
    return 5, sim


def _last(a: str, b: str) -> tuple[int, float]:
    if not a or not b:
        return NULL, 0.0
    if a == b:
        return 0, 1.0
    sim = JaroWinkler.similarity(a, b)
    if sim >= 0.92:
        return 1, sim
    if sim >= 0.80:
        return 2, sim
    ta, tb = set(a.split()), set(b.split())
    if (len(ta) > 1 or len(tb) > 1) and (ta <= tb or tb <= ta):
        return 3, sim
    return 4, sim


def _email(a: MatchRecord, b: MatchRecord) -> tuple[int, float]:
    if not a.emails or not b.emails:
        return NULL, 0.0
    if not set(a.emails).isdisjoint(b.emails):
        return 0, 1.0
    sim = 1.0 if a.email_local == b.email_local else \
        JaroWinkler.similarity(a.email_local, b.email_local)
    company = a.email_domain == b.email_domain and a.email_domain not in FREE_MAIL_DOMAINS
    if sim >= 0.88 and (a.email_named or b.email_named):
        # jon.smith@gmail.com ~ jon.smith@yahoo.com says again what the names say: counting
        # it as well would double the evidence of two namesakes
        return (3 if company else NULL), sim
    if sim >= 0.88:
        return (1 if sim == 1.0 else 2), sim
    return (3 if company else 4), sim


def _phone(a: MatchRecord, b: MatchRecord) -> tuple[int, float]:
    if not a.phones or not b.phones:
        return NULL, 0.0
    if not set(a.phones).isdisjoint(b.phones):
        return 0, 1.0
    if not {p[-7:] for p in a.phones}.isdisjoint(p[-7:] for p in b.phones):
        return 1, 1.0
    return 2, 0.0


def _tokens(a: str, b: str) -> tuple[int, float]:
    if not a or not b:
        return NULL, 0.0
    if a == b:
        return 0, 1.0
    sim = fuzz.token_set_ratio(a, b) / 100.0
    return (1 if sim >= 0.9 else 2 if sim >= 0.7 else 3), sim


def _street(a: str, b: str) -> tuple[int, float]:
    level, sim = _tokens(a, b)
    if level in (1, 2):  # "12 High St" vs "14 High St": a different house, however alike
        na = {t for t in a.split() if t.isdigit()}
        nb = {t for t in b.split() if t.isdigit()}
        if na and nb and na.isdisjoint(nb):
            level += 1
    return level, sim


def _jw(a: str, b: str, cut: float) -> tuple[int, float]:
    if not a or not b:
        return NULL, 0.0
    if a == b:
        return 0, 1.0
    sim = JaroWinkler.similarity(a, b)
    return (1 if sim >= cut else 2), sim


def _edits(a: str, b: str, levels: int) -> tuple[int, float]:
    if not a or not b:
        return NULL, 0.0
    if a == b:
        return 0, 1.0
    distance = DamerauLevenshtein.distance(a, b, score_cutoff=levels)
    return min(distance, levels), 0.0


def _exact(a: str, b: str) -> tuple[int, float]:
    if not a or not b:
        return NULL, 0.0
    return (0, 1.0) if a == b else (1, 0.0)


def _place(a: MatchRecord, b: MatchRecord) -> tuple[int, float]:
    """Postcode, city and region as one comparison: they say the same thing, and counting
    them as three independent agreements would triple the evidence of a shared town."""
    postcode = a.postcode == b.postcode if a.postcode and b.postcode else None
    near = postcode is False and DamerauLevenshtein.distance(a.postcode, b.postcode) == 1
    city_sim = JaroWinkler.similarity(a.city, b.city) if a.city and b.city else 0.0
    city = None if not (a.city and b.city) else city_sim >= 0.9
    if postcode and city is not False:
        return 0, 1.0
    if city and (near or postcode is None):
        return 1, city_sim
    if postcode:
        return 2, 1.0
    if city:
        return 3, city_sim
    if near:
        return 4, 0.0
    if a.region and b.region and a.region == b.region:
        return 5, 0.0
    return (NULL, 0.0) if postcode is None and city is None and not (a.region and b.region) \
        else (6, 0.0)


def _name_pairs(a: MatchRecord, b: MatchRecord) -> tuple[tuple[int, float], tuple[int, float],
                                                         bool]:
    first, last = _first(a.first, b.first), _last(a.last, b.last)
    if first[0] in (0, 1) and last[0] in (0, 1) or not (a.first and a.last and b.first and
                                                         b.last) or \
            (a.first[0] != b.last[0] and a.last[0] != b.first[0]):
        return first, last, False
    swapped_first, swapped_last = _first(a.first, b.last), _last(a.last, b.first)
    if swapped_first[0] in (0, 1, 2, 3) and swapped_last[0] in (0, 1, 2) and \
            swapped_first[0] + swapped_last[0] < first[0] + last[0]:
        return swapped_first, swapped_last, True
    return first, last, False


def _address_lines(a: MatchRecord, b: MatchRecord) -> tuple[tuple[int, float], tuple[int, float]]:
    """Street and line 2; lines 1 and 2 written the other way round count as the same street
    (and line 2 then gives no separate evidence)."""
    street, line2 = _street(a.street, b.street), _jw(a.line2, b.line2, 0.9)
    if street[0] > 1 and a.line2 and b.line2:
        whole = _street(f"{a.street} {a.line2}", f"{b.street} {b.line2}")
        if whole[0] < street[0]:
            return (max(whole[0], 1), whole[1]), (NULL, 0.0)
    return street, line2


def compare_detailed(a: MatchRecord, b: MatchRecord) -> tuple[list[tuple[int, float]], bool]:
    """(level, similarity) per comparison in COMPARISONS order, and whether names are swapped."""
    first, last, swapped = _name_pairs(a, b)
    street, line2 = _address_lines(a, b)
    return [
        first, last, _email(a, b), _phone(a, b), _tokens(a.company, b.company),
        street, line2, _place(a, b), _exact(a.region, b.region),
        _exact(a.country, b.country), _edits(a.dob, b.dob, 3),
    ], swapped


def compare(a: MatchRecord, b: MatchRecord) -> Levels:
    """The comparison vector of a pair: one level per comparison, NULL where a side is empty.
    (compare_detailed, spelled out: this runs tens of millions of times in a scan.)"""
    first, last, _ = _name_pairs(a, b)
    street, line2 = _address_lines(a, b)
    return (first[0], last[0], _email(a, b)[0], _phone(a, b)[0],
            _tokens(a.company, b.company)[0], street[0], line2[0], _place(a, b)[0],
            NULL if not (a.region and b.region) else 0 if a.region == b.region else 1,
            NULL if not (a.country and b.country) else 0 if a.country == b.country else 1,
            _edits(a.dob, b.dob, 3)[0])


def strong_identifier(a: MatchRecord, b: MatchRecord) -> str | None:
    """The identifier two contacts share that may corroborate a merge, described; or None."""
    for label, mine, theirs in (("external id", a.external_ids, b.external_ids),
                                ("email", a.emails, b.emails), ("phone", a.phones, b.phones)):
        shared = sorted(set(mine) & set(theirs))
        if shared:
            value = f"+{shared[0]}" if label == "phone" else shared[0]
            return f"{label} {value}"
    return None


# --- the model ------------------------------------------------------------------------------

FloatArray = npt.NDArray[np.float64]


def _default_m(levels: int) -> list[float]:
    """Before the data says otherwise: most true pairs agree exactly, few differ."""
    tail = [0.5 ** (i + 2) for i in range(levels - 1)]
    return [1.0 - sum(tail), *tail]


def _default_u(levels: int) -> list[float]:
    head = [0.01 * 0.5 ** i for i in range(levels - 1)]
    return [*head, 1.0 - sum(head)]


@dataclass
class MatchModel:
    """m and u per comparison level, and the prior probability that two contacts match."""

    m: list[list[float]]
    u: list[list[float]]
    prior: float
    weights: list[list[float]] = field(init=False, repr=False)
    prior_weight: float = field(init=False, repr=False)

    @classmethod
    def default(cls, prior: float = 1e-4) -> MatchModel:
        return cls(m=[_default_m(len(c.levels)) for c in COMPARISONS],
                   u=[_default_u(len(c.levels)) for c in COMPARISONS], prior=prior)

    def __post_init__(self) -> None:
        self.weights = [[math.log2(max(m, 1e-9) / max(u, 1e-9)) for m, u in zip(ms, us,
                                                                                  strict=True)]
                        for ms, us in zip(self.m, self.u, strict=True)]
        self.prior_weight = math.log2(self.prior / (1.0 - self.prior))

    def weight(self, levels: Levels) -> float:
        """log2 of the odds that the pair is one person: prior plus each field's evidence."""
        total = self.prior_weight
        for c, level in enumerate(levels):
            if level != NULL:
                total += self.weights[c][level]
        return total

    def to_dict(self) -> dict[str, Any]:
        return {"m": self.m, "u": self.u, "prior": self.prior}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MatchModel:
        return cls(m=[list(x) for x in data["m"]], u=[list(x) for x in data["u"]],
                   prior=float(data["prior"]))


def probability(weight: float) -> float:
    if weight > 60:
        return 1.0
    odds = math.pow(2.0, weight)
    return odds / (1.0 + odds)


def _weight_table(m: Sequence[Sequence[float]], u: Sequence[Sequence[float]]
                  ) -> list[FloatArray]:
    """log(m/u) per level, with a trailing 0 so that a NULL level (-1) indexes no evidence."""
    return [np.append(np.log(np.maximum(mc, 1e-9) / np.maximum(uc, 1e-9)), 0.0)
            for mc, uc in zip(m, u, strict=True)]


def _log_bf(levels: npt.NDArray[np.int8], table: Sequence[FloatArray],
            active: Sequence[bool]) -> FloatArray:
    total = np.zeros(len(levels))
    for c, on in enumerate(active):
        if on:
            total += table[c][levels[:, c]]
    return total


def _posterior(log_bf: FloatArray, prior: float) -> FloatArray:
    logit = np.clip(log_bf + math.log(prior / (1.0 - prior)), -700, 700)
    return 1.0 / (1.0 + np.exp(-logit))


def estimate_u(random_levels: npt.NDArray[np.int8], pseudo: float = 50.0) -> list[list[float]]:
    """u from random pairs (almost all different people), smoothed towards the defaults so
    that a small database gets sensible values and a level never seen gets no infinite weight."""
    u = []
    for c, comp in enumerate(COMPARISONS):
        n_levels = len(comp.levels)
        column = random_levels[:, c] if len(random_levels) else np.zeros(0, dtype=np.int8)
        counts = np.bincount(column[column >= 0], minlength=n_levels).astype(float)
        prior = np.array(_default_u(n_levels))
        u.append(list((counts + pseudo * prior) / (counts.sum() + pseudo)))
    return u


@dataclass
class PassSample:
    """Comparison vectors of pairs sampled from one blocking pass's candidates."""

    pass_name: str
    levels: npt.NDArray[np.int8]  # one row per sampled pair, one column per comparison
    first_seen: npt.NDArray[np.bool_]  # the pair is not covered by an earlier pass
    candidates: int  # all candidate pairs of this pass (the sample's population)


def _em_pass(sample: PassSample, u_table: list[FloatArray], m: list[FloatArray],
             iterations: int) -> list[FloatArray]:
    """EM on one pass's pairs, m only (u stays as counted): soft counts per level."""
    active = [c.name not in PASS_FIELDS[sample.pass_name] for c in COMPARISONS]
    prior, levels = 0.1, sample.levels
    counts: list[FloatArray] = []
    for _ in range(iterations):
        table = [np.append(np.log(np.maximum(mc, 1e-9)), 0.0) - ut  # ut ends with 0 too
                 for mc, ut in zip(m, u_table, strict=True)]
        p = _posterior(_log_bf(levels, table, active), prior)
        counts = []
        for c, comp in enumerate(COMPARISONS):
            column = levels[:, c]
            seen = column >= 0
            level_counts = np.bincount(column[seen], weights=p[seen],
                                       minlength=len(comp.levels)).astype(np.float64)
            counts.append(level_counts if active[c] else np.zeros(len(comp.levels)))
            if active[c] and level_counts.sum() > 0:
                m[c] = level_counts / level_counts.sum()
        new_prior = float(np.clip(p.mean(), 1e-6, 0.999))
        if abs(new_prior - prior) < 1e-6:
            break
        prior = new_prior
    return counts


def fit_model(samples: Sequence[PassSample], random_levels: npt.NDArray[np.int8],
              total_pairs: float, *, iterations: int = 40, pseudo_matches: float = 20.0
              ) -> MatchModel:
    """u from random pairs; m by EM on each pass's pairs, leaving out the fields that pass
    blocks on (they agree by construction), pooled as soft counts across passes and smoothed
    towards the defaults; the prior from the expected number of matches among all candidates.
    """
    u = estimate_u(random_levels)
    u_log = [np.append(np.log(np.array(uc)), 0.0) for uc in u]
    pooled = [pseudo_matches * np.array(_default_m(len(c.levels))) for c in COMPARISONS]
    for sample in samples:
        if len(sample.levels) == 0:
            continue
        m_start = [np.array(_default_m(len(c.levels))) for c in COMPARISONS]
        counts = _em_pass(sample, u_log, m_start, iterations)
        for c in range(len(COMPARISONS)):
            pooled[c] = pooled[c] + counts[c]
    m = [list(p / p.sum()) for p in pooled]
    prior = _estimate_prior(samples, m, u, total_pairs)
    return MatchModel(m=m, u=u, prior=prior)


def _estimate_prior(samples: Sequence[PassSample], m: list[list[float]], u: list[list[float]],
                    total_pairs: float) -> float:
    """Expected matches among the distinct candidate pairs, over all pairs of contacts."""
    table = _weight_table(m, u)
    rows, weights = [], []
    for sample in samples:
        fresh = sample.levels[sample.first_seen]
        if len(fresh) == 0:
            continue
        rows.append(_log_bf(fresh, table, [True] * len(COMPARISONS)))
        distinct = sample.candidates * float(sample.first_seen.mean())
        weights.append(np.full(len(fresh), distinct / len(fresh)))
    if not rows or total_pairs <= 0:
        return 1e-4
    log_bf, w = np.concatenate(rows), np.concatenate(weights)
    share = 0.01
    for _ in range(100):
        p = _posterior(log_bf, share)
        new = float(np.clip((p * w).sum() / w.sum(), 1e-9, 0.999))
        if abs(new - share) < 1e-9:
            break
        share = new
    expected = share * float(w.sum())
    return float(np.clip(expected / total_pairs, 1e-12, 0.5))


# --- decisions and explanations -------------------------------------------------------------


class Decision(StrEnum):
    MERGE = "merge"  # probable enough and corroborated by a strong identifier
    FLAG = "flag"  # a person should look: a duplicate flag
    NONE = "none"


@dataclass(frozen=True)
class Thresholds:
    review: float = 0.9  # probability at or above which a duplicate flag is raised
    merge: float = 0.999  # and above which, with a shared strong identifier, a merge


@dataclass(frozen=True)
class MatchResult:
    a: int
    b: int
    decision: Decision
    weight: float
    probability: float
    reasons: list[str]
    strong_identifier: str | None

    @property
    def explanation(self) -> str:
        return "; ".join(self.reasons)

    def details(self) -> dict[str, Any]:
        return {"score": round(self.weight, 2), "probability": round(self.probability, 6),
                "reasons": self.reasons, "explanation": self.explanation,
                "decision": self.decision.value, "strong_identifier": self.strong_identifier}




def names_corroborate(levels: Levels) -> bool:
    """What a merge needs besides a shared identifier: both names agree (exactly, as a
    nickname, or within a small typo) and the dates of birth, when both are known, do not
    differ. A household sharing an email or phone ("Gregory / Venus Forgy") is never merged."""
    first, last, dob = levels[INDEX["first_name"]], levels[INDEX["last_name"]], levels[INDEX["dob"]]
    return first in (0, 1, 2) and last in (0, 1) and dob in (NULL, 0, 1)
TF_MIN_RECORDS = 1000  # below this, name frequencies are too noisy to adjust by


@dataclass(frozen=True)
class ValueFrequencies:
    """How many contacts carry each first name, surname and postcode: "Smith" = "Smith" is
    weaker evidence than "Wojciechowski" = "Wojciechowski" (term-frequency adjustment)."""

    counts: Mapping[str, Mapping[str, int]]  # "first_name" / "last_name" / "place" -> counts
    total: int


def _tf_value(r: MatchRecord, comparison: str) -> str:
    return r.first if comparison == "first_name" else r.last if comparison == "last_name" \
        else r.postcode


TF_COMPARISONS = ("first_name", "last_name")


def value_frequencies(records: Iterable[MatchRecord]) -> ValueFrequencies:
    counts: dict[str, dict[str, int]] = {name: {} for name in TF_COMPARISONS}
    total = 0
    for r in records:
        total += 1
        for name, table in counts.items():
            value = _tf_value(r, name)
            if value:
                table[value] = table.get(value, 0) + 1
    return ValueFrequencies(counts, total)


def match_weight(a: MatchRecord, levels: Levels, model: MatchModel,
                 frequencies: ValueFrequencies | None = None) -> float:
    """The pair's weight. An exact agreement on a name or postcode counts by how rare that
    value is: its u becomes the value's share of contacts instead of the average chance
    agreement (bounded to +-8 bits)."""
    weight = model.weight(levels)
    if frequencies is None or frequencies.total < TF_MIN_RECORDS:
        return weight
    for name in TF_COMPARISONS:
        c = INDEX[name]
        if levels[c] == 0:
            share = max(frequencies.counts[name].get(_tf_value(a, name), 0), 2) / \
                frequencies.total
            weight += max(-8.0, min(8.0, math.log2(model.u[c][0] / share)))
    return weight


def decide(a: MatchRecord, b: MatchRecord, levels: Levels, model: MatchModel,
           thresholds: Thresholds, frequencies: ValueFrequencies | None = None
           ) -> MatchResult | None:
    """Merge, flag or nothing for a compared pair; None when below the review threshold."""
    weight = match_weight(a, levels, model, frequencies)
    prob = probability(weight)
    if prob < thresholds.review:
        return None
    identifier = strong_identifier(a, b)
    decision = Decision.MERGE if prob >= thresholds.merge and identifier and \
        names_corroborate(levels) else Decision.FLAG
    return MatchResult(a.id, b.id, decision, weight, prob, explain(a, b, model), identifier)


def _title(text: str) -> str:
    return " ".join(t.capitalize() for t in text.split())


PHRASES: dict[str, tuple[str, ...]] = {
    "first_name": ("first name equal", "first name {a} ~ {b} (nickname)",
                   "first name {a} ~ {b} {sim:.2f}", "first name {a} ~ {b} {sim:.2f}",
                   "first name initial matches ({a} / {b})", "first names differ ({a} / {b})"),
    "last_name": ("surname equal", "surname {a} ~ {b} {sim:.2f}", "surname {a} ~ {b} {sim:.2f}",
                  "surname {a} is part of {b}", "surnames differ ({a} / {b})"),
    "email": ("same email {shared}", "same email local part {la}{domains}",
              "email local parts {la} ~ {lb} {sim:.2f}{domains}",
              "same company email domain {da}", "emails differ"),
    "phone": ("same phone", "phone numbers end alike (last 7 digits)", "phones differ"),
    "company": ("same company", "company {a} ~ {b} {sim:.2f}", "company {a} ~ {b} {sim:.2f}",
                "companies differ"),
    "street": ("same street address", "street address similar {sim:.2f}",
               "street address partly similar {sim:.2f}", "street addresses differ"),
    "line2": ("same address line 2", "address line 2 similar {sim:.2f}",
              "address lines 2 differ"),
    "place": ("same postcode and city", "same city, postcode {pa} ~ {pb}",
              "same postcode, cities differ", "same city, postcodes differ",
              "postcodes one character apart ({pa} / {pb})", "same region only",
              "different places"),
    "region": ("same region", "regions differ"),
    "country": ("same country", "countries differ"),
    "dob": ("same date of birth", "date of birth one digit apart", "dates of birth close",
            "dates of birth differ"),
}


def explain(a: MatchRecord, b: MatchRecord, model: MatchModel) -> list[str]:
    """Each field's finding in words, strongest evidence first: "surname equal", "first name
    Jon ~ John 0.93", "same postcode and city", "same email local part jon, email domains
    differ"."""
    details, swapped = compare_detailed(a, b)
    b_first, b_last = (b.last, b.first) if swapped else (b.first, b.last)
    names = {"first_name": (a.first, b_first), "last_name": (a.last, b_last),
             "company": (a.company, b.company)}
    shared = sorted(set(a.emails) & set(b.emails))
    found: list[tuple[float, str]] = []
    for c, (comp, (level, sim)) in enumerate(zip(COMPARISONS, details, strict=True)):
        if level == NULL:
            continue
        va, vb = names.get(comp.name, ("", ""))
        text = PHRASES[comp.name][level].format(
            a=_title(va), b=_title(vb), sim=sim, la=a.email_local, lb=b.email_local,
            da=a.email_domain, shared=shared[0] if shared else "", pa=a.postcode, pb=b.postcode,
            domains="" if a.email_domain == b.email_domain else ", email domains differ")
        found.append((model.weights[c][level], text))
    found.sort(key=lambda item: -abs(item[0]))
    return (["first and last names swapped"] if swapped else []) + [t for _, t in found]
