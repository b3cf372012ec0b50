"""The fake vendors' records: millions of them without holding millions in memory.

Seeded records are a pure function of their position (person n of the seed); only what a test
or a push changes or adds is stored. Lists are served in the vendor's own order from position
arithmetic and a sorted list of the changed records, so a page costs the same at 10 k and 1 M.
People overlap between tools: person n has the same address everywhere
(person{n}@example.com), as the same customer would in a real shop and CRM.
"""

from __future__ import annotations

import bisect
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


def iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, tz=UTC).isoformat(timespec="milliseconds") \
        .replace("+00:00", "Z")


FIRST_NAMES = ("James", "Mary", "Ana", "José", "Wei", "Fatima", "Olusegun", "Ingrid", "Priya",
               "Liam", "Sofia", "Noah", "Chloé", "Mateo", "Aiko", "Kwame", "Zoë", "Lukas",
               "Mohammed", "Elena", "Jean-Luc", "Mary Ann", "Siobhán", "Björn", "Ximena",
               "Dmitri", "Grace", "Omar", "Hannah", "Diego", "Yuki", "Amara", "Tomás", "Leila",
               "Oliver", "Isabella", "Ethan", "Nia", "Lars", "Mei")
LAST_NAMES = ("Smith", "García", "Müller", "Okafor", "Nguyen", "Khan", "Rossi", "Kowalski",
              "O'Brien", "van der Berg", "Johnson", "Silva", "Tanaka", "Dubois", "Novak",
              "Ivanova", "Mensah", "Larsen", "Costa", "Chen", "Fischer", "Patel", "Haddad",
              "Murphy", "De la Cruz", "Andersson", "Walker", "Moreau", "Jovanović", "Brown",
              "Schmidt", "Ali", "Kim", "Lopez", "Wright", "Sato", "Hughes", "Bianchi",
              "Jones Jr.", "Taylor")


