"""The /dcs-backup grammar: examples for every rule, and round-trip properties."""

from __future__ import annotations

import re
from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.core.rules.grammar import (
    REMARK_MAX_CHARS,
    BackupCommand,
    Command,
    FormCommand,
    HelpCommand,
    ListCommand,
    StatusCommand,
    UsageError,
    escape_slack_text,
    format_command,
    format_command_for_display,
    is_instance_id,
    is_instance_name,
    parse_command,
    unescape_slack_text,
)
from bot.core.rules.instances import BackupFormat

AOF = BackupFormat.AOF
RDB = BackupFormat.RDB
ID = "8a5f9c2e-3b4d-4e6f-9a1b-2c3d4e5f6a7b"


def backup(
    instance: str = "redis-prod",
    backup_format: BackupFormat | None = None,
    remark: str | None = None,
    *,
    dry_run: bool = False,
) -> BackupCommand:
    return BackupCommand(instance, backup_format, remark, dry_run)


ACCEPTED: list[tuple[str, Command | FormCommand]] = [
    # empty text asks for the form; help
    ("", FormCommand()),
    ("  \t\n\u00a0", FormCommand()),
    ("help", HelpCommand()),
    ("HeLp", HelpCommand()),
    ("help me with --dry-run and “quotes", HelpCommand()),
    # instance only: names and IDs
    ("redis-prod", backup()),
    ("  redis-prod  ", backup()),
    ("r", backup("r")),
    ("cache_01.eu-de", backup("cache_01.eu-de")),
    ("Ünïcode-名前", backup("Ünïcode-名前")),
    ("a" * 64, backup("a" * 64)),
    (ID, backup(ID)),
    (ID.upper(), backup(ID)),
    # qualified with a cloud (INTERFACE §2, §8); the cloud is stored lowercase
    ("eu-nl/redis-prod", backup("eu-nl/redis-prod")),
    ("EU-NL/redis-prod", backup("eu-nl/redis-prod")),
    (f"eu-de/{ID.upper()}", backup(f"eu-de/{ID}")),
    ("eu-nl/redis-prod rdb --dry-run", BackupCommand("eu-nl/redis-prod", BackupFormat.RDB, None, True)),
    ("list eu-nl/redis-prod", ListCommand("eu-nl/redis-prod")),
    ("a" * 32 + "/r", backup("a" * 32 + "/r")),
    ("aof", backup("aof")),
    # format, case-insensitive
    ("redis-prod aof", backup(backup_format=AOF)),
    ("redis-prod AOF", backup(backup_format=AOF)),
    ("redis-prod Rdb", backup(backup_format=RDB)),
    # quoted remarks: straight, typographic, German, single, mixed
    ('redis-prod "nightly"', backup(remark="nightly")),
    ('redis-prod aof "before upgrade"', backup(backup_format=AOF, remark="before upgrade")),
    ("redis-prod “before upgrade”", backup(remark="before upgrade")),
    ("redis-prod rdb „vor dem Update“", backup(backup_format=RDB, remark="vor dem Update")),
    ("redis-prod ”sv”", backup(remark="sv")),
    ('redis-prod "mixed”', backup(remark="mixed")),
    ("redis-prod ‘single’", backup(remark="single")),
    ("redis-prod 'straight single'", backup(remark="straight single")),
    ("redis-prod ‘Bob’s test’", backup(remark="Bob’s test")),
    ('redis-prod "say "hi""', backup(remark='say "hi"')),
    ("redis-prod aof “it's fine”", backup(backup_format=AOF, remark="it's fine")),
    ('redis-prod "  padded  "', backup(remark="padded")),
    ('redis-prod "two\nlines"', backup(remark="two\nlines")),
    ('redis-prod ""', backup()),
    ("redis-prod aof “ ”", backup(backup_format=AOF)),
    # rest-of-line remarks keep inner whitespace and everything else verbatim
    ("redis-prod aof nightly run", backup(backup_format=AOF, remark="nightly run")),
    ("redis-prod aof  a \t b  ", backup(backup_format=AOF, remark="a \t b")),
    ("redis-prod aof line one\nline two", backup(backup_format=AOF, remark="line one\nline two")),
    ("redis-prod\u00a0aof\u00a0nbsp\u00a0remark", backup(backup_format=AOF, remark="nbsp\u00a0remark")),
    ('redis-prod aof he said "hi"', backup(backup_format=AOF, remark='he said "hi"')),
    ("redis-prod aof don’t worry", backup(backup_format=AOF, remark="don’t worry")),
    ('redis-prod aof "test --dry-run mode"', backup(backup_format=AOF, remark="test --dry-run mode")),
    ("redis-prod aof — quick one", backup(backup_format=AOF, remark="— quick one")),
    ("redis-prod aof rdb", backup(backup_format=AOF, remark="rdb")),
    # Slack escaping
    ("redis-prod aof fix &amp; restart", backup(backup_format=AOF, remark="fix & restart")),
    ('redis-prod "fix &amp; restart"', backup(remark="fix & restart")),
    ("redis-prod aof &lt;!channel&gt; ping", backup(backup_format=AOF, remark="<!channel> ping")),
    ("redis-prod aof typed &amp;lt;", backup(backup_format=AOF, remark="typed &lt;")),
    ("redis-prod aof &quot;kept&quot; &#60;", backup(backup_format=AOF, remark="&quot;kept&quot; &#60;")),
    ('redis-prod "<@U123|bob> @here <!here>"', backup(remark="<@U123|bob> @here <!here>")),
    # words that confuse other layers are plain text here
    ("redis-prod aof payload=x&y=1", backup(backup_format=AOF, remark="payload=x&y=1")),
    ('redis-prod "payload = a &amp; b"', backup(remark="payload = a & b")),
    # multi-byte remarks
    ("redis-prod aof 备份 🚀 ñ", backup(backup_format=AOF, remark="备份 🚀 ñ")),
    # --dry-run in every allowed place, in every spelling
    ("redis-prod --dry-run", backup(dry_run=True)),
    ("redis-prod —dry-run", backup(dry_run=True)),
    ("redis-prod –dry-run", backup(dry_run=True)),
    ("redis-prod --DRY-RUN", backup(dry_run=True)),
    ("redis-prod --dry-run --dry-run", backup(dry_run=True)),
    ("redis-prod aof --dry-run", backup(backup_format=AOF, dry_run=True)),
    ("redis-prod --dry-run rdb", backup(backup_format=RDB, dry_run=True)),
    ('redis-prod --dry-run "x"', backup(remark="x", dry_run=True)),
    ('redis-prod "x" --dry-run', backup(remark="x", dry_run=True)),
    ("redis-prod “x” —dry-run", backup(remark="x", dry_run=True)),
    ('redis-prod aof "x"\n--dry-run', backup(backup_format=AOF, remark="x", dry_run=True)),
    ("redis-prod aof --dry-run nightly", backup(backup_format=AOF, remark="nightly", dry_run=True)),
    ("redis-prod aof nightly run --dry-run", backup(backup_format=AOF, remark="nightly run", dry_run=True)),
    ("redis-prod aof nightly —dry-run", backup(backup_format=AOF, remark="nightly", dry_run=True)),
    ("redis-prod aof a --dry-run —dry-run", backup(backup_format=AOF, remark="a", dry_run=True)),
    ("redis-prod aof a--dry-run", backup(backup_format=AOF, remark="a--dry-run")),
    # list and status
    ("list redis-prod", ListCommand("redis-prod")),
    ("LIST redis-prod", ListCommand("redis-prod")),
    ("List\u00a0redis-prod\n", ListCommand("redis-prod")),
    (f"list {ID.upper()}", ListCommand(ID)),
    (f"status {ID}", StatusCommand(ID)),
    (f"Status {ID.upper()}", StatusCommand(ID)),
    # invisible blanks separate
    ("redis-prod\u200baof", backup(backup_format=AOF)),
]


