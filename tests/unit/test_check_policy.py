"""``dcs-bot check-policy FILE [--clouds FILE]``: every problem in one run, and warnings (exit 0) about
rules that never decide what they seem to, duplicate names and a policy that allows nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.cli import main


@pytest.fixture(autouse=True)
def no_clouds_setting(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("BOT_CLOUDS", raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env


def run(capsys: pytest.CaptureFixture[str], tmp_path: Path, text: str, *extra: str) -> tuple[int, list[str]]:
    path = tmp_path / "policy.toml"
    path.write_text(text, encoding="utf-8")
    code = main(["check-policy", str(path), *extra])
    out = capsys.readouterr()
    assert out.err == ""
    return code, out.out.splitlines()


def cloud(name: str) -> str:
    """A complete ``[[clouds]]`` table (its secret's variable need not be set for check-policy)."""
    return (
        f'[[clouds]]\nname = "{name}"\nendpoint = "https://dcs.{name}.otc.t-systems.com"\n'
        'project_id = "0123456789abcdef0123456789abcdef"\naccess_key = "AK"\n'
        'secret_key_env = "UNSET_IN_CHECK_POLICY"\n'
    )


RULE = '[[rules]]\nname = "{name}"\nusers = ["UALICE1"]\ninstances = ["*"]\nactions = ["list"]\n'


def test_every_problem_comes_in_one_run(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    text = """
    [[rules]]
    name = "a"
    users = ["UALICE1"]
    instances = ["*"]
    actions = ["backup"]
    approval = "peer"
    colour = "red"

    [[rules]]
    name = "b"
    instances = ["redis-[prod"]
    actions = ["list"]

    [[watch]]
    instances = ["*"]
    channel = "CALERTS1"
    stale_after_hours = inf
    """
    code, lines = run(capsys, tmp_path, text)
    assert code == 1
    assert lines[0].endswith("policy.toml: 5 problem(s)"), lines
    problems = "\n".join(lines[1:])
    assert "rules[0] ('a').colour: unknown key" in problems
    assert "rules[0] ('a'): approval = \"peer\" needs approvers" in problems
    assert "rules[1] ('b').instances[0]: 'redis-[prod' is not an instance name glob" in problems
    assert "rules[1] ('b'): a rule needs users or groups" in problems
    assert "watch[0].stale_after_hours: must be a number of hours" in problems


@pytest.mark.parametrize("hours", ["inf", "-inf", "nan", "0", "-1", "1e9", "8761", '"soon"'])
def test_stale_after_hours_is_bounded(capsys: pytest.CaptureFixture[str], tmp_path: Path, hours: str) -> None:
    watch = f'[[watch]]\ninstances = ["*"]\nchannel = "CALERTS1"\nstale_after_hours = {hours}\n'
    text = 'admins = ["UADMIN1"]\n' + watch
    code, lines = run(capsys, tmp_path, text)
    assert code == 1, lines
    assert lines[1] == (
        "  - watch[0].stale_after_hours: must be a number of hours above 0 and at most 8760 (a year)"
    ), lines


def test_a_self_rule_above_a_peer_rule_is_a_warning_with_an_example(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    text = """
    [[rules]]
    name = "sre-all"
    groups = ["SSRE1"]
    users = ["UALICE1"]
    instances = ["*"]
    actions = ["backup", "list"]

    [[rules]]
    name = "prod-careful"
    users = ["UALICE1", "UBOB1"]
    channels = ["COPS1"]
    instances = ["redis-prod-*"]
    actions = ["backup"]
    approval = "peer"
    approvers = ["ULEAD1"]
    """
    code, lines = run(capsys, tmp_path, text)
    assert code == 0
    assert lines[0].endswith("ok — 0 admin(s), 2 rule(s), 0 watch(es)"), lines
    assert lines[1:] == [
        "warning: rule 'prod-careful' (approval = \"peer\") can be skipped: rule 'sre-all' above it allows "
        "the same without approval, e.g. user UALICE1 in channel COPS1 may back up redis-prod-x",
    ]


def test_a_peer_rule_above_a_self_rule_is_the_recommended_order(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    text = """
    [[rules]]
    name = "prod-careful"
    users = ["UALICE1"]
    instances = ["redis-prod-*"]
    actions = ["backup"]
    approval = "peer"
    approvers = ["ULEAD1"]

    [[rules]]
    name = "everything-else"
    users = ["UALICE1"]
    instances = ["*"]
    actions = ["backup"]
    """
    assert run(capsys, tmp_path, text) == (
        0,
        [f"{tmp_path / 'policy.toml'}: ok — 0 admin(s), 2 rule(s), 0 watch(es)"],
    )


def test_duplicate_names_and_a_rule_that_never_decides_are_warnings(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, lines = run(capsys, tmp_path, RULE.format(name="a") + RULE.format(name="a"))
    assert code == 0
    assert lines[1:] == [
        "warning: rule 'a' (rules[1]) never decides: rule 'a' (rules[0]) above it already matches everything "
        "it matches",
        "warning: rule name 'a' is used by rules[0] and rules[1]; the audit trail cannot tell them apart",
    ]


def test_a_policy_that_allows_nothing_is_a_warning(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, lines = run(capsys, tmp_path, "admins = []\n")
    assert code == 0
    assert lines[1:] == ["warning: the policy allows nothing: it has no admins and no rules"]


def test_clouds_and_tags_on_rules_and_watches(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    text = """
    admins = ["UADMIN1"]

    [[rules]]
    name = "eu"
    users = ["UALICE1"]
    clouds = ["eu-de", "eu-nl"]
    tags = { env = "prod", team = "*" }
    instances = ["*"]
    actions = ["list"]

    [[watch]]
    instances = ["*"]
    clouds = ["eu-de"]
    tags = { env = "prod" }
    channel = "CALERTS1"
    """
    clouds = tmp_path / "clouds.toml"
    clouds.write_text(cloud("eu-de") + cloud("eu-nl"), encoding="utf-8")
    code, lines = run(capsys, tmp_path, text, "--clouds", str(clouds))
    assert (code, lines[1:]) == (0, []), lines

    clouds.write_text(cloud("eu-de"), encoding="utf-8")
    code, lines = run(capsys, tmp_path, text, "--clouds", str(clouds))
    assert code == 1
    assert lines[1:] == ["  - rules[0] ('eu').clouds[1]: unknown cloud 'eu-nl' (the clouds file names eu-de)"]


def test_the_clouds_file_comes_from_bot_clouds_without_the_flag(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clouds = tmp_path / "clouds.toml"
    clouds.write_text(cloud("eu-de"), encoding="utf-8")
    monkeypatch.setenv("BOT_CLOUDS", str(clouds))
    text = RULE.format(name="a").replace('actions = ["list"]', 'actions = ["list"]\nclouds = ["eu-nl"]')
    code, lines = run(capsys, tmp_path, text)
    assert code == 1
    assert "unknown cloud 'eu-nl'" in lines[1]


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (
            'clouds = ["EU_DE"]',
            "rules[0] ('a').clouds[0]: 'EU_DE' is not a cloud name (1 to 32 of a-z, 0-9, -)",
        ),
        ("clouds = []", "rules[0] ('a').clouds: must not be empty; leave it out for every cloud"),
        ("tags = {}", "rules[0] ('a').tags: must not be empty; leave it out to match any tags"),
        ("tags = { env = 1 }", "rules[0] ('a').tags.env: must be a string, or \"*\" for any value"),
        (
            'tags = { " env" = "prod" }',
            "rules[0] ('a').tags: ' env' is not a tag key (1 to 128 of letters, digits, spaces and "
            "_ . : / = + - @; no space at either end)",
        ),
    ],
)
def test_bad_clouds_and_tags_are_named(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, extra: str, expected: str
) -> None:
    code, lines = run(capsys, tmp_path, RULE.format(name="a") + extra + "\n")
    assert code == 1
    assert lines[1:] == [f"  - {expected}"], lines


def test_a_broken_clouds_file_is_named(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    clouds = tmp_path / "clouds.toml"
    clouds.write_text(cloud("eu-de").replace('name = "eu-de"', "") + 'password = "x"\n', encoding="utf-8")
    code, lines = run(capsys, tmp_path, RULE.format(name="a"), "--clouds", str(clouds))
    assert code == 1
    assert lines == [
        f"{clouds}: 2 problem(s)",
        "  - clouds[0].name: required key is missing",
        "  - clouds[0].password: secrets are never in this file; name an environment variable "
        "with password_env",
    ]
