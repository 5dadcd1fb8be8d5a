"""``dcs-bot demo`` and ``dcs-bot console``: the real bot against in-process stand-ins, no credentials."""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Iterable

from bot.console import run_console
from bot.demo import run_demo

BACKUP_ID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


#: A line to type once the console has shown what ``pattern`` matches: made from the match.
Awaited = tuple[str, Callable[[re.Match[str]], str]]
#: Enter pressed alone while waiting for the console to show something, at most (each waits a moment).
PATIENCE = 100


def scripted(lines: Iterable[str | Awaited], shown: io.StringIO | None = None) -> Callable[[str], str]:
    """A ``read_line`` that types ``lines`` one by one, then ends the input as Ctrl-D would.

    A line given as ``(pattern, make)`` is typed once ``pattern`` matches what the console printed to
    ``shown`` since the previous line was typed (Enter alone until then), as ``make(match)``.
    """
    pending = iter(lines)
    waiting: Awaited | None = None
    since = 0
    tries = 0

    def read_line(prompt: str) -> str:
        nonlocal waiting, since, tries
        del prompt
        if waiting is None:
            try:
                step = next(pending)
            except StopIteration:
                raise EOFError from None
            if isinstance(step, str):
                since = len(shown.getvalue()) if shown is not None else 0
                return step
            waiting, tries = step, 0
        assert shown is not None, "a line that waits needs the console's output"
        pattern, make = waiting
        found = re.compile(pattern, re.MULTILINE).search(shown.getvalue(), since)
        if found is None:
            tries += 1
            assert tries <= PATIENCE, f"the console never showed {pattern!r}:\n{shown.getvalue()}"
            return ""
        waiting, since = None, len(shown.getvalue())
        return make(found)

    return read_line


def index_of(text: str, pattern: str, after: int = 0) -> int:
    found = re.compile(pattern, re.MULTILINE).search(text, after)
    assert found is not None, f"{pattern!r} is not in the transcript after position {after}:\n{text}"
    return found.start()