@pytest.mark.parametrize(("text", "expected"), ACCEPTED)
def test_accepted(text: str, expected: Command) -> None:
    assert parse_command(text) == expected


REJECTED: list[tuple[str, tuple[str, ...]]] = [
    # instance
    ("<@U123|bob>", ('"<@U123|bob>" is not an instance', "name", "ID")),
    ("#ops aof", ('"#ops" is not an instance',)),
    ("*", ('"*" is not an instance',)),
    ("-redis", ('"-redis" is not an instance',)),
    ("redis/prod/x", ("is not an instance", "cloud/name")),
    ("eu_nl/redis-prod", ("is not a cloud name",)),
    ("/redis-prod", ("is not a cloud name",)),
    ("eu-nl/", ("is not an instance",)),
    ("eu-nl/list", ("command word",)),
    ("eu-nl/--dry-run", ("not an option",)),
    ("a" * 33 + "/redis", ("is not a cloud name",)),
    ('"redis-prod"', ("without quotes",)),
    ("“redis-prod” aof", ("without quotes",)),
    ("a" * 65, ("too long", "65 characters", "64")),
    # reserved words as instances
    ("list", ("Which instance", "named list", "ID", "/dcs-backup list <instance>")),
    ("status", ("Which backup", "named status", "ID", "/dcs-backup status <backup_id>")),
    ("list list", ('"list" is a command word', "ID")),
    ("list HELP", ('"HELP" is a command word',)),
    # options
    ("redis-prod --force", ('"--force" is not an option', "--dry-run")),
    ("redis-prod —force", ('"—force" is not an option',)),
    ("redis-prod aof --force", ('"--force" is not an option', "quotes")),
    ("--dry-run redis-prod", ("after the instance",)),
    ("redis-prod aof test --dry-run mode", ("goes at the end", "in quotes")),
    ("--help", ('"--help" is not an option',)),
    ("list redis-prod --dry-run", ("only works for backups", "list")),
    (f"status {ID} —dry-run", ("only works for backups", "status")),
    # format
    (
        'redis-prod "nightly" aof',
        ("format before the remark",),
    ),
    (
        "redis-prod nightly",
        ('"nightly" is not a backup format. Use aof or rdb', '/dcs-backup redis-prod aof "nightly"'),
    ),
    (
        "redis-prod nightly run —dry-run",
        ('"nightly" is not a backup format', '/dcs-backup redis-prod aof "nightly run" --dry-run'),
    ),
    ("redis-prod aoff", ('"aoff" is not a backup format',)),
    # quotes
    ('redis-prod "nightly', ("never closed",)),
    ("redis-prod aof “nightly", ("never closed",)),
    ('redis-prod "nightly"backup', ("never closed",)),
    ("redis-prod ‘single”", ("never closed",)),
    ('redis-prod "nightly" please', ('"please" after the quoted remark', "--dry-run")),
    ('redis-prod aof "a" "b"', ('""b"" after the quoted remark',)),
    # list and status arguments
    ("list", ("Which instance",)),
    ("list a b", ('"b" after the instance',)),
    ("list <#C1|ops>", ("is not an instance",)),
    ("status", ("Which backup",)),
    ("status 1234", ('"1234" is not a backup ID',)),
    (f"status {ID} extra words", ('"extra words" after the backup ID',)),
]


