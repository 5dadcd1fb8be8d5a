"""``dcs-bot demo`` and ``dcs-bot console``: the real bot against in-process stand-ins, no credentials."""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Iterable

from bot.demo import run_console, run_demo

BACKUP_ID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


def scripted(lines: Iterable[str]) -> Callable[[str], str]:
    """A ``read_line`` that types ``lines`` one by one, then ends the input as Ctrl-D would."""
    pending = iter(lines)

    def read_line(prompt: str) -> str:
        del prompt
        try:
            return next(pending)
        except StopIteration:
            raise EOFError from None

    return read_line


def index_of(text: str, pattern: str, after: int = 0) -> int:
    found = re.compile(pattern, re.MULTILINE).search(text, after)
    assert found is not None, f"{pattern!r} is not in the transcript after position {after}:\n{text}"
    return found.start()


async def test_the_demo_plays_the_whole_conversation() -> None:
    out = io.StringIO()

    assert await run_demo(out) == 0

    transcript = out.getvalue()
    command = index_of(transcript, r'^@alice: /dcs-backup eu-de/redis-prod aof "before the migration"$')
    # The "Looking up" ack comes first; the card replaces it.
    looking = index_of(transcript, r"^DCS Backup \(only visible to @alice\): Looking up ", command)
    card = index_of(transcript, r"^DCS Backup updated the message \(only visible to @alice\):$", looking)
    buttons = index_of(transcript, r"^    \[Confirm\] \[Cancel\]$", card)
    click = index_of(transcript, r"^@alice clicked \[Confirm\]$", buttons)
    started = index_of(transcript, r"^    :floppy_disk: @alice started an AOF backup of .*Waiting", click)
    [backup_id] = re.findall(rf"^    backup_id `({BACKUP_ID})`", transcript[started:].splitlines()[1])
    # The channel message is kept current in place while the backup runs.
    index_of(transcript, r"^DCS Backup updated the message:$", started)
    index_of(
        transcript, r"^    ↳     :white_check_mark: The backup of \*eu-de/redis-prod\* succeeded", started
    )
    index_of(transcript, r"^--- #backup-alerts ---$")
    index_of(transcript, r"^@bob: /dcs-backup redis-prod rdb$")
    # The second region is addressed by its name, and a name both regions have gets both qualified forms.
    listed = index_of(transcript, r"^@alice: /dcs-backup list eu-nl/redis-prod$")
    index_of(transcript, r"Recent backups of \*eu-nl/redis-prod\*", listed)
    asked = index_of(transcript, r"^@alice: /dcs-backup redis-prod$", listed)
    index_of(transcript, r"`eu-de/redis-prod`", asked)
    index_of(transcript, r"`eu-nl/redis-prod`", asked)
    assert "backup finished: :white_check_mark: The backup of *eu-de/redis-prod* succeeded" in transcript
    # The channel message itself ended in the outcome.
    assert re.search(r"^channel message: :white_check_mark: .*\*Succeeded\* in ", transcript, re.MULTILINE)
    assert f"backup_id `{backup_id}`" in transcript.split("backup finished:")[1]
    assert "xoxb-" not in transcript and "demo failed" not in transcript


async def test_the_console_shows_the_card_and_the_result() -> None:
    out = io.StringIO()
    typed = [
        '/dcs-backup eu-nl/redis-prod aof "from the console"',
        "1",
        "as bob",
        "/dcs-backup redis-prod",
    ]

    assert await run_console(scripted(typed), out) == 0

    shown = out.getvalue()
    card = index_of(shown, r"^DCS Backup (updated the message )?\(only visible to @alice\):$")
    index_of(shown, r"^    \[Confirm\] \[Cancel\]$", card)
    click = index_of(shown, r"^@alice clicked \[Confirm\]$", card)
    started = index_of(shown, r"^    :floppy_disk: @alice started an AOF backup of ", click)
    index_of(shown, rf"^    backup_id `{BACKUP_ID}`", started)
    index_of(shown, r"^@bob: /dcs-backup redis-prod$", click)
    index_of(shown, r"You may not back up instances", click)
    assert "Type slash commands" in shown, "the console starts with its help"