async def test_the_demo_plays_the_whole_conversation() -> None:
    out = io.StringIO()

    assert await run_demo(out) == 0

    transcript = out.getvalue()
    # The command alone opens the backup form; its picker offers what alice may back up, in both regions.
    bare = index_of(transcript, r"^@alice: /dcs-backup$")
    form = index_of(transcript, r"^=== the backup form, as @alice sees it ===$", bare)
    index_of(transcript, r"^\[ Back up a DCS instance \]$", form)
    index_of(transcript, r"^Instance: \[Type part of its name v\]$", form)
    index_of(transcript, r"^Format: \( \) AOF: .*  \(•\) RDB: ", form)
    index_of(transcript, r"^\[Cancel\] \[Continue\]$", form)
    offered = index_of(
        transcript,
        r"^\(alice types “sess” into Instance; the picker offers: "
        r"eu-de/sessions-cluster, eu-nl/redis-nl-sessions\)$",
        form,
    )
    # Submitted, it brings up the typed command's card; confirmed, the backup runs.
    form_card = index_of(transcript, r"^    Back up \*eu-de/sessions-cluster\*\?$", offered)
    index_of(transcript, r"^    \*Remark\* from the form$", form_card)
    form_click = index_of(transcript, r"^@alice clicked \[Confirm\]$", form_card)
    index_of(
        transcript,
        r"^    :floppy_disk: @alice started an RDB backup of \*eu-de/sessions-cluster\*",
        form_click,
    )
    form_done = index_of(
        transcript,
        r"^    ↳     :white_check_mark: The backup of \*eu-de/sessions-cluster\* succeeded",
        form_click,
    )
    command = index_of(
        transcript, r'^@alice: /dcs-backup eu-de/redis-prod aof "before the migration"$', form_done
    )
    # The "Looking up" ack comes first; the card replaces it.
    looking = index_of(transcript, r"^DCS Backup \(only visible to @alice\): Looking up ", command)
    card = index_of(transcript, r"^DCS Backup updated the message \(only visible to @alice\):$", looking)
    buttons = index_of(transcript, r"^    \[Confirm\] \[Cancel\]$", card)
    click = index_of(transcript, r"^@alice clicked \[Confirm\]$", buttons)
    started = index_of(transcript, r"^    :floppy_disk: @alice started an AOF backup of .*Waiting", click)
    [backup_id] = re.findall(rf"^    backup_id `({BACKUP_ID})`", transcript[started:].splitlines()[1])
    # The channel message is kept current in place while the backup runs; the outcome is in its thread.
    updated = index_of(transcript, r"^DCS Backup updated the message:$", started)
    index_of(transcript, r"^    :floppy_disk: @alice started an AOF backup of .*\*Running\*: \d+ %", updated)
    index_of(
        transcript, r"^    ↳     :white_check_mark: The backup of \*eu-de/redis-prod\* succeeded", started
    )
    final = index_of(
        transcript, r"^    :white_check_mark: @alice started an AOF backup of .*\*Succeeded\* in ", updated
    )
    index_of(
        transcript,
        r"^\(the channel message, kept current in place by chat.update: "
        r"Waiting( → Running \d+ %)* → Succeeded\)$",
        final,
    )
    index_of(transcript, r"^--- #backup-alerts ---$")
    index_of(transcript, r"^@bob: /dcs-backup redis-prod rdb$")
    # The second region is addressed by its name, and a name both regions have gets both qualified forms.
    listed = index_of(transcript, r"^@alice: /dcs-backup list eu-nl/redis-prod$")
    index_of(transcript, r"Recent backups of \*eu-nl/redis-prod\*", listed)
    asked = index_of(transcript, r"^@alice: /dcs-backup redis-prod$", listed)
    index_of(transcript, r"`eu-de/redis-prod`", asked)
    index_of(transcript, r"`eu-nl/redis-prod`", asked)
    # An approval request that nobody answers: carol sees it on her Home tab, then it expires.
    staging = index_of(transcript, r'^@alice: /dcs-backup redis-staging rdb "four eyes"$', asked)
    index_of(transcript, r"one of @carol must approve", staging)
    waiting = index_of(
        transcript, r"^    :raised_hand: @alice asks to back up \*eu-de/redis-staging\*", staging
    )
    index_of(transcript, r"^    \[Approve\] \[Reject\]$", waiting)
    carol = index_of(
        transcript, r"^=== Home tab of @carol, while alice's request waits for her ===$", waiting
    )
    approvals = index_of(transcript, r"^# Waiting for your approval$", carol)
    index_of(transcript, r"^\*eu-de/redis-staging\*, RDB — “four eyes”$", approvals)
    index_of(transcript, r"^Requested by @alice in #ops", approvals)
    index_of(transcript, r"^\[Approve\] \[Reject\]$", approvals)
    expires = index_of(transcript, r"^\(nobody approves; 5 s later \(BOT_APPROVAL_TTL here\)", approvals)
    closed = index_of(
        transcript, r"^    :hourglass: This request expired: nobody approved the RDB backup", expires
    )
    told = index_of(
        transcript,
        r"^    ↳     :hourglass: @alice, nobody approved your RDB backup of \*eu-de/redis-staging\*",
        closed,
    )
    assert "[Approve]" not in transcript[closed:told], "the expired request's buttons are gone"
    index_of(transcript, r"^    ↳     \[Start over\]$", told)
    # alice's Home tab: what she may back up, and her requests with their outcome.
    alice = index_of(transcript, r"^=== Home tab of @alice, at the end ===$", told)
    index_of(transcript, r"^\[:floppy_disk: New backup\]$", alice)
    instances = index_of(transcript, r"^# Instances you may back up$", alice)
    index_of(transcript, r"^• \*redis-staging\* .* with a second person's approval$", instances)
    recent = index_of(transcript, r"^# Your recent requests$", instances)
    index_of(transcript, r"^• \*eu-de/redis-staging\* — Expired", recent)
    index_of(transcript, r"^• \*eu-de/redis-prod\* — Succeeded", recent)
    index_of(transcript, r"^• \*eu-de/sessions-cluster\* — Succeeded", recent)
    assert "backup finished: :white_check_mark: The backup of *eu-de/redis-prod* succeeded" in transcript
    # The channel message itself ended in the outcome.
    assert re.search(r"^channel message: :white_check_mark: .*\*Succeeded\* in ", transcript, re.MULTILINE)
    assert f"backup_id `{backup_id}`" in transcript.split("backup finished:")[1]
    assert "xoxb-" not in transcript and "demo failed" not in transcript


