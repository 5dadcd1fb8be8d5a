"""``dcs-bot demo`` and ``dcs-bot console``: the real bot against local stand-ins, no credentials needed.

Everything runs in this process on 127.0.0.1: a two-region estate of DCS emulators (OTC ``eu-de`` with
AK/SK and ``eu-nl`` with an IAM user, each its own project, and both with a ``redis-prod``), a Slack
stand-in, and the bot built by the production app factory, serving both clouds. The stand-in reaches the
bot exactly as Slack does — signed HTTP requests to ``POST /slack/events`` — so the demo exercises the
same code path as a real deployment.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import tempfile
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from aiohttp import web
from pydantic import SecretStr

from bot.bootstrap import create_app
from bot.clouds_file import AkSk, CloudSettings, Iam
from bot.config import load_settings
from bot.policy_file import PolicyHolder
from bot.standins.dcs.control import (
    DcsEmulator,
    RunningEmulator,
    eu_nl_emulator,
    seed_demo_instances,
    start_emulator,
)
from bot.standins.slack.render import render_transcript
from bot.standins.slack.standin import SlackStandIn
from bot.standins.slack.timeline import Message

ALICE, BOB = "UALICE0001", "UBOB00001"
OPS, ALERTS = "C0OPS0001", "C0ALERTS01"
SIGNING_SECRET = "demo-signing-secret"
BOT_TOKEN = "xoxb-demo-token"

DEMO_POLICY = f"""
# alice is on the SRE team; bob has no rights yet.
[[rules]]
name = "sre"
users = ["{ALICE}"]
instances = ["redis-*", "sessions-*", "search-*", "cache-*"]
actions = ["backup", "list", "status"]

[[watch]]
instances = ["redis-prod"]
channel = "{ALERTS}"
events = ["failed", "succeed"]
"""

_WAIT = 20.0


@dataclass
class LocalSetup:
    slack: SlackStandIn
    emulator: DcsEmulator
    bot_url: str

    async def say(self, user_id: str, text: str, channel_id: str = OPS) -> None:
        await self.slack.send_command(self.bot_url, user_id=user_id, text=text, channel_id=channel_id)

    async def next_message(self, predicate: Callable[[Message], bool], what: str) -> Message:
        await self.slack.wait_until(
            lambda: any(predicate(m) for m in self.slack.messages()), timeout=_WAIT, what=what
        )
        return next(m for m in self.slack.messages() if predicate(m))


@contextlib.asynccontextmanager
async def local_setup(folder: Path, *, poll_interval: float = 0.5) -> AsyncIterator[LocalSetup]:
    emulator = DcsEmulator(waiting_seconds=0.5, backuping_seconds=2.0)
    seed_demo_instances(emulator)
    slack = SlackStandIn(signing_secret=SIGNING_SECRET, bot_token=BOT_TOKEN)
    slack.add_channel(OPS, "ops")
    slack.add_channel(ALERTS, "backup-alerts")
    slack.set_user(ALICE, "alice")
    slack.set_user(BOB, "bob")
    policy_file = folder / "policy.toml"
    policy_file.write_text(DEMO_POLICY, encoding="utf-8")
    await slack.start()
    running: RunningEmulator = await start_emulator(emulator)
    nl_emulator = eu_nl_emulator()
    nl_emulator.waiting_seconds, nl_emulator.backuping_seconds = 0.5, 2.0
    running_nl: RunningEmulator | None = None
    runner: web.AppRunner | None = None
    try:
        running_nl = await start_emulator(nl_emulator)
        nl = running_nl.connection_info()
        clouds = [
            CloudSettings(
                "eu-de",
                running.url,
                emulator.project_id,
                30.0,
                AkSk(emulator.access_key, SecretStr(emulator.secret_key)),
            ),
            CloudSettings(
                "eu-nl",
                nl.endpoint,
                nl.project_id,
                30.0,
                Iam(nl.endpoint, nl.iam_username, nl.iam_domain, SecretStr(nl.iam_password)),
            ),
        ]
        settings = load_settings(
            None,
            slack_bot_token=BOT_TOKEN,
            slack_signing_secret=SIGNING_SECRET,
            slack_api_url=slack.api_url,
            dcs_endpoint=running.url,
            dcs_project_id=emulator.project_id,
            dcs_access_key=emulator.access_key,
            dcs_secret_key=emulator.secret_key,
            bot_policy=policy_file,
            bot_database=folder / "demo.sqlite3",
            bot_poll_interval=poll_interval,
            # The demo shows the watch notice within moments, not after a real watch interval.
            bot_watch_interval=poll_interval,
            port=0,
        )
        policy = PolicyHolder(policy_file, frozenset(cloud.name for cloud in clouds))
        runner = web.AppRunner(create_app(settings, policy, clouds=clouds), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        yield LocalSetup(slack, emulator, f"http://127.0.0.1:{port}/slack/events")
    finally:
        if runner is not None:
            await runner.cleanup()
        if running_nl is not None:
            await running_nl.close()
        await running.close()
        await slack.stop()


def _quiet_logs() -> None:
    logging.basicConfig(
        level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s"
    )


async def _play(setup: LocalSetup) -> tuple[str, str]:
    slack = setup.slack
    await setup.say(ALICE, 'eu-de/redis-prod aof "before the migration"')
    card = await setup.next_message(lambda m: m.visible_to == ALICE and bool(slack.buttons(m)), "the card")
    await slack.click(setup.bot_url, user_id=ALICE, message=card, action_id="backup_confirm")
    started = await setup.next_message(lambda m: m.channel == OPS and "backup_id" in m.shown, "the backup_id")
    finished = await setup.next_message(
        lambda m: m.thread_ts == started.ts and m.ts != started.ts, "the completion notice"
    )
    # The channel message reaches the outcome too, at its channel's next turn for an update.
    await slack.wait_until(
        lambda: "*Succeeded*" in started.shown, timeout=_WAIT, what="the channel message's final state"
    )
    await setup.next_message(lambda m: m.channel == ALERTS, "the watch notice")
    await setup.say(BOB, "redis-prod rdb")
    await setup.next_message(lambda m: m.visible_to == BOB, "bob's answer")
    await setup.say(ALICE, "list eu-nl/redis-prod")
    await setup.next_message(lambda m: m.visible_to == ALICE and "Recent backups" in m.shown, "the list")
    await setup.say(ALICE, "redis-prod")
    await setup.next_message(
        lambda m: m.visible_to == ALICE and "more than one place" in m.shown, "the qualified forms"
    )
    # Their lines as one: the channel message in its final state, and the outcome in its thread.
    return " · ".join(started.shown.splitlines()), " · ".join(finished.shown.splitlines())


async def run_demo(out: TextIO) -> int:
    with tempfile.TemporaryDirectory(prefix="dcs-bot-demo-") as folder:
        async with local_setup(Path(folder)) as setup:
            try:
                started, finished = await _play(setup)
            except TimeoutError as error:
                out.write(setup.slack.render_transcript() + "\n")
                out.write(f"demo failed: {error}\n")
                return 1
            out.write("dcs-backup-bot demo — a scripted conversation with the real bot, against two local\n")
            out.write(
                "DCS regions (eu-de, eu-nl) and a local Slack stand-in (no credentials, nothing leaves "
                "127.0.0.1).\n\n"
            )
            out.write(setup.slack.render_transcript() + "\n")
    out.write(f"\nchannel message: {started}\nbackup finished: {finished}\n")
    return 0


def demo() -> int:
    _quiet_logs()
    return asyncio.run(run_demo(sys.stdout))


# --- the interactive console ----------------------------------------------------------------------------

_CONSOLE_HELP = """Type slash commands as they would be typed in Slack, e.g.
  /dcs-backup eu-de/redis-prod aof "before the migration"
  /dcs-backup list eu-nl/redis-prod
  (two regions, eu-de and eu-nl, both have a redis-prod: name the cloud, or ask and see both)
