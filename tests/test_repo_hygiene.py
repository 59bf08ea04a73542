"""Nothing in the repository points outside it.

The design's facts live in docs/reference.md and the code cites its sections ("docs/reference.md
§2.4"). A citation of the notes files that only existed beside the repository (the old reference
notes by section number, a path into the `shared` folder next to the clone, the micro-world notes)
or a path on one developer's machine (under the workspace root) means nothing to a learner on a fresh clone, so
every file git tracks is checked for them.

This file is tracked too: its patterns and examples are spelled so that they do not match
themselves.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

OUTSIDE_POINTERS = {
    # The old notes file beside the repository, cited by section with or without its ".md".
    "a section of the old reference notes": re.compile(r"\bREFERENCE(?:\.md)?\s*§|\bREFERENCE\.md\b"),
    "a path into the shared folder beside the clone": re.compile(r"\.\./shared\b"),
    "the micro-world notes outside the repository": re.compile(r"MICRO_WORLD_NOTE[S]"),
    # An absolute path into a developer's workspace directory (not part of a URL or a longer path).
    "an absolute path under the workspace root": re.compile(r"(?<![\w.~/-])/wor[k]/"),
}


def _tracked_text_files() -> list[Path]:
    """Every file git tracks in this checkout (binary files, e.g. safetensors, left out)."""
    try:
        out = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError) as e:
        pytest.skip(f"not a git checkout ({e}): the tracked files cannot be listed")
    files = []
    for name in out.decode("utf-8").split("\0"):
        path = REPO / name
        if not name or not path.is_file():  # deleted in the work tree but not yet in the index
            continue
        if b"\0" in path.read_bytes()[:8192]:
            continue
        files.append(path)
    return files


@pytest.fixture(scope="module")
def tracked_files() -> list[Path]:
    files = _tracked_text_files()
    assert any(p.name == "reference.md" for p in files), "docs/reference.md is not tracked"
    return files


@pytest.mark.parametrize("what", sorted(OUTSIDE_POINTERS))
def test_no_tracked_file_points_outside_the_repository(tracked_files, what):
    pattern = OUTSIDE_POINTERS[what]
    hits = []
    for path in tracked_files:
        text = path.read_text(encoding="utf-8", errors="replace")
        for number, line in enumerate(text.splitlines(), start=1):
            if pattern.search(line):
                hits.append(f"{path.relative_to(REPO)}:{number}: {line.strip()[:160]}")
    assert not hits, (
        f"{len(hits)} line(s) with {what}; cite docs/reference.md's section instead, or a path inside the "
        "repository:\n" + "\n".join(hits)
    )


@pytest.mark.parametrize(
    ("text", "what"),
    [
        ("see REFERENCE" + " §2", "a section of the old reference notes"),
        ("(REFERENCE" + ".md §3)", "a section of the old reference notes"),
        ("notes in .." + "/shared/NOTES.md", "a path into the shared folder beside the clone"),
        ("MICRO_WORLD_" + "NOTES.md", "the micro-world notes outside the repository"),
        ('"argv": ["/' + 'work/main/.venv/bin/python"]', "an absolute path under the workspace root"),
        ("cd /" + "work/wt-x && make", "an absolute path under the workspace root"),
    ],
)
def test_the_patterns_catch_what_they_are_for(text, what):
    assert OUTSIDE_POINTERS[what].search(text)


@pytest.mark.parametrize(
    "text",
    ["docs/reference.md §2.4", "https://example.org/wo" + "rk/page", "~/wo" + "rk/clone", "runs/wo" + "rk/x", "network/wo" + "rk/"],
)
def test_the_patterns_leave_legitimate_text_alone(text):
    assert not any(pattern.search(text) for pattern in OUTSIDE_POINTERS.values())
