"""``dcs-bot demo``: the real bot against local stand-ins, no credentials needed (``dcs-bot console``, the
same set-up typed into, is :mod:`bot.console`).

Everything runs in this process on 127.0.0.1: a two-region estate of DCS emulators (OTC ``eu-de`` with
AK/SK and ``eu-nl`` with an IAM user, each its own project, and both with a ``redis-prod``), a Slack
stand-in, and the bot built by the production app factory, serving both clouds. The stand-in reaches the
bot exactly as Slack does — signed HTTP requests to ``POST /slack/events`` — so the demo exercises the
same code path as a real deployment.

The scripted conversation is a list of scenes (:data:`SCENES`), each a small function; what it prints is
the transcript, with the Home tabs shown where their people opened them (:class:`Story`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import sys
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
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
from bot.standins.slack.standin import SlackStandIn, View
from bot.standins.slack.timeline import Content, JsonDict, Message, shown_text

ALICE, BOB, CAROL = "UALICE0001", "UBOB00001", "UCAROL0001"
#: The people of the demo workspace, by the name the console knows them by.
PEOPLE = {"alice": ALICE, "bob": BOB, "carol": CAROL}
OPS, ALERTS = "C0OPS0001", "C0ALERTS01"
SIGNING_SECRET = "demo-signing-secret"
BOT_TOKEN = "xoxb-demo-token"
#: How long an approval request waits in the demo: long enough for carol's Home tab to show it, short
#: enough that the demo shows it expiring within seconds (a deployment's default is an hour).
DEMO_APPROVAL_TTL = 5.0

DEMO_POLICY = f"""
# alice is on the SRE team; carol leads it and approves alice's staging backups; bob has no rights yet.
# The first matching rule decides, so the stricter staging rule comes first.
[[rules]]
name = "staging-four-eyes"
users = ["{ALICE}"]
instances = ["redis-staging"]
actions = ["backup"]
approval = "peer"
approvers = ["{CAROL}"]

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


class SceneFailedError(Exception):
    """The bot did not answer a scene as it should (an error the demo reports, like a wait that timed out)."""


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

    async def open_home(self, user_id: str, shows: Callable[[JsonDict], bool] = lambda _: True) -> JsonDict:
        """``user_id`` opens their Home tab; returns the view once the bot published one that ``shows``."""
        before = len(self.slack.home_views(user_id))
        await self.slack.open_home(self.bot_url, user_id=user_id)

        def published() -> bool:
            views = self.slack.home_views(user_id)
            return len(views) > before and shows(views[-1])

        await self.slack.wait_until(published, timeout=_WAIT, what=f"the Home tab of {user_id}")
        return self.slack.home_views(user_id)[-1]

    def modals_opened(self, user_id: str) -> int:
        return len(self.slack.views.opened_for(user_id))

    async def new_modal(self, user_id: str, before: int) -> View:
        """The modal opened for ``user_id`` after the ``before`` they had, once the bot opened it."""
        return await self.slack.wait_for_modal(user_id, before + 1, timeout=_WAIT)

    async def open_form(self, user_id: str, channel_id: str = OPS) -> View:
        """``user_id`` types ``/dcs-backup`` with no text; returns the backup form the bot opened."""
        before = self.modals_opened(user_id)
        await self.say(user_id, "", channel_id)
        return await self.new_modal(user_id, before)


@contextlib.asynccontextmanager
async def local_setup(
    folder: Path, *, poll_interval: float = 0.5, approval_ttl: float = DEMO_APPROVAL_TTL
) -> AsyncIterator[LocalSetup]:
    emulator = DcsEmulator(waiting_seconds=0.5, backuping_seconds=2.0)
    seed_demo_instances(emulator)
    slack = SlackStandIn(signing_secret=SIGNING_SECRET, bot_token=BOT_TOKEN)
    slack.add_channel(OPS, "ops")
    slack.add_channel(ALERTS, "backup-alerts")
    for name, user_id in PEOPLE.items():
        slack.set_user(user_id, name)
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
            bot_approval_ttl=approval_ttl,
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


def quiet_logs() -> None:
    logging.basicConfig(
        level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s"
    )


# --- the scripted conversation --------------------------------------------------------------------------


