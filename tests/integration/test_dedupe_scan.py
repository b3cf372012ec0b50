"""`hub dedupe scan` on a real database: flags, reruns, dismissed pairs, resuming, the CLI."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import update

from hub.adapters.db import contacts, migrate
from hub.adapters.db.dedupe_store import FileCheckpoint, SqlDedupeStore
from hub.adapters.db.engine import make_engine
from hub.adapters.db.models import Contact, Flag
from hub.domain.golden import GoldenRecord
from hub.domain.identity import IdentityKey, IdentityKind
from hub.services.dedupe_scan import ScanConfig, run_scan

FIRST = ["Olivia", "Liam", "Emma", "Noah", "Ava", "Lucas", "Mia", "Ethan", "Zoe", "Oscar",
         "Ines", "Hugo", "Nora", "Felix", "Alma", "Ivan", "Lea", "Omar", "Rosa", "Theo"]
LAST = ["Abara", "Bianchi", "Castell", "Dubois", "Eriksen", "Fischer", "Garcia", "Horvat",
        "Ivanova", "Jansen", "Kowalski", "Lindqvist", "Moreau", "Novak", "Okafor", "Petrov",
        "Quinn", "Rossi", "Schmidt", "Tanaka", "Ueda", "Varga", "Weber", "Xu", "Yilmaz"]
STREETS = ["Oak Avenue", "Mill Lane", "Harbour Road", "Station Street", "Elm Court"]

# The pairs the scan must find (by seed index), and how it should decide them.
DUPLICATES = [
    ({"first_name": "Margaret", "last_name": "Wojciechowski", "email": "mw@example.com",
      "address.line1": "7 Wallaby Place", "address.postal_code": "2119",
      "address.city": "Cleveland"},
     {"first_name": "Peggy", "last_name": "Wojciechowski", "email": "mw@example.com",
      "address.line1": "7 Wallaby Pl", "address.postal_code": "2119",
      "address.city": "Cleveland"}, "merge"),
    ({"first_name": "Jon", "last_name": "Smyth", "email": "sky.runner@gmail.com",
      "address.line1": "12 High Street", "address.postal_code": "SW1A 1AA",
      "address.city": "London"},
     {"first_name": "John", "last_name": "Smyth", "email": "sky.runner@acme.com",
      "address.line1": "12 High St", "address.postal_code": "SW1A1AA",
      "address.city": "London"}, "flag"),
    ({"first_name": "Bill", "last_name": "Thorogood", "phone": "+14155550111",
      "company": "Northwind Traders Inc", "address.postal_code": "94107"},
     {"first_name": "Thorogood", "last_name": "William", "company": "Northwind Traders",
      "address.postal_code": "94107", "address.city": "San Francisco"}, "flag"),
]


def _people(rng: random.Random, n: int) -> list[dict[str, str]]:
    """Distinct people: no two share a name, an email, a phone or a street address."""
    names = rng.sample([(f, last) for f in FIRST for last in LAST], n)
    return [{"first_name": f, "last_name": last,
             "email": f"{f.lower()}.{last.lower()}{i}@example.org",
             "phone": f"+1646555{i:04d}",
             "address.line1": f"{i + 100} {rng.choice(STREETS)}",
             "address.postal_code": f"{10000 + i * 37}", "address.city": "Springfield"}
            for i, (f, last) in enumerate(names)]


def _seed(engine) -> dict[str, list[int]]:
    """Contacts saved the way the worker saves them (values and identities)."""
    rng = random.Random(11)
    rows = [v for a, b, _ in DUPLICATES for v in (a, b)] + _people(rng, 60)
    records = []
    for n, values in enumerate(rows, start=1):
        golden = GoldenRecord(id=-n, values=dict(values))
        for kind in ("email", "phone"):
            if values.get(kind):
                golden.link(IdentityKey(IdentityKind(kind), "", values[kind]))
        golden.link(IdentityKey(IdentityKind.EXTERNAL, "crm", f"c{n}"))
        records.append(golden)
    # one email can be an identity of one contact only: the second Wojciechowski keeps it as a
    # value (as after an identity clash)
    records[1].new_identities = [k for k in records[1].new_identities
                                 if k.kind is not IdentityKind.EMAIL]
    with engine.begin() as conn:
        ids = contacts.save(conn, records, [], datetime.now(UTC))
    stored = [ids[-n] for n in range(1, len(rows) + 1)]
    return {"pairs": [sorted(stored[2 * i: 2 * i + 2]) for i in range(len(DUPLICATES))],
            "all": stored}


@pytest.fixture
def engine(db_url):
    engine = make_engine(db_url)
    migrate.upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def seeded(engine):
    return _seed(engine)


def scan(engine, tmp_path: Path, **kwargs):
    config = ScanConfig(workers=kwargs.pop("workers", 1), chunk_pairs=kwargs.pop("chunk", 50))
    return run_scan(SqlDedupeStore(engine), FileCheckpoint(tmp_path / "scan.json"),
                    config=config, **kwargs)


def flagged(engine) -> dict[tuple[int, int], dict]:
    return {(f["contact_id"], f["other_contact_id"]): f
            for f in SqlDedupeStore(engine).duplicate_flags()}


def test_the_scan_flags_likely_duplicates_with_score_and_reasons(engine, seeded, tmp_path):
    report = scan(engine, tmp_path)
    assert report.complete and report.contacts == 66
    found = flagged(engine)
    assert set(found) == {tuple(p) for p in seeded["pairs"]}
    for (pair, (_, _, decision)) in zip(seeded["pairs"], DUPLICATES, strict=True):
        details = found[tuple(pair)]["details"]
        assert details["decision"] == decision
        assert 0.9 <= details["probability"] <= 1.0 and details["score"] > 0
        assert details["explanation"] == "; ".join(details["reasons"])
    jon = found[tuple(seeded["pairs"][1])]["details"]["reasons"]
    assert "same email local part sky.runner, email domains differ" in jon
    assert "first name Jon ~ John (nickname)" in jon
    bill = found[tuple(seeded["pairs"][2])]["details"]["reasons"]
    assert bill[0] == "first and last names swapped"
    assert report.would_merge == 1 and report.new_flags == 3
    assert "would merge" in found[tuple(seeded["pairs"][0])]["summary"]
    assert not (tmp_path / "scan.json").exists()  # a finished scan leaves no checkpoint


def test_a_rerun_adds_no_flag_and_a_dismissed_pair_is_never_raised_again(engine, seeded,
                                                                         tmp_path):
    scan(engine, tmp_path)
    before = flagged(engine)
    jon = tuple(seeded["pairs"][1])
    with engine.begin() as conn:
        conn.execute(update(Flag).where(Flag.id == before[jon]["id"])
                     .values(status="dismissed"))
    again = scan(engine, tmp_path)
    assert again.new_flags == 0 and again.dismissed_skipped == 1
    after = flagged(engine)
    assert set(after) == set(before)
    assert after[jon]["status"] == "dismissed"


def test_an_interrupted_scan_resumes_where_it_stopped(engine, seeded, tmp_path):
    first = scan(engine, tmp_path, limit_pairs=20, chunk=5)
    assert not first.complete and 20 <= first.pairs_compared < 200
    assert (tmp_path / "scan.json").exists()
    resumed = scan(engine, tmp_path, resume=True, chunk=5)
    assert resumed.complete and resumed.resumed
    assert set(flagged(engine)) == {tuple(p) for p in seeded["pairs"]}
    full = scan(engine, tmp_path / "again")
    assert resumed.pairs_compared == full.pairs_compared  # nothing compared twice or skipped


def test_merged_contacts_are_left_out(engine, seeded, tmp_path):
    winner, loser = seeded["pairs"][1]
    with engine.begin() as conn:
        conn.execute(update(Contact).where(Contact.id == loser).values(merged_into=winner))
    report = scan(engine, tmp_path)
    assert report.contacts == 65
    assert (winner, loser) not in flagged(engine)


def test_worker_processes_find_the_same_pairs(engine, seeded, tmp_path):
    report = scan(engine, tmp_path, workers=2)
    assert report.complete
    assert set(flagged(engine)) == {tuple(p) for p in seeded["pairs"]}


def test_the_command_shows_progress_on_stderr_and_a_summary(engine, seeded, tmp_path, db_url,
                                                          monkeypatch):
    from hub.cli import cli

    monkeypatch.setenv("HUB_DATABASE_URL", db_url)
    monkeypatch.setenv("HUB_VAR_DIR", str(tmp_path / "var"))
    result = CliRunner().invoke(cli, ["dedupe", "scan"])
    assert result.exit_code == 0, result.output
    assert "scan complete: 66 contacts" in result.stdout
    assert "3 likely duplicates (1 the rules would merge), 3 new flags" in result.stdout
    assert "comparing" in result.stderr
    stopped = CliRunner().invoke(cli, ["dedupe", "scan", "--limit-pairs", "1"])
    assert "stopped early; run `hub dedupe scan --resume`" in stopped.stdout
    resumed = CliRunner().invoke(cli, ["dedupe", "scan", "--resume"])
    assert "scan complete (resumed)" in resumed.stdout and "0 new flags" in resumed.stdout


def test_scan_workers_die_of_sigterm_whatever_handler_their_parent_has() -> None:
    """Pool.terminate sends SIGTERM; a worker that inherited an RQ-style handler ignored it
    and the scan hung (seen once in the suite)."""
    import multiprocessing
    import signal

    from hub.services.dedupe_scan import _default_signals

    previous = signal.signal(signal.SIGTERM, lambda *_: None)
    try:
        with multiprocessing.get_context("fork").Pool(1, initializer=_default_signals) as pool:
            assert pool.apply(signal.getsignal, (signal.SIGTERM,)) == signal.SIG_DFL
    finally:
        signal.signal(signal.SIGTERM, previous)