def person(n: int) -> dict[str, str]:
    """Person n: names from lists (a mix of plain and harder ones, as real data has), an
    address that is theirs alone."""
    first = FIRST_NAMES[n % len(FIRST_NAMES)]
    last = LAST_NAMES[(n // len(FIRST_NAMES)) % len(LAST_NAMES)]
    return {"email": f"person{n}@example.com", "first": first, "last": last,
            "city": ("Springfield", "Portland", "Austin", "Denver")[n % 4],
            "line1": f"{n} Main Street", "zip": f"{10000 + n % 90000}"}


@dataclass
class StripeCustomers:
    """Stripe's customer list: newest first (created desc, id desc), `starting_after` an id,
    `created[gte]` inclusive. Seeded customer i was created at base + i."""

    seeded: int = 0
    first_person: int = 0
    base: int = 1_700_000_000
    changed: dict[str, dict[str, Any]] = field(default_factory=dict)
    _extra_keys: list[tuple[int, str]] = field(default_factory=list)  # ascending
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _created: int = 0

    def seeded_id(self, i: int) -> str:
        return f"cus_{i:08d}"

    def _seeded(self, i: int) -> dict[str, Any]:
        p = person(self.first_person + i)
        return {"id": self.seeded_id(i), "object": "customer", "created": self.base + i,
                "email": p["email"], "name": f"{p['first']} {p['last']}", "phone": None,
                "address": {"line1": p["line1"], "line2": None, "city": p["city"],
                            "state": None, "postal_code": p["zip"], "country": "US"},
                "currency": "usd", "livemode": False, "metadata": {}}

    def get(self, customer_id: str) -> dict[str, Any] | None:
        if customer_id in self.changed:
            return self.changed[customer_id]
        if customer_id.startswith("cus_") and customer_id[4:].isdigit():
            i = int(customer_id[4:])
            if 0 <= i < self.seeded:
                return self._seeded(i)
        return None

    def put(self, customer: dict[str, Any]) -> dict[str, Any]:
        """Store a changed or added customer (tests add ones webhooks never announced)."""
        with self._lock:
            key = (int(customer["created"]), customer["id"])
            if customer["id"] not in self.changed:  # a changed seeded one moves to the list
                bisect.insort(self._extra_keys, key)
            self.changed[customer["id"]] = customer
        return customer

    def create(self, fields: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            self._created += 1
            number = self._created
        customer = {"id": f"cus_new{number:08d}", "object": "customer",
                    "created": int(time.time()), "livemode": False, "metadata": {}, **fields}
        return self.put(customer)

    def page(self, limit: int, starting_after: str | None, created_gte: int | None
             ) -> tuple[list[dict[str, Any]], bool]:
        """One page in Stripe's order, and whether more follow."""
        if starting_after:
            current = self.get(starting_after)
            bound = (int(current["created"]), starting_after) if current else (2**62, "")
        else:
            bound = (2**62, "")
        floor = created_gte if created_gte is not None else -(2**62)
        out: list[dict[str, Any]] = []
        extras = self._extras_below(bound, floor)
        i = min(self.seeded - 1, bound[0] - self.base)
        if i >= 0 and self._seeded_key(i) >= bound:
            i -= 1
        while len(out) < limit + 1:
            seeded = self._seeded_key(i) if i >= 0 and self.base + i >= floor else None
            extra = extras[-1] if extras else None
            if seeded is None and extra is None:
                break
            if extra is None or (seeded is not None and seeded > extra):
                if self.seeded_id(i) not in self.changed:
                    out.append(self._seeded(i))
                i -= 1
            else:
                extras.pop()
                out.append(self.changed[extra[1]])
        return out[:limit], len(out) > limit

    def _seeded_key(self, i: int) -> tuple[int, str]:
        return (self.base + i, self.seeded_id(i))

    def _extras_below(self, bound: tuple[int, str], floor: int) -> list[tuple[int, str]]:
        with self._lock:
            start = bisect.bisect_left(self._extra_keys, (floor, ""))
            end = bisect.bisect_left(self._extra_keys, bound)
            return self._extra_keys[start:end]


@dataclass
class HubSpotContacts:
    """HubSpot's contacts search sorted by lastmodifieddate ascending (ties by id), `after` an
    offset, GTE filter inclusive; seeded contact j was modified at base + j seconds."""

    seeded: int = 0
    first_person: int = 0
    base_ms: int = 1_700_000_000_000
    changed: dict[str, dict[str, Any]] = field(default_factory=dict)
    by_email: dict[str, str] = field(default_factory=dict)
    _keys: list[tuple[int, str]] = field(default_factory=list)  # changed/added, ascending
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _created: int = 0

    def _seeded(self, j: int) -> dict[str, Any]:
        p = person(self.first_person + j)
        modified = iso((self.base_ms + j * 1000) / 1000)
        return {"id": str(j + 1), "properties": {
            "email": p["email"], "firstname": p["first"], "lastname": p["last"],
            "city": p["city"], "zip": p["zip"], "country": "United States",
            "lastmodifieddate": modified, "createdate": modified, "hs_object_id": str(j + 1)},
            "createdAt": modified, "updatedAt": modified, "archived": False}

    def get(self, contact_id: str) -> dict[str, Any] | None:
        if contact_id in self.changed:
            return self.changed[contact_id]
        if contact_id.isdigit() and 1 <= int(contact_id) <= self.seeded:
            return self._seeded(int(contact_id) - 1)
        return None

    def find_email(self, email: str) -> str | None:
        if email in self.by_email:
            return self.by_email[email]
        if email.startswith("person") and email.endswith("@example.com"):
            number = email[6:-12]
            if number.isdigit():
                j = int(number) - self.first_person
                if 0 <= j < self.seeded and str(j + 1) not in self.changed:
                    return str(j + 1)
        return None

    def put(self, contact: dict[str, Any], modified_ms: int | None = None) -> dict[str, Any]:
        modified_ms = modified_ms if modified_ms is not None else int(time.time() * 1000)
        stamp = iso(modified_ms / 1000)
        contact = {**contact, "updatedAt": stamp,
                   "properties": {**contact.get("properties", {}), "lastmodifieddate": stamp}}
        with self._lock:
            old = self.changed.get(contact["id"])
            if old is not None:
                self._keys.remove((_ms(old), contact["id"]))
            bisect.insort(self._keys, (modified_ms, contact["id"]))
            self.changed[contact["id"]] = contact
            email = contact["properties"].get("email")
            if email:
                self.by_email[email] = contact["id"]
        return contact

    def upsert(self, email: str, properties: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        existing_id = self.find_email(email)
        current = self.get(existing_id) if existing_id else None
        if current is None:
            with self._lock:
                self._created += 1
                number = self._created
            stamp = iso(time.time())
            current = {"id": str(1_000_000_000 + number), "properties": {"createdate": stamp},
                       "createdAt": stamp, "archived": False}
        merged = {**current, "properties": {**current["properties"], **properties}}
        return self.put(merged), existing_id is None

    def search(self, after: int, limit: int, modified_gte: int | None
               ) -> tuple[list[dict[str, Any]], int]:
        """(results, total) for the filtered, sorted sequence from offset `after`."""
        floor = modified_gte if modified_gte is not None else -(2**62)
        j0 = max(0, -(-(floor - self.base_ms) // 1000))
        with self._lock:
            keys = [k for k in self._keys if k[0] >= floor]
        changed_seeded = sorted(int(i) - 1 for i in self.changed if i.isdigit() and
                                int(i) <= self.seeded)
        hidden = len(changed_seeded) - bisect.bisect_left(changed_seeded, j0)
        seeded_count = max(0, self.seeded - j0 - hidden)
        total = seeded_count + len(keys)
        last_seeded = self.base_ms + (self.seeded - 1) * 1000
        if not keys or keys[0] > (last_seeded, "~"):  # changed ones all come after
            return self._concat(after, limit, j0, changed_seeded, seeded_count, keys), total
        return self._merged(after, limit, j0, keys), total

    def _concat(self, after: int, limit: int, j0: int, hidden: list[int], seeded_count: int,
                keys: list[tuple[int, str]]) -> list[dict[str, Any]]:
        out = []
        position = after
        while len(out) < limit and position < seeded_count + len(keys):
            if position < seeded_count:
                out.append(self._seeded(_nth_visible(j0, position, hidden)))
            else:
                out.append(self.changed[keys[position - seeded_count][1]])
            position += 1
        return out

    def _merged(self, after: int, limit: int, j0: int, keys: list[tuple[int, str]]
                ) -> list[dict[str, Any]]:
        """The general case (tests that plant contacts among the seeded ones): walk it."""
        out, position, j, k = [], 0, j0, 0
        while len(out) < limit:
            while j < self.seeded and str(j + 1) in self.changed:
                j += 1
            seeded = (self.base_ms + j * 1000, str(j + 1)) if j < self.seeded else None
            extra = keys[k] if k < len(keys) else None
            if seeded is None and extra is None:
                break
            take_seeded = extra is None or (seeded is not None and seeded <= extra)
            if position >= after:
                out.append(self._seeded(j) if take_seeded else self.changed[extra[1]])
            if take_seeded:
                j += 1
            else:
                k += 1
            position += 1
        return out


def _nth_visible(j0: int, position: int, hidden: list[int]) -> int:
    """The seeded index at `position` among j >= j0, skipping the (sorted) hidden ones."""
    j = j0 + position
    while True:
        skipped = bisect.bisect_right(hidden, j) - bisect.bisect_left(hidden, j0)
        candidate = j0 + position + skipped
        if candidate == j:
            return j
        j = candidate


def _ms(contact: dict[str, Any]) -> int:
    stamp = contact["properties"]["lastmodifieddate"]
    return int(datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() * 1000)


@dataclass
class SimpleList:
    """A small in-memory collection (Mailchimp members, ActiveCampaign contacts), sorted by
    its change time; enough for tests, not meant for benchmarks."""

    items: dict[str, dict[str, Any]] = field(default_factory=dict)
    changed_key: str = "last_changed"

    def put(self, key: str, item: dict[str, Any]) -> dict[str, Any]:
        self.items[key] = item
        return item

    def page(self, offset: int, count: int, since: str | None) -> tuple[list[dict[str, Any]],
                                                                         int]:
        rows = sorted(self.items.values(), key=lambda r: (str(r.get(self.changed_key)),
                                                          str(r.get("id"))))
        if since:
            rows = [r for r in rows if str(r.get(self.changed_key)) >= since]
        return rows[offset:offset + count], len(rows)