def number_of(label: str) -> str:
    """The pattern of a numbered button as the console shows it; its group 1 is the number."""
    return rf"\[(\d+): {re.escape(label)}\]"


async def test_the_console_numbers_buttons_and_says_what_a_number_acts_on() -> None:
    out = io.StringIO()
    typed: list[str | Awaited] = [
        '/dcs-backup eu-nl/redis-prod aof "from the console"',
        (number_of("Confirm"), lambda found: found.group(1)),
        # The card's other button went with the confirmation; its number does not pass to another.
        "2",
        "as bob",
        "/dcs-backup redis-prod",
        # A button on alice's card, pressed by bob.
        "1",
        "as someone",
        "as alice",
        "buttons",
    ]

    assert await run_console(scripted(typed, out), out) == 0

    shown = out.getvalue()
    card = index_of(shown, r"^DCS Backup updated the message \(only visible to @alice\):$")
    index_of(shown, r"^    \[1: Confirm\] \[2: Cancel\]$", card)
    pressed = index_of(
        shown,
        r"^@alice presses \[Confirm\] on DCS Backup's message in #ops \(only visible to @alice\): "
        r'"Back up \*eu-nl/redis-prod\*\?" — request \S+$',
        card,
    )
    click = index_of(shown, r"^@alice clicked \[Confirm\]$", pressed)
    started = index_of(
        shown, r"^    :floppy_disk: @alice started an AOF backup of \*eu-nl/redis-prod\*", click
    )
    index_of(shown, rf"^    backup_id `{BACKUP_ID}`", started)
    gone = index_of(shown, r"^Button 2 is gone: what it was on changed since\.", click)
    index_of(shown, r"^@bob: /dcs-backup redis-prod$", gone)
    refused = index_of(shown, r"You may not back up instances", gone)
    index_of(shown, r"^Button 1 is on a message only @alice sees; type as alice first\.$", refused)
    index_of(shown, r"^Who\? One of: alice, bob, carol\.$", refused)
    index_of(shown, r"^No button you can press now\.$", refused)
    assert shown.count("@alice clicked") == 1, "no number pressed a second button"
    assert "Type slash commands" in shown and "home           open your Home tab" in shown


async def test_the_approver_approves_by_number_from_the_home_tab() -> None:
    out = io.StringIO()
    typed: list[str | Awaited] = [
        '/dcs-backup redis-staging rdb "four eyes"',
        (number_of("Confirm"), lambda found: found.group(1)),
        # The approval request in the channel, numbered for anyone who sees it.
        (number_of("Approve"), lambda found: "buttons"),
        "as carol",
        "home",
        (r"# Waiting for your approval\n.*\n.*\n" + number_of("Approve"), lambda found: found.group(1)),
        "as alice",
        "home",
    ]

    assert await run_console(scripted(typed, out), out) == 0

    shown = out.getvalue()
    request = index_of(shown, r"^    :raised_hand: @alice asks to back up \*eu-de/redis-staging\*")
    index_of(shown, r"^    \[3: Approve\] \[4: Reject\]$", request)
    listed = index_of(
        shown, r"^  3  \[Approve\] on DCS Backup's message in #ops: .*redis-staging.* — request \S+$", request
    )
    home = index_of(shown, r"^=== your Home tab \(@carol\) ===$", listed)
    index_of(shown, r"^\[5: :floppy_disk: New backup\]$", home)
    index_of(shown, r"^\[6: Approve\] \[7: Reject\]$", home)
    pressed = index_of(
        shown,
        r"^@carol presses \[Approve\] on the Home tab of @carol: "
        r'"\*eu-de/redis-staging\*, RDB — “four eyes”" — request \S+$',
        home,
    )
    started = index_of(
        shown,
        r"^    :floppy_disk: @alice \(approved by @carol\) started an RDB backup of \*eu-de/redis-staging\*",
        pressed,
    )
    index_of(shown, rf"^    backup_id `{BACKUP_ID}`", started)
    index_of(shown, r"^alice in #ops> |^=== your Home tab \(@alice\) ===$", started)
    alice = index_of(shown, r"^=== your Home tab \(@alice\) ===$", started)
    index_of(shown, r"^# Your recent requests$", alice)


