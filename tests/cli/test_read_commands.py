"""Read commands (`catalog …`, `queue list`, `quota`): settings typos, the --state table at 80 columns, units."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers.catalog import known_settings
from helpers.cli import run


@pytest.fixture
def known(tmp_path: Path) -> Iterator[Path]:
    yield known_settings(tmp_path)


@pytest.mark.parametrize(
    "args", [["catalog", "list"], ["catalog", "stats"], ["catalog", "show", "52"], ["queue", "stats"]]
)
def test_a_typo_in_the_settings_is_not_passed_silently(known, capsys, monkeypatch, args) -> None:
    known.write_text(known.read_text() + "[quota]\ntimezon = 'UTC'\n", encoding="utf-8")
    code, out, err = run(["--config", str(known), *args], capsys, monkeypatch)
    assert code == 78, (out, err)
    assert "timezon" in err and "did you mean timezone" in err and "Traceback" not in err


@pytest.mark.parametrize("columns", ["80", "60"])
def test_a_state_table_on_a_narrow_terminal_never_cuts_an_id(known, capsys, monkeypatch, columns) -> None:
    monkeypatch.setenv("COLUMNS", columns)
    args = ["catalog", "list", "--state", "done,failed,pending,not_found", "--format", "table"]
    code, out, err = run(["--config", str(known), *args], capsys, monkeypatch)
    assert code == 0, err
    assert max(map(len, out.splitlines())) <= int(columns)
    firsts = [line.split()[0] for line in out.splitlines() if line.strip()]
    for num_iid in (520000000001, 530000000005, 610000000006):
        assert str(num_iid) in firsts, out
    assert "…" not in "".join(firsts)
