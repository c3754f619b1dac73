"""The README's walk-through ("Your first value, step by step") runs as written: its shell
blocks are taken from the Markdown and run with bash against a live demo server on a port
other than the default, so the README cannot drift from the service."""

import json
import re
import shutil
import subprocess

import pytest

from exante.tests.conftest import ROOT

SECTION = "## Your first value, step by step"

#: One line of output per printed answer, in the README's order: organizations; create,
#: duplicate, list, patch, read back; with the key: create, duplicate, list, patch; clean-up.
EXPECTED_STATUSES = [200, 201, 409, 200, 200, 200, 201, 409, 200, 200, 200, 200, 200]


def walkthrough_script() -> str:
    text = (ROOT / "README.md").read_text()
    start = text.index(SECTION)
    end = text.find("\n## ", start + len(SECTION))
    blocks = re.findall(r"^```sh\n(.*?)^```", text[start : end if end > 0 else None], re.M | re.S)
    assert len(blocks) == 8, "the walk-through has eight shell blocks, one per step"
    return "\n".join(blocks)


def run_walkthrough(server) -> list[dict]:
    env = {**server.env, "PORT": str(server.port)}
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", walkthrough_script()],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


@pytest.mark.skipif(shutil.which("curl") is None, reason="the README's examples use curl")
def test_readme_walkthrough_runs_on_a_fresh_demo_server(demo_server):
    # Twice: the clean-up step leaves the database as it found it, so a reader can start over.
    for _ in range(2):
        answers = run_walkthrough(demo_server)
        assert [answer["status_code"] for answer in answers] == EXPECTED_STATUSES

        organizations, created, duplicate, listed, patched, read_back = answers[:6]
        assert organizations["data"]["items"][0]["name"] == "Demo Receivables Inc."
        value_uid = created["data"]["uid"]
        assert created["data"]["metric_date"] == "2024-06-30"
        assert duplicate["code"] == "duplicate_value"
        assert duplicate["data"] == {"uid": value_uid}
        assert [item["uid"] for item in listed["data"]["items"]] == [value_uid]
        assert patched["data"]["value"] == 36000000
        assert read_back["data"]["value"] == 36000000

        key_created, key_duplicate, key_listed, key_patched = answers[6:10]
        key_value_uid = key_created["data"]["uid"]
        assert key_duplicate["data"] == {"uid": key_value_uid}
        assert [item["uid"] for item in key_listed["data"]["items"]] == [value_uid, key_value_uid]
        assert key_patched["data"]["value"] == 34600000
        assert [answer["data"] for answer in answers[10:]] == [{}, {}, {}]


# Built from parts so that this file does not match itself.
OUTSIDE_REFERENCES = re.compile(
    "|".join(["\u00a7", r"shared/" + "spec", r"\bspec" + r"(?:'s)? order", r"\bspec \d"]),
    re.I,
)
TEXT_FILES = ("*.md", "*.py", "*.html", "*.txt", "*.toml", "Makefile", ".ci/*")


def test_text_cites_no_outside_documents():
    """README, docs, code comments and OpenAPI descriptions state their rules instead of
    pointing at sections of a document outside the repository."""
    tracked = subprocess.run(
        ["git", "ls-files", "--", *TEXT_FILES], cwd=ROOT, capture_output=True, text=True
    )
    if tracked.returncode != 0:
        pytest.skip("not a git checkout")
    hits = [
        f"{path}:{number}: {line.strip()}"
        for path in tracked.stdout.split()
        if (ROOT / path).is_file()
        for number, line in enumerate((ROOT / path).read_text(errors="replace").splitlines(), 1)
        if OUTSIDE_REFERENCES.search(line)
    ]
    assert hits == []