def option_of(label: str) -> str:
    """The pattern of a picker option as the console lists it; its group 1 is the number to type."""
    return rf"^  (\d+)  {re.escape(label)}$"


async def test_the_console_fills_in_the_form_and_shows_the_bots_errors_on_its_fields() -> None:
    out = io.StringIO()
    typed: list[str | Awaited] = [
        "/dcs-backup",
        "sess",
        (option_of("eu-de/sessions-cluster"), lambda found: found.group(1)),
        "",  # the format as the form has it: RDB
        "x" * 129,
        "",  # no dry run
        # The bot refused the remark on its field; each input is asked again, Enter keeping an answer.
        "",
        "aof",
        "from the console",
        "",
        (number_of("Confirm"), lambda found: found.group(1)),
    ]

    assert await run_console(scripted(typed, out), out) == 0

    shown = out.getvalue()
    form = index_of(shown, r"^=== the backup form \(@alice\) ===$")
    index_of(shown, r"^\[ Back up a DCS instance \]$", form)
    index_of(shown, r"^Instance: \[Type part of its name v\]$", form)
    index_of(shown, r"^\[Cancel\] \[Continue\]$", form)
    offered = index_of(shown, r"^  1  eu-de/sessions-cluster\n  2  eu-nl/redis-nl-sessions$", form)
    continued = index_of(shown, r"^@alice presses \[Continue\]$", offered)
    refused = index_of(
        shown, r"^=== the backup form \(@alice\), with the bot's answer on its fields ===$", continued
    )
    index_of(
        shown, r"^    ! The remark is 129 characters long; the limit is 128\. Please shorten it\.$", refused
    )
    closed = index_of(shown, r"^\(the form closed; the card follows\)$", refused)
    card = index_of(shown, r"^    Back up \*eu-de/sessions-cluster\*\?$", closed)
    index_of(shown, r"^    \*Format\* AOF$", card)
    index_of(shown, r"^    \*Remark\* from the console$", card)
    click = index_of(shown, r"^@alice clicked \[Confirm\]$", card)
    index_of(shown, r"^    :floppy_disk: @alice started an AOF backup of \*eu-de/sessions-cluster\*", click)
    assert shown.count("@alice presses [Continue]") == 2


async def test_new_backup_on_the_home_tab_opens_the_form_with_a_channel_to_choose() -> None:
    out = io.StringIO()
    typed: list[str | Awaited] = [
        "/dcs-backup",
        "cancel",
        "home",
        (number_of(":floppy_disk: New backup"), lambda found: found.group(1)),
        "backup-alerts",
        "redis-prod",
        (option_of("eu-nl/redis-prod"), lambda found: found.group(1)),
        "",
        "",
        "y",
        (number_of("Back up for real"), lambda found: "buttons"),
    ]

    assert await run_console(scripted(typed, out), out) == 0

    shown = out.getvalue()
    cancelled = index_of(shown, r"^\(form closed; nothing was sent\)$")
    pressed = index_of(
        shown, r"^@alice presses \[:floppy_disk: New backup\] on the Home tab of @alice", cancelled
    )
    form = index_of(shown, r"^=== the backup form \(@alice\) ===$", pressed)
    index_of(shown, r"^Channel: \[Pick a channel v\]$", form)
    index_of(shown, r"^  1  eu-de/redis-prod\n  2  eu-nl/redis-prod$", form)
    closed = index_of(shown, r"^\(the form closed; the card follows\)$", form)
    # The card goes to the channel chosen, visible to alice alone: a dry run, as ticked.
    alerts = index_of(shown, r"^--- #backup-alerts ---\nDCS Backup \(only visible to @alice\):$", closed)
    index_of(shown, r"^    :test_tube: \*Dry run\* — nothing was sent to DCS\.$", alerts)
    index_of(shown, r"^    \*Instance\* \*eu-nl/redis-prod\*$", alerts)
    index_of(shown, r"\[Back up for real\] on DCS Backup's message in #backup-alerts", alerts)