@pytest.mark.parametrize(("text", "fragments"), REJECTED)
def test_rejected(text: str, fragments: tuple[str, ...]) -> None:
    result = parse_command(text)
    assert isinstance(result, UsageError)
    for fragment in fragments:
        assert fragment in result.message
    assert "/dcs-backup" in result.message


def test_remark_of_exactly_the_limit_is_accepted() -> None:
    remark = "é" * REMARK_MAX_CHARS
    assert parse_command(f'redis-prod "{remark}"') == backup(remark=remark)
    assert parse_command(f"redis-prod aof {remark}") == backup(backup_format=AOF, remark=remark)


def test_remark_over_the_limit_is_rejected_with_both_lengths() -> None:
    result = parse_command(f"redis-prod aof {'🚀' * (REMARK_MAX_CHARS + 1)}")
    assert isinstance(result, UsageError)
    assert "129 characters" in result.message
    assert "128" in result.message


def test_remark_length_is_counted_after_unescaping() -> None:
    remark = "&amp;" * REMARK_MAX_CHARS
    assert parse_command(f'redis-prod "{remark}"') == backup(remark="&" * REMARK_MAX_CHARS)


def test_surrounding_blanks_do_not_count_towards_the_limit() -> None:
    remark = "x" * REMARK_MAX_CHARS
    assert parse_command(f'redis-prod "   {remark}   "') == backup(remark=remark)


def test_long_user_input_is_shortened_in_messages() -> None:
    result = parse_command("redis-prod " + "n" * 500)
    assert isinstance(result, UsageError)
    assert len(result.message) < 300


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (ID, True),
        (ID.upper(), True),
        (ID[:-1], False),
        (ID + "0", False),
        (ID.replace("-", ""), False),
        ("{" + ID + "}", False),
        ("redis-prod", False),
        ("", False),
    ],
)
def test_is_instance_id(text: str, expected: bool) -> None:
    assert is_instance_id(text) is expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [("r", True), ("a" * 64, True), ("a" * 65, False), ("_x", False), (".x", False), ("a b", False)],
)
def test_is_instance_name(text: str, expected: bool) -> None:
    assert is_instance_name(text) is expected