Other input:
  1, 2, …        press the numbered button of the newest message that has buttons
  as bob         speak as another person (alice has rights, bob has none)
  in alerts      switch channel (ops, backup-alerts)
  help / quit
"""


@dataclass
class _Console:
    setup: LocalSetup
    out: TextIO
    user: str = ALICE
    channel: str = OPS
    shown: int = 0

    @property
    def prompt(self) -> str:
        who = "alice" if self.user == ALICE else "bob"
        where = "ops" if self.channel == OPS else "backup-alerts"
        return f"{who} in #{where}> "

    def flush(self) -> None:
        events = self.setup.slack.timeline.events
        if len(events) > self.shown:
            text = render_transcript(events[self.shown :], self.setup.slack.directory())
            self.out.write(text.rstrip("\n") + "\n")
            self.shown = len(events)
        self.out.flush()

    def buttons(self) -> tuple[Message, list[str]] | None:
        slack = self.setup.slack
        for message in reversed(slack.visible_to(self.user)):
            found = slack.buttons(message)
            if found and not message.deleted:
                return message, [b.action_id for b in found]
        return None

    async def handle(self, line: str) -> bool:
        names = {"alice": ALICE, "bob": BOB}
        channels = {"ops": OPS, "alerts": ALERTS, "backup-alerts": ALERTS}
        word, _, rest = line.strip().partition(" ")
        if word in ("quit", "exit"):
            return False
        if word == "help" or not word:
            self.out.write(_CONSOLE_HELP)
        elif word == "as" and rest.strip() in names:
            self.user = names[rest.strip()]
        elif word == "in" and rest.strip().lstrip("#") in channels:
            self.channel = channels[rest.strip().lstrip("#")]
        elif word == "/dcs-backup":
            await self.setup.say(self.user, rest, self.channel)
            await asyncio.sleep(1.0)
        elif word.isdigit():
            await self._press(int(word))
        else:
            self.out.write("Not understood; type help.\n")
        return True

    async def _press(self, number: int) -> None:
        found = self.buttons()
        if found is None or not 1 <= number <= len(found[1]):
            self.out.write("No such button.\n")
            return
        message, action_ids = found
        await self.setup.slack.click(
            self.setup.bot_url, user_id=self.user, message=message, action_id=action_ids[number - 1]
        )
        await asyncio.sleep(1.0)


async def run_console(read_line: Callable[[str], str], out: TextIO) -> int:
    with tempfile.TemporaryDirectory(prefix="dcs-bot-console-") as folder:
        async with local_setup(Path(folder)) as setup:
            console = _Console(setup, out)
            out.write(_CONSOLE_HELP)
            while True:
                console.flush()
                try:
                    line = await asyncio.to_thread(read_line, console.prompt)
                except EOFError:
                    break
                if not await console.handle(line):
                    break
            # What arrived while the last line was typed would otherwise never be shown.
            console.flush()
    return 0


def console() -> int:
    _quiet_logs()
    try:
        return asyncio.run(run_console(input, sys.stdout))
    except KeyboardInterrupt:
        return 0
