"""The Dockerfile and the Slack app manifests, checked as text (no Docker engine or YAML parser needed)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot.slack.backup_form import SHORTCUT_CALLBACK_ID

ROOT = Path(__file__).resolve().parents[2]
SCOPES = {"commands", "chat:write", "chat:write.public", "usergroups:read"}


def instructions(dockerfile: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with continuation lines joined and comments dropped."""
    joined = re.sub(r"\\\n", " ", dockerfile)
    found = []
    for line in joined.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            word, _, rest = stripped.partition(" ")
            found.append((word.upper(), rest.strip()))
    return found


def test_the_dockerfile_runs_a_pinned_slim_python_as_a_non_root_user_with_a_health_check() -> None:
    steps = instructions((ROOT / "Dockerfile").read_text(encoding="utf-8"))
    args = dict(arg.split("=", 1) for word, arg in steps if word == "ARG" and "=" in arg)

    bases = [
        args.get(rest.split()[0].strip("${}"), rest.split()[0]) for word, rest in steps if word == "FROM"
    ]
    assert bases and all(re.fullmatch(r"python:3\.11-slim-[a-z]+", base) for base in bases), bases
    users = [rest for word, rest in steps if word == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0"), users
    [health] = [rest for word, rest in steps if word == "HEALTHCHECK"]
    assert "/livez" in health and "/healthz" not in health and "CMD" in health
    assert "BOT_OPS_PORT" in health, "the probe follows the operations endpoints to their port"
    assert ("EXPOSE", "3000") in steps
    [volume] = [rest for word, rest in steps if word == "VOLUME"]
    database = next(rest for word, rest in steps if word == "ENV" and "BOT_DATABASE=" in rest)
    data_dir = re.search(r"BOT_DATABASE=(/\S+)/[^/\s]+", database)
    assert data_dir is not None and f'"{data_dir.group(1)}"' in volume, (volume, database)
    assert ("CMD", '["serve"]') in steps and any(w == "ENTRYPOINT" and "dcs-bot" in r for w, r in steps)


def bot_scopes(manifest: str) -> set[str]:
    section = manifest.split("oauth_config:", 1)[1].split("\nsettings:", 1)[0]
    bot = section.split("bot:", 1)[1]
    return {m.group(1) for m in re.finditer(r"^\s*-\s*([a-z.:_]+)", bot, re.MULTILINE)}


@pytest.mark.parametrize(
    ("manifest", "socket_mode"), [("manifest.yml", False), ("manifest.socket-mode.yml", True)]
)
def test_a_manifest_declares_the_command_interactivity_and_scopes(manifest: str, socket_mode: bool) -> None:
    text = (ROOT / manifest).read_text(encoding="utf-8")

    assert re.search(r"^\s*- command: /dcs-backup$", text, re.MULTILINE)
    assert re.search(r"^  interactivity:\n    is_enabled: true$", text, re.MULTILINE)
    options_urls = re.findall(r"^\s*message_menu_options_url: (\S+)$", text, re.MULTILINE)
    assert bot_scopes(text) == SCOPES
    assert re.search(rf"^  socket_mode_enabled: {str(socket_mode).lower()}$", text, re.MULTILINE)
    urls = re.findall(r"^\s*(?:url|request_url): (\S+)$", text, re.MULTILINE)
    if socket_mode:
        assert urls == options_urls == [], "Socket Mode needs no public URL"
    else:
        # The command, the events and interactivity: all at the one path Bolt serves.
        assert len(urls) == 3 and all(url.endswith("/slack/events") for url in urls), urls
        assert options_urls == [urls[-1]], "the form's picker loads its options where interactions go"


@pytest.mark.parametrize("manifest", ["manifest.yml", "manifest.socket-mode.yml"])
def test_a_manifest_enables_the_home_tab_and_subscribes_to_its_event(manifest: str) -> None:
    text = (ROOT / manifest).read_text(encoding="utf-8")

    assert re.search(r"^  app_home:\n    home_tab_enabled: true\b", text, re.MULTILINE)
    events = text.split("  event_subscriptions:\n", 1)[1].split("\n  interactivity:", 1)[0]
    assert re.findall(r"^\s*-\s*([a-z_.]+)", events.split("bot_events:", 1)[1], re.MULTILINE) == [
        "app_home_opened"
    ]


@pytest.mark.parametrize("manifest", ["manifest.yml", "manifest.socket-mode.yml"])
def test_a_manifest_declares_the_global_shortcut_that_opens_the_backup_form(manifest: str) -> None:
    text = (ROOT / manifest).read_text(encoding="utf-8")

    # From `shortcuts:` to the next key at its level.
    section = re.split(r"\n {0,2}\w", text.split("\n  shortcuts:\n", 1)[1], maxsplit=1)[0]
    entries = re.findall(r"^    - (.+(?:\n      .+)*)", section, re.MULTILINE)
    shortcuts = [dict(re.findall(r"(\w+): (.+)", entry)) for entry in entries]
    assert [(s["type"], s["callback_id"]) for s in shortcuts] == [("global", SHORTCUT_CALLBACK_ID)]
    [shortcut] = shortcuts
    # Slack's manifest limits: a name of at most 24 characters, a description of at most 150.
    assert 0 < len(shortcut["name"]) <= 24 and 0 < len(shortcut["description"]) <= 150, shortcut
    assert bot_scopes(text) == SCOPES, "a shortcut needs no scope beyond commands"
