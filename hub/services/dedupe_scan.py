"""The bulk duplicate scan (`hub dedupe scan`): compare all contacts, flag the likely duplicates.

1. Load: contacts are streamed in pages and each is kept only as a compact MatchRecord (the
   compared fields, normalised and interned) plus its blocking keys: memory grows with the
   number of contacts by a few hundred bytes each, never by their full records.
2. Learn: u from random pairs, m by EM on a sample of each pass's candidate pairs, the prior
   from the expected number of matches (hub.domain.matching.fit_model). The model is written
   into the checkpoint, so a resumed scan scores with the same weights.
3. Compare: pass by pass, block by block in key order; a pair already compared by an earlier
   pass is skipped. Pairs above the review threshold become `duplicate` flags, keyed by the
   pair, so a rerun adds nothing and a pair an admin dismissed is never raised again. Pairs
   that the rules would merge are flagged with details.decision = "merge" and counted: merging
   itself belongs to the merge service.
4. Every chunk of flags is committed, then the checkpoint records the pass and the last block
   key done; `--resume` reloads the contacts and continues after that key.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import random
import resource
import signal
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import numpy as np

from hub.domain.flags import FlagKind, NewFlag
from hub.domain.matching import (
    COMPARISONS,
    PASSES,
    Decision,
    Keys,
    MatchModel,
    MatchRecord,
    MatchResult,
    PassSample,
    Thresholds,
    ValueFrequencies,
    block_pair_count,
    block_pairs,
    blocking_keys,
    compare,
    covered_earlier,
    decide,
    fit_model,
    match_record,
    value_frequencies,
)

CHECKPOINT_VERSION = 1
ContactRow = tuple[int, dict[str, Any], list[tuple[str, str, str]]]


class DedupeStore(Protocol):
    def snapshot(self) -> tuple[int, int]: ...
    def pages(self, upto: int, page_size: int) -> Iterator[list[ContactRow]]: ...
    def dismissed_pairs(self) -> set[tuple[int, int]]: ...
    def write_flags(self, flags: list[NewFlag]) -> int: ...


class Checkpoint(Protocol):
    def load(self) -> dict[str, Any] | None: ...
    def save(self, state: dict[str, Any]) -> None: ...
    def clear(self) -> None: ...


class Progress(Protocol):
    def phase(self, name: str, total: int) -> None: ...
    def advance(self, amount: int) -> None: ...


class NoProgress:
    def phase(self, name: str, total: int) -> None:
        pass

    def advance(self, amount: int) -> None:
        pass


@dataclass(frozen=True)
class ScanConfig:
    page_size: int = 5000  # contacts read per query
    max_block: int = 40  # larger blocks are compared by sorted neighbourhood ...
    window: int = 10  # ... each member against the next `window` ones
    random_pairs: int = 200_000  # pairs sampled for u
    sample_per_pass: int = 40_000  # candidate pairs sampled per pass for EM
    chunk_pairs: int = 100_000  # candidate pairs between two commits and checkpoints
    workers: int = 0  # processes comparing; 0: one per core
    thresholds: Thresholds = field(default_factory=Thresholds)
    seed: int = 20261123


@dataclass
class ScanReport:
    contacts: int = 0
    pairs_compared: int = 0
    flagged: int = 0  # pairs at or above the review threshold (incl. would-merge ones)
    would_merge: int = 0
    new_flags: int = 0
    dismissed_skipped: int = 0
    complete: bool = False
    resumed: bool = False
    seconds: float = 0.0
    peak_rss_mib: float = 0.0
    prior: float = 0.0


@dataclass
class _Index:
    records: list[MatchRecord]
    keys: list[Keys]
    oversize: list[frozenset[str]]
    frequencies: ValueFrequencies | None = None
    blocks: list[list[tuple[str, list[int]]]] = field(default_factory=list)


def run_scan(store: DedupeStore, checkpoint: Checkpoint, *, config: ScanConfig | None = None,
             resume: bool = False, limit_pairs: int | None = None,
             progress: Progress | None = None) -> ScanReport:
    """Scan all contacts (or continue the interrupted scan); see the module docstring."""
    config, progress = config or ScanConfig(), progress or NoProgress()
    started = time.monotonic()
    state = checkpoint.load() if resume else None
    if state is not None and state.get("version") != CHECKPOINT_VERSION:
        state = None
    report = ScanReport(**state["report"]) if state else ScanReport()
    report.resumed = state is not None
    upto, count = (state["upto"], state["contacts"]) if state else store.snapshot()
    index = _load(store, upto, count, config, progress)
    report.contacts = len(index.records)
    if state is None:
        model = _learn(index, config, progress)
        state = {"version": CHECKPOINT_VERSION, "upto": upto, "contacts": count,
                 "model": model.to_dict(), "pass": 0, "after_key": None}
        checkpoint.save(dict(state, report=asdict(report)))
    model = MatchModel.from_dict(state["model"])
    report.prior = model.prior
    finished = _compare_all(index, model, state, store, checkpoint, report, config,
                            limit_pairs, progress)
    report.complete = finished
    report.seconds = round(time.monotonic() - started + (report.seconds if resume else 0), 1)
    report.peak_rss_mib = round(max(resource.getrusage(who).ru_maxrss for who in (
        resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)) / 1024, 1)  # the largest process
    if finished:
        checkpoint.clear()
    else:
        checkpoint.save(dict(state, report=asdict(report)))
    return report


def _load(store: DedupeStore, upto: int, count: int, config: ScanConfig,
          progress: Progress) -> _Index:
    progress.phase("loading contacts", count)
    records: list[MatchRecord] = []
    keys: list[Keys] = []
    gc.disable()  # millions of long-lived tuples: collecting while they pile up costs a third
    try:
        for page in store.pages(upto, config.page_size):
            for contact_id, values, identities in page:
                record = match_record(contact_id, values, identities)
                records.append(record)
                keys.append(blocking_keys(record))
            progress.advance(len(page))
    finally:
        gc.enable()
    index = _Index(records, keys, [], value_frequencies(records))
    for k in range(len(PASSES)):
        index.blocks.append(_blocks(index.keys, k))
        index.oversize.append(frozenset(key for key, members in index.blocks[k]
                                        if len(members) > config.max_block))
    return index


def _blocks(keys: Sequence[Keys], k: int) -> list[tuple[str, list[int]]]:
    """The blocks of pass k with two members or more, in key order (positions in id order)."""
    groups: dict[str, list[int]] = {}
    for position, record_keys in enumerate(keys):
        for key in record_keys[k]:
            groups.setdefault(key, []).append(position)
    return sorted((key, members) for key, members in groups.items() if len(members) > 1)


def _learn(index: _Index, config: ScanConfig, progress: Progress) -> MatchModel:
    rng = random.Random(config.seed)
    n = len(index.records)
    total_pairs = n * (n - 1) / 2
    progress.phase("learning weights", len(PASSES) + 1)
    random_levels = _levels(index.records, _random_pairs(rng, n, config.random_pairs))
    progress.advance(1)
    samples = []
    for k, name in enumerate(PASSES):
        pairs, candidates = _sample_pass(rng, index, k, config)
        first_seen = np.array([not covered_earlier(index.keys[i], index.keys[j], k, key,
                                                   index.oversize) for key, i, j in pairs],
                              dtype=bool)
        samples.append(PassSample(name, _levels(index.records, [(i, j) for _, i, j in pairs]),
                                  first_seen, candidates))
        progress.advance(1)
    return fit_model(samples, random_levels, total_pairs)


def _levels(records: Sequence[MatchRecord], pairs: Sequence[tuple[int, int]]
            ) -> np.ndarray[Any, np.dtype[np.int8]]:
    rows = [compare(records[i], records[j]) for i, j in pairs]
    return np.array(rows, dtype=np.int8).reshape(len(rows), len(COMPARISONS))


def _random_pairs(rng: random.Random, n: int, wanted: int) -> list[tuple[int, int]]:
    if n < 2:
        return []
    if n * (n - 1) // 2 <= wanted:
        return [(i, j) for i in range(n - 1) for j in range(i + 1, n)]
    pairs: list[tuple[int, int]] = []
    while len(pairs) < wanted:
        i, j = rng.randrange(n), rng.randrange(n)
        if i != j:
            pairs.append((i, j))
    return pairs


def _sample_pass(rng: random.Random, index: _Index, k: int, config: ScanConfig
                 ) -> tuple[list[tuple[str, int, int]], int]:
    """Up to sample_per_pass candidate pairs of pass k, uniformly, with their block's key;
    and how many candidate pairs the pass has."""
    blocks = index.blocks[k]
    counts = [block_pair_count(len(m), config.max_block, config.window) for _, m in blocks]
    candidates = sum(counts)
    if candidates <= config.sample_per_pass:
        pairs = [(key, i, j) for key, members in blocks
                 for i, j in block_pairs(members, index.records, config.max_block,
                                         config.window)]
        return pairs, candidates
    chosen = rng.choices(range(len(blocks)), weights=counts, k=config.sample_per_pass)
    pairs = []
    for b in chosen:
        key, members = blocks[b]
        if len(members) <= config.max_block:
            i, j = rng.sample(members, 2)
        else:
            start = rng.randrange(len(members) - 1)
            i, j = members[start], members[min(len(members) - 1, start + rng.randint(1,
                                                                                     config.window))]
        pairs.append((key, i, j))
    return pairs, candidates


Chunk = tuple[int, int, int, int]  # pass, first block, end block, candidate pairs


def _plan(index: _Index, state: dict[str, Any], config: ScanConfig, limit_pairs: int | None
          ) -> tuple[list[Chunk], int, int]:
    """Consecutive blocks in chunks of about chunk_pairs candidate pairs, from the checkpoint
    on; with the total and the already-done candidate counts for the progress bar."""
    target = min(config.chunk_pairs, limit_pairs or config.chunk_pairs)
    chunks: list[Chunk] = []
    total = done = 0
    for k, blocks in enumerate(index.blocks):
        start, size = None, 0
        for b, (key, members) in enumerate(blocks):
            pairs = block_pair_count(len(members), config.max_block, config.window)
            total += pairs
            if k < state["pass"] or (k == state["pass"] and state["after_key"] is not None
                                     and key <= state["after_key"]):
                done += pairs
                continue
            start = b if start is None else start
            size += pairs
            if size >= target:
                chunks.append((k, start, b + 1, size))
                start, size = None, 0
        if start is not None:
            chunks.append((k, start, len(blocks), size))
    return chunks, total, done


_WORK: tuple[_Index, MatchModel, ScanConfig] | None = None  # what forked workers compare


def _run_chunk(chunk: Chunk) -> tuple[int, list[MatchResult]]:
    assert _WORK is not None
    index, model, config = _WORK
    k, start, end, _ = chunk
    results: list[MatchResult] = []
    compared = 0
    for key, members in index.blocks[k][start:end]:
        compared += _compare_block(index, k, key, members, model, config, results)
    return compared, results


@contextmanager
def _executor(index: _Index, model: MatchModel, config: ScanConfig
              ) -> Iterator[Callable[[list[Chunk]], Iterator[tuple[int, list[MatchResult]]]]]:
    """Chunks compared in order, by forked worker processes that share the loaded contacts
    (copy-on-write) when there are several cores, else in this process."""
    global _WORK
    _WORK = (index, model, config)
    workers = config.workers or os.cpu_count() or 1
    gc.freeze()  # the loaded contacts live to the end: keep them out of every collection
    try:
        if workers < 2 or "fork" not in multiprocessing.get_all_start_methods():
            yield lambda chunks: map(_run_chunk, chunks)
            return
        context = multiprocessing.get_context("fork")
        with context.Pool(workers, initializer=_default_signals) as pool:  # exit: SIGTERM
            yield lambda chunks: pool.imap(_run_chunk, chunks)
    finally:
        _WORK = None
        gc.unfreeze()


def _default_signals() -> None:
    """A forked worker must die of SIGTERM: it would otherwise inherit whatever handler the
    parent installed (an RQ worker's asks for a warm shutdown), and Pool.terminate would wait
    for it forever (seen in the test suite)."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _compare_all(index: _Index, model: MatchModel, state: dict[str, Any], store: DedupeStore,
                 checkpoint: Checkpoint, report: ScanReport, config: ScanConfig,
                 limit_pairs: int | None, progress: Progress) -> bool:
    """Compare chunk by chunk from the checkpoint on, committing the flags and the checkpoint
    after each; False if stopped by limit_pairs (the checkpoint then says where)."""
    dismissed = store.dismissed_pairs()
    chunks, total, done = _plan(index, state, config, limit_pairs)
    progress.phase("comparing", total)
    progress.advance(done)
    budget, seen = limit_pairs, set[tuple[int, int]]()
    with _executor(index, model, config) as run:
        for n, ((k, _, end, pairs), (compared, results)) in enumerate(
                zip(chunks, run(chunks), strict=True)):
            report.pairs_compared += compared
            fresh = []
            for r in results:
                pair = (min(r.a, r.b), max(r.a, r.b))
                if pair in dismissed:
                    report.dismissed_skipped += 1
                elif pair not in seen:  # oversize blocks may meet a pair twice
                    seen.add(pair)
                    fresh.append(r)
            last = end == len(index.blocks[k])
            state["pass"], state["after_key"] = (k + 1, None) if last else \
                (k, index.blocks[k][end - 1][0])
            _commit(store, checkpoint, state, report, fresh)
            progress.advance(pairs)
            if budget is not None:
                budget -= compared
                if budget <= 0 and n < len(chunks) - 1:
                    return False
    state["pass"], state["after_key"] = len(PASSES), None
    return True