@dataclass
class Story:
    """What the demo prints, in order: the conversation so far, notes on what happens off screen, and each
    Home tab as its person saw it when they opened it."""

    slack: SlackStandIn
    parts: list[str] = field(default_factory=list)
    shown: int = 0
    #: What the scenes found, for the summary at the end.
    started: str = ""
    finished: str = ""

    #: The channel of the last event shown, while only notes came after it (a view or Home tab resets it).
    channel: str | None = None

    def catch_up(self) -> None:
        events = self.slack.timeline.events
        if len(events) > self.shown:
            rendered = render_transcript(events[self.shown :], self.slack.directory())
            if events[self.shown].channel == self.channel:
                # After a note, an aside, the conversation goes on in its channel without a new heading.
                rendered = rendered.partition("\n")[2]
            self.parts.append(rendered)
            self.shown, self.channel = len(events), events[-1].channel

    def note(self, text: str) -> None:
        self.catch_up()
        self.parts.append(f"({text})\n")

    def home(self, user_id: str, when: str) -> None:
        self.catch_up()
        self.channel = None
        who = self.slack.directory().mention(user_id)
        self.parts.append(
            f"=== Home tab of {who}, {when} ===\n{self.slack.render_home(user_id)}=== end ===\n"
        )

    def view(self, view: View, what: str) -> None:
        """A modal as its person sees it now (with the errors on its fields)."""
        self.catch_up()
        self.channel = None
        who = self.slack.directory().mention(view.user_id)
        self.parts.append(f"=== {what}, as {who} sees it ===\n{self.slack.render_view(view)}=== end ===\n")

    def text(self) -> str:
        self.catch_up()
        return "\n".join(part.rstrip("\n") for part in self.parts) + "\n"


Scene = Callable[[LocalSetup, Story], Awaitable[None]]


#: What alice types into the form's instance picker: a fragment that both regions have an instance for.
FORM_FRAGMENT = "sess"
FORM_PICK = "eu-de/sessions-cluster"


async def scene_the_form(setup: LocalSetup, story: Story) -> None:
    """alice types ``/dcs-backup`` with no text and the backup form opens (INTERFACE §11); she types part of
    a name into the picker (``block_suggestion``), picks one of what it offers, submits with a remark, and
    confirms the card the submission brings up."""
    slack = setup.slack
    form = await setup.open_form(ALICE)
    story.view(form, "the backup form")
    found = await slack.suggest(
        setup.bot_url, user_id=ALICE, view=form, action_id="instance", typed=FORM_FRAGMENT
    )
    story.note(f"alice types “{FORM_FRAGMENT}” into Instance; the picker offers: {', '.join(found.labels)}")
    picked = next(
        (o for o, label in zip(found.options, found.labels, strict=True) if label == FORM_PICK), None
    )
    if picked is None:
        raise SceneFailedError(f"the picker did not offer {FORM_PICK}: {found.labels or found.problems}")
    story.note(f"alice picks {FORM_PICK}, keeps RDB, writes the remark “from the form” and presses Continue")
    answer = await slack.submit_view(
        setup.bot_url, user_id=ALICE, view=form, entered={"instance": picked, "remark": "from the form"}
    )
    if not answer.closed:
        raise SceneFailedError(f"the form was not accepted: {answer.errors or answer.problems}")
    card = await setup.next_message(
        lambda m: m.visible_to == ALICE and FORM_PICK in m.shown and bool(slack.buttons(m)), "the form's card"
    )
    await slack.click(setup.bot_url, user_id=ALICE, message=card, action_id="backup_confirm")
    started = await setup.next_message(_channel_message_of(FORM_PICK), "the form's backup_id")
    # Settled before the next scene, so the two backups' messages do not interleave.
    await setup.next_message(lambda m: m.thread_ts == started.ts and m.ts != started.ts, "its outcome")
    await _settled(setup, started)


async def scene_a_backup(setup: LocalSetup, story: Story) -> None:
    """alice backs up eu-de/redis-prod: card, confirmation, backup_id, the outcome and the watch's notice."""
    slack = setup.slack
    await setup.say(ALICE, 'eu-de/redis-prod aof "before the migration"')
    card = await setup.next_message(lambda m: m.visible_to == ALICE and bool(slack.buttons(m)), "the card")
    await slack.click(setup.bot_url, user_id=ALICE, message=card, action_id="backup_confirm")
    started = await setup.next_message(_channel_message_of("eu-de/redis-prod"), "the backup_id")
    finished = await setup.next_message(
        lambda m: m.thread_ts == started.ts and m.ts != started.ts, "the completion notice"
    )
    await living_message_final(setup, story, started)
    await setup.next_message(lambda m: m.channel == ALERTS, "the watch notice")
    # Their lines as one: the channel message in its final state, and the outcome in its thread.
    story.started = " · ".join(started.shown.splitlines())
    story.finished = " · ".join(finished.shown.splitlines())


def _channel_message_of(instance: str) -> Callable[[Message], bool]:
    """The channel message of a backup of ``instance`` (not the requester's card, nor a thread reply)."""
    return lambda m: (
        m.channel == OPS
        and m.visible_to is None
        and not m.is_thread_reply
        and "backup_id" in m.shown
        and f"*{instance}*" in m.shown
    )


async def living_message_final(setup: LocalSetup, story: Story, started: Message) -> None:
    """The channel message of a backup is updated in place (``chat.update``: waiting → running →
    succeeded) while the outcome also goes to its thread; once it ends, ``story`` sums up its versions."""
    await _settled(setup, started)
    story.note(
        "the channel message, kept current in place by chat.update: "
        + " → ".join(phase_of(content) for content in [*started.history, started.content])
    )


