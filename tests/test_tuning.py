"""_tuning.py: every constant says what guards it, and what it names exists.

Each constant's comment names the ``make bench`` rows that guard it ("Guards: "section:
row"") or, for the few that are no speed trade-off, the tests that pin them. A renamed
bench section or test would leave a comment pointing at nothing; these tests catch that,
and a value defined again in another module next to its import.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from loopsink import _tuning

ROOT = Path(__file__).resolve().parent.parent
SOURCE = Path(_tuning.__file__).read_text(encoding="utf-8")


def _comments() -> dict[str, str]:
    """Each constant's ``#:`` comment (its lines joined), by name."""
    found: dict[str, str] = {}
    block: list[str] = []
    for line in SOURCE.splitlines():
        if line.startswith("#:"):
            block.append(line[2:].strip())
        elif match := re.match(r"([A-Z][A-Z0-9_]*) = ", line):
            found[match.group(1)] = " ".join(block)
            if not line.startswith("HTTP_LEND"):  # HTTP_LOOK_EVERY shares its comment
                block = []
        else:
            block = []
    return found


def _constants() -> list[str]:
    return [name for name in vars(_tuning) if re.fullmatch(r"[A-Z][A-Z0-9_]*", name)]


def _section_titles() -> list[re.Pattern[str]]:
    """The benchmarks' section titles, as patterns: an f-string's fields match any text."""
    titles: list[re.Pattern[str]] = []
    for path in (ROOT / "benchmarks").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.Call) and getattr(node.func, "id", None) == "Section"):
                continue
            title = node.args[0] if node.args else None
            if isinstance(title, ast.Constant) and isinstance(title.value, str):
                titles.append(re.compile(re.escape(title.value)))
            elif isinstance(title, ast.JoinedStr):
                parts = [
                    re.escape(part.value) if isinstance(part, ast.Constant) else ".+?"
                    for part in title.values
                ]
                titles.append(re.compile("".join(parts)))
    return titles


def test_every_constant_names_a_bench_row_or_a_test() -> None:
    comments = _comments()
    assert sorted(comments) == sorted(_constants())
    for name, comment in comments.items():
        assert "Guards:" in comment or "Test:" in comment or "Tests:" in comment, name


def test_the_bench_sections_named_exist() -> None:
    titles = _section_titles()
    assert len(titles) >= 15  # the parser sees the benchmarks' sections
    checked = 0
    for name, comment in _comments().items():
        guards = comment.partition("Guards:")[2].partition(" Test")[0]
        for quoted in re.findall(r'"([^"]+)"', guards):
            assert any(re.match(title.pattern + ": ", quoted) for title in titles), (name, quoted)
            checked += 1
    assert checked >= 20


def test_the_tests_named_exist() -> None:
    checked = 0
    for name, comment in _comments().items():
        for path, tests in re.findall(r"(tests/[\w/]+\.py) ((?:test_\w+(?:, | and )?)+)", comment):
            text = (ROOT / path).read_text(encoding="utf-8")
            for test in re.findall(r"test_\w+", tests):
                assert f"def {test}(" in text, (name, path, test)
                checked += 1
    assert checked >= 6


def test_no_module_defines_a_tuning_value_again() -> None:
    names = set(_constants())
    for path in (ROOT / "src" / "loopsink").rglob("*.py"):
        if path.name == "_tuning.py":
            continue
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.Assign | ast.AnnAssign):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target in targets:
                    assert getattr(target, "id", "").lstrip("_") not in names, (path, target)