def _compare_block(index: _Index, k: int, key: str, members: list[int], model: MatchModel,
                   config: ScanConfig, results: list[MatchResult]) -> int:
    records, keys, oversize = index.records, index.keys, index.oversize
    compared = 0
    for i, j in block_pairs(members, records, config.max_block, config.window):
        if covered_earlier(keys[i], keys[j], k, key, oversize):
            continue
        compared += 1
        a, b = records[i], records[j]
        result = decide(a, b, compare(a, b), model, config.thresholds, index.frequencies)
        if result is not None:
            results.append(result)
    return compared


def _commit(store: DedupeStore, checkpoint: Checkpoint, state: dict[str, Any],
            report: ScanReport, pending: list[MatchResult]) -> None:
    report.flagged += len(pending)
    report.would_merge += sum(1 for r in pending if r.decision is Decision.MERGE)
    report.new_flags += store.write_flags([duplicate_flag(r) for r in pending])
    checkpoint.save(dict(state, report=asdict(report)))


def duplicate_flag(result: MatchResult) -> NewFlag:
    """The flag an admin reviews: the pair, its score and why, in words."""
    a, b = sorted((result.a, result.b))
    head = ("Same person: the rules would merge these contacts"
            if result.decision is Decision.MERGE else "Possible duplicate")
    because = "; ".join(result.reasons[:4])
    return NewFlag(kind=FlagKind.DUPLICATE, contact_id=a, other_contact_id=b,
                   summary=f"{head} (probability {result.probability:.3f}): {because}",
                   details=result.details())

