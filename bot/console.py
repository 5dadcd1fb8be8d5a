"""``dcs-bot console``: the demo's set-up (:func:`bot.demo.local_setup`), typed into.

A person types slash commands as in Slack and presses buttons by number. Every button shown gets a number
of its own, once, and keeps it: ``3`` always means the same button of the same message (or Home tab), so a
number typed late cannot land on a newer card. Pressing one first says what it acts on — whose message, in
which channel, about what, for which request — then sends the click as Slack would.
"""

from __future__ import annotations

import asyncio
import copy
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from bot.demo import ALERTS, OPS, PEOPLE, LocalSetup, local_setup, quiet_logs
from bot.standins.slack.render import render_content, render_transcript, render_view, text_object
from bot.standins.slack.standin import View
from bot.standins.slack.timeline import (
    Button,
    Content,
    JsonDict,
    Message,
    MessagePosted,
    MessageReplaced,
    TimelineEvent,
    find_buttons,
)

#: Approval requests wait this long in the console: time to switch to carol and approve, and still short
#: enough to watch one expire.
CONSOLE_APPROVAL_TTL = 120.0
#: How long the console lets the bot answer before showing the prompt again.
SETTLE = 1.0

_CHANNELS = {"ops": OPS, "alerts": ALERTS, "backup-alerts": ALERTS}
_CHANNEL_NAMES = {OPS: "ops", ALERTS: "backup-alerts"}
_NAMES = {user_id: name for name, user_id in PEOPLE.items()}
#: What a button's value names, by action (a request, unless listed).
_VALUE_NAMES = {"backup_pick": "instance", "backup_new": ""}
_SHOWN_TEXT = 100

HELP = f"""Type slash commands as they would be typed in Slack, e.g.
  /dcs-backup eu-de/redis-prod aof "before the migration"
  /dcs-backup                        the backup form: fill it in at the prompts
  /dcs-backup redis-staging rdb      carol must approve it (here within {CONSOLE_APPROVAL_TTL:g} s)
  /dcs-backup list eu-nl/redis-prod
  (two regions, eu-de and eu-nl, both have a redis-prod: name the cloud, or ask and see both)
Other input:
  1, 2, …        press the button with that number; every button shown gets one
  buttons        list the buttons you can press now, and what each acts on
  home           open your Home tab (its buttons are numbered too; New backup opens the form)
  as carol       speak as another person: alice may back up, carol approves alice's
                 staging backups, bob has no rights yet
  in alerts      switch channel (ops, backup-alerts)
  (Enter)        show what arrived since
  help / quit
"""


@dataclass(frozen=True)
class Choice:
    """A numbered button: on ``message``, or on the Home tab of ``home_of``."""

    number: int
    button: Button
    message: Message | None = None
    home_of: str | None = None


class ButtonNumbers:
    """Gives each button a number the first time it is shown; the same button keeps its number."""

    def __init__(self) -> None:
        self._numbers: dict[tuple[str | None, ...], int] = {}
        self.choices: dict[int, Choice] = {}

    def _number(self, key: tuple[str | None, ...], choice: Callable[[int], Choice]) -> int:
        number = self._numbers.get(key)
        if number is None:
            number = len(self._numbers) + 1
            self._numbers[key] = number
            self.choices[number] = choice(number)
        return number

    def on_message(self, message: Message, button: Button) -> int:
        key = ("message", str(message.id), button.block_id, button.action_id, button.value)
        return self._number(key, lambda n: Choice(n, button, message=message))

    def on_home(self, user_id: str, button: Button) -> int:
        key = ("home", user_id, button.action_id, button.value)
        return self._number(key, lambda n: Choice(n, button, home_of=user_id))


