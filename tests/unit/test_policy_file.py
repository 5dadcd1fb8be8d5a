"""The policy file on disk: read errors are named, and a broken reload keeps the last good policy."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from bot.policy_file import PolicyError, PolicyHolder, read_cloud_names, read_policy

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


def test_warnings_are_logged_when_asked_and_on_reload_not_fatal(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(GOOD + GOOD, encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="bot.policy_file"):
        holder = PolicyHolder(path)
        assert caplog.text == ""
        holder.log_warnings()
    assert len(holder().rules) == 2
    assert "rule name 'a' is used by rules[0] and rules[1]" in caplog.text
    caplog.clear()
    path.write_text("admins = []\n", encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="bot.policy_file"):
        assert holder.reload()
    assert "the policy allows nothing" in caplog.text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("clouds = [", "not valid TOML"),
        ("name = 'eu-de'\n", "clouds: required, one [[clouds]] table for each cloud"),
        ("[[clouds]]\nname = 'EU'\n", "clouds[0] ('EU').name: 'EU' is not a cloud name"),
        (
            "[[clouds]]\nname = 'eu-de'\n[[clouds]]\nname = 'eu-de'\n",
            "clouds[1] ('eu-de').name: 'eu-de' is used twice",
        ),
    ],
)
def test_cloud_names_are_read_from_a_clouds_file(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "clouds.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(PolicyError) as caught:
        read_cloud_names(path)
    assert any(expected in problem for problem in caught.value.problems), caught.value.problems


def test_cloud_names(tmp_path: Path) -> None:
    path = tmp_path / "clouds.toml"
    path.write_text(
        "".join(
            f"[[clouds]]\nname = '{name}'\nendpoint = 'https://dcs.{name}.otc.t-systems.com'\n"
            "project_id = '0123456789abcdef0123456789abcdef'\naccess_key = 'AK'\n"
            "secret_key_env = 'NOT_READ'\n"
            for name in ("eu-de", "eu-nl")
        ),
        encoding="utf-8",
    )
    assert read_cloud_names(path) == {"eu-de", "eu-nl"}
    with pytest.raises(PolicyError, match="cannot read"):
        read_cloud_names(tmp_path / "nope.toml")