async def _settled(setup: LocalSetup, started: Message) -> None:
    # The channel message reaches the outcome at its channel's next turn for an update.
    await setup.slack.wait_until(
        lambda: "*Succeeded*" in started.shown or "*Failed*" in started.shown,
        timeout=_WAIT,
        what="the channel message's final state",
    )


_PHASE = re.compile(r"\*(Waiting|Running|Succeeded|Failed)\*(?::? (\d+ %))?")


def phase_of(content: Content) -> str:
    """The phase one version of a channel message shows: ``Waiting``, ``Running 50 %``, ``Succeeded``."""
    found = _PHASE.search(shown_text(content))
    return " ".join(filter(None, found.groups())) if found else "?"


async def scene_no_rights(setup: LocalSetup, story: Story) -> None:
    """bob, whom no rule names, is told so."""
    del story
    await setup.say(BOB, "redis-prod rdb")
    await setup.next_message(lambda m: m.visible_to == BOB, "bob's answer")


async def scene_two_clouds(setup: LocalSetup, story: Story) -> None:
    """The second region is addressed by its name; a name both regions have gets both qualified forms."""
    del story
    await setup.say(ALICE, "list eu-nl/redis-prod")
    await setup.next_message(lambda m: m.visible_to == ALICE and "Recent backups" in m.shown, "the list")
    await setup.say(ALICE, "redis-prod")
    await setup.next_message(
        lambda m: m.visible_to == ALICE and "more than one place" in m.shown, "the qualified forms"
    )


async def scene_an_approval_expires(setup: LocalSetup, story: Story) -> None:
    """alice's staging backup needs carol's approval; carol sees it on her Home tab, nobody answers, and
    the request expires: alice is told."""
    slack = setup.slack
    await setup.say(ALICE, 'redis-staging rdb "four eyes"')
    card = await setup.next_message(
        lambda m: m.visible_to == ALICE and "must approve" in str(m.blocks) and bool(slack.buttons(m)),
        "the card that asks for approval",
    )
    await slack.click(setup.bot_url, user_id=ALICE, message=card, action_id="backup_confirm")
    request = await setup.next_message(
        lambda m: m.channel == OPS and any(b.action_id == "backup_approve" for b in slack.buttons(m)),
        "the approval request",
    )
    await setup.open_home(CAROL, lambda view: "backup_approve" in str(view["blocks"]))
    story.home(CAROL, "while alice's request waits for her")
    story.note(f"nobody approves; {DEMO_APPROVAL_TTL:g} s later (BOT_APPROVAL_TTL here) the request expires")
    await setup.next_message(
        lambda m: m.visible_to == ALICE and "expired" in m.shown and "redis-staging" in m.shown,
        "alice told that her request expired",
    )
    await approval_request_closed(setup, request)


async def approval_request_closed(setup: LocalSetup, request: Message) -> None:
    """An approval request that expires is updated to say so, its buttons gone (INTERFACE §11)."""
    await setup.slack.wait_until(
        lambda: not setup.slack.buttons(request), timeout=_WAIT, what="the expired request without buttons"
    )


async def scene_home_tabs(setup: LocalSetup, story: Story) -> None:
    """alice opens her Home tab: what she may back up, with the last good backup, and her requests."""
    await setup.open_home(ALICE, lambda view: "Expired" in str(view["blocks"]))
    story.home(ALICE, "at the end")


SCENES: tuple[Scene, ...] = (
    scene_the_form,
    scene_a_backup,
    scene_no_rights,
    scene_two_clouds,
    scene_an_approval_expires,
    scene_home_tabs,
)

_INTRODUCTION = (
    "dcs-backup-bot demo — a scripted conversation with the real bot, against two local\n"
    "DCS regions (eu-de, eu-nl) and a local Slack stand-in (no credentials, nothing leaves 127.0.0.1).\n"
    "alice may back up; carol approves alice's staging backups; bob may do nothing yet.\n\n"
)


async def run_demo(out: TextIO) -> int:
    with tempfile.TemporaryDirectory(prefix="dcs-bot-demo-") as folder:
        async with local_setup(Path(folder)) as setup:
            story = Story(setup.slack)
            try:
                for scene in SCENES:
                    await scene(setup, story)
            except (TimeoutError, SceneFailedError) as error:
                out.write(story.text())
                out.write(f"demo failed: {error}\n")
                return 1
            out.write(_INTRODUCTION)
            out.write(story.text())
    out.write(f"\nchannel message: {story.started}\nbackup finished: {story.finished}\n")
    return 0


def demo() -> int:
    quiet_logs()
    return asyncio.run(run_demo(sys.stdout))