# --- format_command ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "text"),
    [
        (HelpCommand(), "help"),
        (ListCommand("redis-prod"), "list redis-prod"),
        (StatusCommand(ID), f"status {ID}"),
        (backup(), "redis-prod"),
        (backup(backup_format=RDB, dry_run=True), "redis-prod rdb --dry-run"),
        (backup(remark="fix & <go>"), 'redis-prod "fix &amp; &lt;go&gt;"'),
        (backup(remark='say "hi" now'), 'redis-prod ‘say "hi" now’'),
        (backup(backup_format=AOF, remark='a" b’ c'), 'redis-prod aof a" b’ c'),
        (backup(backup_format=AOF, remark="a\" b' c", dry_run=True), "redis-prod aof a\" b' c --dry-run"),
    ],
)
def test_format_command(command: Command, text: str) -> None:
    assert format_command(command) == text
    assert parse_command(text) == command


def test_display_form_is_the_unescaped_wire_form() -> None:
    command = backup(remark="a &amp; <b>")
    assert format_command_for_display(command) == 'redis-prod "a &amp; <b>"'
    assert escape_slack_text(format_command_for_display(command)) == format_command(command)


@pytest.mark.parametrize(
    "command",
    [
        backup(" padded"),
        backup("list"),
        backup(ID.upper()),
        ListCommand("Help"),
        StatusCommand(ID.upper()),
        StatusCommand("redis-prod"),
        backup(remark=""),
        backup(remark=" x"),
        backup(remark="x" * (REMARK_MAX_CHARS + 1)),
        # needs quotes of both kinds, and no format to allow the unquoted form
        backup(remark="a\" b' c"),
        # needs both kinds of quotes, and may not stand unquoted either
        backup(backup_format=AOF, remark="\"a\" 'b' c"),
        backup(backup_format=AOF, remark="--x\" 'b' c"),
        backup(backup_format=AOF, remark="a\" b' --dry-run"),
    ],
)
def test_format_command_refuses_what_parse_command_never_returns(command: Command) -> None:
    with pytest.raises(ValueError, match=r"\w"):
        format_command(command)


# --- Properties -------------------------------------------------------------------------------------

_BLANKS = " \t\n\r\u00a0\u2003\u200b\ufeff"
_QUOTES = "\"“”„'‘’‚"
_GRAMMAR_WORDS = [
    "redis-prod",
    "r",
    ID,
    ID.upper(),
    "aof",
    "AOF",
    "rdb",
    "list",
    "LIST",
    "status",
    "help",
    "--dry-run",
    "—dry-run",
    "–DRY-RUN",
    "--force",
    "—x",
    "--",
    "&amp;",
    "&lt;",
    "&gt;",
    "&amp;lt;",
    "&",
    "<!channel>",
    "<@U123|bob>",
    "payload=1",
    *_QUOTES,
    *_BLANKS,
]

_QUOTED_FRAGMENTS = ['"nightly', 'run"', "“x”", "‘Bob’s", "test’", '"', "”", "'", '""', "„a“", "“a", "b”"]
_FIRST_WORDS = ["redis-prod", "redis-prod", "redis-prod", ID, "list", "Status", "help", "--dry-run", '"q"']
_SECOND_WORDS = ["aof", "RDB", "--dry-run", "—dry-run", *_QUOTED_FRAGMENTS]


@st.composite
def grammar_like_texts(draw: st.DrawFn) -> str:
    """Blank-separated words, most of them from the grammar, so that many texts parse."""
    word = st.one_of(
        st.sampled_from(_GRAMMAR_WORDS + _QUOTED_FRAGMENTS), st.text(max_size=4), st.uuids().map(str)
    )
    words = [
        draw(st.sampled_from(_FIRST_WORDS)),
        *draw(st.lists(st.sampled_from(_SECOND_WORDS) | word, max_size=1)),
        *draw(st.lists(word, max_size=6)),
    ]
    blanks = draw(st.lists(st.text(st.sampled_from(_BLANKS), min_size=1, max_size=2), min_size=len(words)))
    return "".join(blank + word for blank, word in zip(blanks, words, strict=False))


