"""What must hold after any fault: every document settled, its log a legal path, one output per
stage, and the stored bytes matching the recorded checksum."""

from __future__ import annotations

import hashlib
from collections import Counter
from itertools import pairwise

from tests.faults.conftest import Rig

SETTLED = {"review", "finalised", "rejected", "failed"}
LEGAL = {
    ("uploaded", "uploaded"),
    ("uploaded", "processing"),
    ("processing", "processing"),
    ("processing", "review"),
    ("processing", "failed"),
    ("processing", "rejected"),
    ("uploaded", "failed"),
    ("uploaded", "rejected"),
    ("review", "review"),
    ("review", "finalised"),
    ("review", "rejected"),
    ("review", "processing"),
    ("failed", "processing"),
    ("rejected", "processing"),
    ("failed", "failed"),
}


def check(rig: Rig) -> dict[str, str]:
    """Returns {document id: status}; fails the test on any broken invariant."""
    docs = rig.sql("select id, status, sha256 from documents")
    statuses = {str(d[0]): str(d[1]) for d in docs}
    stuck = {k: v for k, v in statuses.items() if v not in SETTLED}
    assert not stuck, f"documents left unsettled: {stuck}"
    for doc_id, status, sha in docs:
        log = rig.sql(
            "select type, status, stage from document_events where document_id = %s order by id",
            doc_id,
        )
        path = [row[1] for row in log]
        assert path[0] == "uploaded"
        for a, b in pairwise(path):
            assert (a, b) in LEGAL, f"{doc_id}: illegal step {a} -> {b} in {path}"
        assert path[-1] == status
        if status == "review":
            done = Counter(row[2] for row in log if row[0] == "stage.completed")
            assert set(done.values()) == {1}, f"{doc_id}: stage output not exactly once: {done}"
            assert set(done) == {"validate", "extract", "analyze", "categorize"}
            texts = rig.sql("select count(*) from document_texts where document_id = %s", doc_id)
            assert texts[0][0] == 1
        chunks = rig.sql(
            "select data from document_blobs where document_id = %s order by seq", doc_id
        )
        digest = hashlib.sha256(b"".join(bytes(c[0]) for c in chunks)).hexdigest()
        assert digest == sha, f"{doc_id}: stored bytes do not match the recorded checksum"
    return statuses