def numbered(blocks: list[JsonDict], number_of: Callable[[Button], int]) -> list[JsonDict]:
    """A copy of ``blocks`` whose buttons read ``[n: label]`` (in :func:`find_buttons`'s order)."""
    copied = copy.deepcopy(blocks)
    elements: list[JsonDict] = []
    for block in copied:
        if block.get("type") == "actions":
            elements += [e for e in block.get("elements") or [] if isinstance(e, dict)]
        elif block.get("type") == "section" and isinstance(block.get("accessory"), dict):
            elements.append(block["accessory"])
    for element, button in zip(
        [e for e in elements if e.get("type") == "button"], find_buttons(blocks), strict=True
    ):
        element["text"] = {"type": "plain_text", "text": f"{number_of(button)}: {button.label}"}
    return copied


def _same(button: Button, other: Button) -> bool:
    return (button.block_id, button.action_id, button.value) == (other.block_id, other.action_id, other.value)


def _same_on_home(button: Button, other: Button) -> bool:
    # A Home tab is published afresh each time; its block ids may change, its buttons' meaning does not.
    return (button.action_id, button.value) == (other.action_id, other.value)


def _kept(answer: object) -> str:
    return f" [{answer}]" if answer else ""


def _short(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= _SHOWN_TEXT else line[: _SHOWN_TEXT - 1] + "…"


#: Typed at any prompt of the form: it is closed, nothing sent.
CANCEL = "cancel"
#: What the Home tab's New backup button does: open the backup form.
NEW_BACKUP_ACTION = "backup_new"


class FormCancelledError(Exception):
    """The person typed ``cancel`` while filling in a form."""


@dataclass
class Console:
    setup: LocalSetup
    out: TextIO
    read_line: Callable[[str], str] = input
    user: str = PEOPLE["alice"]
    channel: str = OPS
    shown: int = 0
    numbers: ButtonNumbers = field(default_factory=ButtonNumbers)
    #: Per person who opened their Home tab here: how many versions of it they have seen (or were told of).
    home_seen: dict[str, int] = field(default_factory=dict)

    @property
    def prompt(self) -> str:
        where = "ops" if self.channel == OPS else "backup-alerts"
        return f"{_NAMES[self.user]} in #{where}> "

    def _mention(self, user_id: str) -> str:
        return self.setup.slack.directory().mention(user_id)

    # --- what is shown ------------------------------------------------------------------------------

    def _numbered_event(self, event: TimelineEvent) -> TimelineEvent:
        """The event with its buttons numbered, when they are still there to press."""
        if not isinstance(event, MessagePosted | MessageReplaced):
            return event
        message = event.message
        if message.deleted or event.content is not message.content or not find_buttons(message.blocks):
            return event
        blocks = numbered(message.blocks, lambda b: self.numbers.on_message(message, b))
        return type(event)(message, Content(text=event.content.text, blocks=blocks))

    def flush(self) -> None:
        slack = self.setup.slack
        events = slack.timeline.events
        if len(events) > self.shown:
            shown = [self._numbered_event(e) for e in events[self.shown :]]
            self.out.write(render_transcript(shown, slack.directory()).rstrip("\n") + "\n")
            self.shown = len(events)
        seen = self.home_seen.get(self.user)
        if seen is not None and len(slack.home_views(self.user)) > seen:
            self.out.write("(your Home tab changed; type home to see it)\n")
            self.home_seen[self.user] = len(slack.home_views(self.user))
        self.out.flush()

    async def show_home(self) -> None:
        view = await self.setup.open_home(self.user)
        self.home_seen[self.user] = len(self.setup.slack.home_views(self.user))
        blocks = numbered(view.get("blocks") or [], lambda b: self.numbers.on_home(self.user, b))
        home = render_view({"type": "home", "blocks": blocks}, self.setup.slack.directory())
        self.out.write(f"=== your Home tab ({self._mention(self.user)}) ===\n{home}=== end ===\n")

    # --- what a number acts on ----------------------------------------------------------------------

    def live(self, choice: Choice) -> bool:
        """The button is still there: its message was not deleted or changed to drop it, nor its Home tab."""
        if choice.message is not None:
            message = choice.message
            return not message.deleted and any(_same(choice.button, b) for b in find_buttons(message.blocks))
        assert choice.home_of is not None
        home = self.setup.slack.home_of(choice.home_of)
        buttons = find_buttons(home.blocks) if home is not None else []
        return any(_same_on_home(choice.button, b) for b in buttons)

    def acts_on(self, choice: Choice) -> str:
        """``[Confirm] on DCS Backup's message in #ops (only visible to @alice): "Back up …" — request …``"""
        directory = self.setup.slack.directory()
        button = choice.button
        if choice.message is not None:
            message = choice.message
            seen_by = (
                ""
                if message.visible_to is None
                else f" (only visible to {directory.mention(message.visible_to)})"
            )
            author, channel = directory.author(message.author), directory.channel(message.channel)
            where = f"{author}'s message in {channel}{seen_by}"
            # The first line of what the reader sees names the instance with its cloud; the text fallback
            # may not.
            about = _short(render_content(message.content, directory)[0])
        else:
            assert choice.home_of is not None
            where = f"the Home tab of {directory.mention(choice.home_of)}"
            about = _short(self._home_context(choice))
        value_name = _VALUE_NAMES.get(button.action_id, "request")
        value = f" — {value_name} {button.value}" if value_name and button.value else ""
        quoted = f': "{about}"' if about else ""
        return f"[{button.label}] on {where}{quoted}{value}"

    def _home_context(self, choice: Choice) -> str:
        """The section just above the button on the Home tab: what the button is about."""
        assert choice.home_of is not None
        home = self.setup.slack.home_of(choice.home_of)
        above = ""
        for block in home.blocks if home is not None else []:
            if block.get("type") == "section" and block.get("text") is not None:
                above = text_object(block["text"], self.setup.slack.directory())
            if any(_same_on_home(choice.button, b) for b in find_buttons([block])):
                return above
        return ""

    def list_buttons(self) -> None:
        mine = [
            c
            for c in self.numbers.choices.values()
            if self.live(c)
            and (c.home_of == self.user if c.message is None else c.message.visible_for(self.user))
        ]
        if not mine:
            self.out.write("No button you can press now.\n")
        for choice in mine:
            self.out.write(f"  {choice.number}  {self.acts_on(choice)}\n")

    # --- input --------------------------------------------------------------------------------------

    async def handle(self, line: str) -> bool:
        word, _, rest = line.strip().partition(" ")
        rest = rest.strip()
        if word in ("quit", "exit"):
            return False
        if not word:
            # Enter on its own: a moment for the bot, then what arrived meanwhile is shown.
            await asyncio.sleep(SETTLE / 5)
        elif word == "help":
            self.out.write(HELP)
        elif word == "as" and rest in PEOPLE:
            self.user = PEOPLE[rest]
        elif word == "as":
            self.out.write(f"Who? One of: {', '.join(PEOPLE)}.\n")
        elif word == "in" and rest.lstrip("#") in _CHANNELS:
            self.channel = _CHANNELS[rest.lstrip("#")]
        elif word == "home":
            await self.show_home()
        elif word == "buttons":
            self.list_buttons()
        elif word == "/dcs-backup" and not rest:
            await self.open_form()
        elif word == "/dcs-backup":
            await self.setup.say(self.user, rest, self.channel)
            await asyncio.sleep(SETTLE)
        elif word.isdigit():
            await self.press(int(word))
        else:
            self.out.write("Not understood; type help.\n")
        return True

    async def open_form(self) -> None:
        """``/dcs-backup`` with no text: the bot opens the backup form (``views.open``), filled in here."""
        try:
            form = await self.setup.open_form(self.user, self.channel)
        except TimeoutError:
            self.flush()
            self.out.write("(no form opened)\n")
            return
        await self.fill_in(form)

    # --- the backup form ----------------------------------------------------------------------------

    async def ask(self, prompt: str) -> str:
        line = (await asyncio.to_thread(self.read_line, prompt)).strip()
        if line.lower() == CANCEL:
            raise FormCancelledError
        return line

    def show_form(self, form: View, when: str = "") -> None:
        self.flush()
        title = f"=== the backup form ({self._mention(self.user)}){when} ==="
        self.out.write(f"{title}\n{self.setup.slack.render_view(form)}=== end ===\n")

    async def fill_in(self, form: View) -> None:
        """Renders ``form``, asks for each of its inputs in turn, and submits it as its person; errors the
        bot puts on its fields are shown on them, and the inputs asked for again (Enter keeps an answer).

        What is typed is sent as typed (``force``): the bot checks every field itself, as it must, since
        what Slack's client lets through (a remark counted as it shows it) is not what DCS takes."""
        self.show_form(form)
        self.out.write(
            f'Fill it in at the prompts; Enter alone keeps what is in [brackets], "{CANCEL}" closes it.\n'
        )
        entered: dict[str, Any] = {}
        slack = self.setup.slack
        while True:
            try:
                for block in form.blocks:
                    if block.get("type") == "input" and isinstance(block.get("element"), dict):
                        await self._ask_input(form, block, entered)
            except FormCancelledError:
                slack.views.close(form)
                self.out.write("(form closed; nothing was sent)\n")
                return
            self.out.write(f"{self._mention(self.user)} presses [Continue]\n")
            answer = await slack.submit_view(
                self.setup.bot_url, user_id=self.user, view=form, entered=entered, force=True
            )
            if answer.closed:
                self.out.write("(the form closed; the card follows)\n")
                await asyncio.sleep(SETTLE)
                return
            if answer.problems:
                # Slack shows a generic error on the form then; the person can only close it.
                slack.views.close(form)
                self.out.write(f"(the form could not be sent: {'; '.join(answer.problems)})\n")
                return
            self.show_form(form, ", with the bot's answer on its fields")

    async def _ask_input(self, form: View, block: JsonDict, entered: dict[str, Any]) -> None:
        directory = self.setup.slack.directory()
        block_id, element = str(block.get("block_id")), block["element"]
        label = text_object(block.get("label"), directory) + (" (optional)" if block.get("optional") else "")
        kind = element.get("type")
        if kind == "external_select":
            entered[block_id] = await self._pick(
                form, label, str(element.get("action_id")), entered.get(block_id)
            )
        elif kind == "radio_buttons":
            values = [str(o.get("value")) for o in element.get("options") or [] if isinstance(o, dict)]
            initial = element.get("initial_option")
            kept = entered.get(block_id, initial.get("value") if isinstance(initial, dict) else None)
            while True:
                line = (await self.ask(f"{label} ({', '.join(values)}){_kept(kept)}> ")).lower()
                if line in values or (not line and kept is not None):
                    entered[block_id] = line or kept
                    return
                self.out.write(f"One of: {', '.join(values)}.\n")
        elif kind == "plain_text_input":
            limit = element.get("max_length")
            at_most = f", at most {limit} characters" if isinstance(limit, int) else ""
            kept = entered.get(block_id)
            line = await self.ask(f"{label}{at_most}; - for none{_kept(kept)}> ")
            entered[block_id] = None if line == "-" else (line or kept)
        elif kind == "checkboxes":
            options = [o for o in element.get("options") or [] if isinstance(o, dict)]
            what = "; ".join(text_object(o.get("text"), directory) for o in options)
            kept = "y" if entered.get(block_id) else "n"
            line = (await self.ask(f"{label}: {what}? (y/n){_kept(kept)}> ")).lower()
            entered[block_id] = (line or kept).startswith("y")
        elif kind in ("conversations_select", "channels_select"):
            kept = _CHANNEL_NAMES.get(entered.get(block_id, self.channel))
            while True:
                names = ", ".join(_CHANNEL_NAMES.values())
                line = (await self.ask(f"{label} ({names}){_kept(kept)}> ")).lstrip("#")
                chosen = _CHANNELS.get(line or kept or "")
                if chosen is not None:
                    entered[block_id] = chosen
                    return
                self.out.write(f"One of: {names}.\n")
        # Any other input is left as the form shows it.

    async def _pick(self, form: View, label: str, action_id: str, kept: JsonDict | None) -> JsonDict:
        """An external select: what is typed goes to the bot (``block_suggestion``), its options are
        listed numbered, and a number picks one."""
        kept_label = text_object(kept.get("text"), self.setup.slack.directory()) if kept else None
        typed = await self.ask(f"{label}: type part of its name{_kept(kept_label)}> ")
        if not typed and kept is not None:
            return kept
        while True:
            found = await self.setup.slack.suggest(
                self.setup.bot_url, user_id=self.user, view=form, action_id=action_id, typed=typed
            )
            if not found.options:
                why = f" ({'; '.join(found.problems)})" if found.problems else ""
                self.out.write(f"Nothing matches “{typed}” that you may back up here{why}.\n")
            for number, option_label in enumerate(found.labels, start=1):
                self.out.write(f"  {number}  {option_label}\n")
            line = await self.ask("Which one? A number, or type again> ")
            if line.isdigit() and 1 <= int(line) <= len(found.options):
                return found.options[int(line) - 1]
            typed = line

    async def press(self, number: int) -> None:
        choice = self.numbers.choices.get(number)
        if choice is None:
            self.out.write(f"No button {number}; type buttons to list the ones you can press.\n")
            return
        if choice.home_of is not None and choice.home_of != self.user:
            owner = _NAMES[choice.home_of]
            self.out.write(f"Button {number} is on the Home tab of @{owner}; type as {owner} first.\n")
            return
        if choice.message is not None and not choice.message.visible_for(self.user):
            owner = _NAMES.get(choice.message.visible_to or "", "someone else")
            self.out.write(f"Button {number} is on a message only @{owner} sees; type as {owner} first.\n")
            return
        if not self.live(choice):
            self.out.write(f"Button {number} is gone: what it was on changed since. Type buttons.\n")
            return
        self.out.write(f"{self._mention(self.user)} presses {self.acts_on(choice)}\n")
        slack, bot_url = self.setup.slack, self.setup.bot_url
        button = choice.button
        if choice.message is not None:
            # The value picks the button among several with one action_id (backup_pick: one per instance).
            status = await slack.click(
                bot_url,
                user_id=self.user,
                message=choice.message,
                action_id=button.action_id,
                value=button.value,
            )
        else:
            modals = self.setup.modals_opened(self.user)
            status = await slack.click_home(
                bot_url, user_id=self.user, action_id=button.action_id, value=button.value
            )
            if status == 200 and button.action_id == NEW_BACKUP_ACTION:
                await self._fill_in_new(modals)
                return
        if status != 200:
            # Slack shows a warning sign next to a button whose click the app did not take.
            self.out.write(f"(the bot did not take the click: HTTP {status or 'no answer'})\n")
        await asyncio.sleep(SETTLE)

    async def _fill_in_new(self, modals_before: int) -> None:
        try:
            form = await self.setup.new_modal(self.user, modals_before)
        except TimeoutError:
            self.out.write("(no form opened)\n")
            return
        await self.fill_in(form)


async def run_console(
    read_line: Callable[[str], str], out: TextIO, *, approval_ttl: float = CONSOLE_APPROVAL_TTL
) -> int:
    with tempfile.TemporaryDirectory(prefix="dcs-bot-console-") as folder:
        async with local_setup(Path(folder), approval_ttl=approval_ttl) as setup:
            console = Console(setup, out, read_line)
            out.write(HELP)
            while True:
                console.flush()
                try:
                    line = await asyncio.to_thread(read_line, console.prompt)
                except EOFError:
                    break
                try:
                    if not await console.handle(line):
                        break
                except EOFError:  # the input ended inside the form
                    break
            # What arrived while the last line was typed would otherwise never be shown.
            console.flush()
    return 0


def console() -> int:
    quiet_logs()
    try:
        return asyncio.run(run_console(input, sys.stdout))
    except KeyboardInterrupt:
        return 0