any_text = st.one_of(st.text(), grammar_like_texts())


@given(any_text)
def test_parse_never_raises_and_explains_errors(text: str) -> None:
    result = parse_command(text)
    if isinstance(result, UsageError):
        assert result.message
        assert "/dcs-backup" in result.message


@given(any_text)
def test_every_accepted_command_round_trips(text: str) -> None:
    command = parse_command(text)
    if not isinstance(command, UsageError):
        assert parse_command(format_command(command)) == command


@given(st.text())
def test_unescape_inverts_escape(text: str) -> None:
    assert unescape_slack_text(escape_slack_text(text)) == text


# The representable remarks, restated from the module doc independently of its implementation.
_BLANK_RUN = re.compile(r"[\s\u200b\u2060\ufeff]+")
_DOUBLE_CLOSERS = '"“”'
_SINGLE_CLOSERS = "'‘’"
_OPENERS = "\"“”„'‘‚"


def _is_blank(char: str) -> bool:
    return _BLANK_RUN.fullmatch(char) is not None


def _fits_in_quotes(remark: str, closers: str) -> bool:
    return not any(char in closers and _is_blank(after) for char, after in pairwise(remark))


def _can_stand_unquoted(remark: str) -> bool:
    words = _BLANK_RUN.split(remark)
    return not (
        remark[0] in _OPENERS
        or re.match(r"(--|[—–])[A-Za-z]", words[0])
        or re.fullmatch(r"(--|[—–])dry-run", words[-1], re.IGNORECASE)
    )


def _representable(remark: str, backup_format: BackupFormat | None) -> bool:
    return (
        _fits_in_quotes(remark, _DOUBLE_CLOSERS)
        or _fits_in_quotes(remark, _SINGLE_CLOSERS)
        or (backup_format is not None and _can_stand_unquoted(remark))
    )


def _strip_blanks(text: str) -> str:
    start, end = 0, len(text)
    while start < end and _is_blank(text[start]):
        start += 1
    while end > start and _is_blank(text[end - 1]):
        end -= 1
    return text[start:end]


remark_pieces = st.one_of(
    st.text(),
    st.sampled_from(
        [*_QUOTES, *_BLANKS, '" ', "' ", "’\n", "”\u00a0", "--dry-run", "—dry-run", "--x", "&amp;", "<", "&"]
    ),
)
remark_texts = (
    st.lists(remark_pieces, min_size=1, max_size=8)
    .map("".join)
    .map(_strip_blanks)
    .filter(lambda remark: 0 < len(remark) <= REMARK_MAX_CHARS)
)

ascii_names = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", fullmatch=True)
unicode_names = st.text(
    st.characters(categories=["L", "N"], include_characters="-_."), min_size=1, max_size=8
)
instances = st.one_of(
    st.uuids().map(str),
    st.one_of(ascii_names, unicode_names).filter(
        lambda name: (
            is_instance_name(name)
            and not is_instance_id(name)
            and name.lower() not in {"list", "status", "help"}
        )
    ),
)


@st.composite
def backup_commands(draw: st.DrawFn) -> BackupCommand:
    backup_format = draw(st.none() | st.sampled_from(BackupFormat))
    remark = draw(st.none() | remark_texts.filter(lambda remark: _representable(remark, backup_format)))
    return BackupCommand(draw(instances), backup_format, remark, draw(st.booleans()))


commands: st.SearchStrategy[Command] = st.one_of(
    backup_commands(),
    st.builds(ListCommand, instances),
    st.builds(StatusCommand, st.uuids().map(str)),
    st.just(HelpCommand()),
)


@given(commands)
def test_valid_commands_round_trip(command: Command) -> None:
    assert parse_command(format_command(command)) == command


@given(commands)
def test_format_is_canonical(command: Command) -> None:
    text = format_command(command)
    parsed = parse_command(text)
    assert not isinstance(parsed, UsageError)
    assert format_command(parsed) == text


@given(remark_texts, st.none() | st.sampled_from(BackupFormat))
def test_format_writes_exactly_the_representable_remarks(
    remark: str, backup_format: BackupFormat | None
) -> None:
    command = BackupCommand("redis-prod", backup_format, remark)
    if _representable(remark, backup_format):
        assert parse_command(format_command(command)) == command
    else:
        with pytest.raises(ValueError, match="cannot be written"):
            format_command(command)
