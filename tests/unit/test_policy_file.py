"""The policy file on disk: read errors are named, and a broken reload keeps the last good policy."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.policy_file import PolicyError, PolicyHolder, read_policy

GOOD = '[[rules]]\nname = "a"\nusers = ["U1A"]\ninstances = ["*"]\nactions = ["list"]\n'


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="cannot read the file"):
        read_policy(tmp_path / "nope.toml")


def test_a_binary_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(PolicyError, match="not UTF-8"):
        read_policy(path)


def test_reload_swaps_in_a_good_file_and_keeps_the_last_good_one_otherwise(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(GOOD, encoding="utf-8")
    holder = PolicyHolder(path)
    assert [rule.name for rule in holder().rules] == ["a"]

    path.write_text(GOOD.replace('"a"', '"b"'), encoding="utf-8")
    assert holder.reload()
    assert [rule.name for rule in holder().rules] == ["b"]

    path.write_text("rules = [", encoding="utf-8")
    assert not holder.reload()
    assert [rule.name for rule in holder().rules] == ["b"]
    assert "keeping the previous policy" in caplog.text
    assert (holder.reloads, holder.failed_reloads) == (1, 1)
