"""The config reference (docs/config.md) is generated from the config dataclasses and kept
fresh."""

from pathlib import Path

import pytest
from typer.testing import CliRunner

from seq2seq_cli.cli import app
from seq2seq_cli.config.reference import END, START, reference_markdown, with_reference
from seq2seq_cli.errors import UserError

README = Path(__file__).resolve().parents[1] / "docs" / "config.md"


def test_the_committed_reference_is_what_the_dataclasses_say():
    page = README.read_text(encoding="utf-8")
    assert with_reference(page) == page, "the README's config reference is stale: run make docs"


def test_the_reference_lists_every_section_and_key_once():
    text = reference_markdown()
    for section in ("data", "model", "train"):
        assert f"### `{section}`" in text
    keys = [line.split("|")[1].strip() for line in text.splitlines() if line.startswith("| `")]
    assert len(keys) == len(set(keys)) and "`data.source_units`" in keys


def test_write_rewrites_only_between_the_markers(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(f"# title\n{START}\nold table\n{END}\nafter\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["config", "reference", "--write", str(page)])
    assert result.exit_code == 0, result.output
    text = page.read_text(encoding="utf-8")
    assert text.startswith("# title\n") and text.endswith(f"{END}\nafter\n")
    assert "old table" not in text and "`train.warmup_steps`" in text
    again = CliRunner().invoke(app, ["config", "reference", "--write", str(page)])
    assert "already up to date" in again.output


def test_a_page_without_markers_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="markers"):
        with_reference("no markers here")
    page = tmp_path / "page.md"
    page.write_text("nothing\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["config", "reference", "--write", str(page)])
    assert result.exit_code == 2
