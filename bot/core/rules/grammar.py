"""The ``/dcs-backup`` command grammar: slash-command text in, a command (or a polite usage error) out.

Pure functions, no I/O. The binding grammar is INTERFACE §2::

    /dcs-backup <instance> [aof|rdb] ["remark"] [--dry-run]
    /dcs-backup list <instance>
    /dcs-backup status <backup_id>
    /dcs-backup help

Decisions where the spec is silent:

- Text is Slack-escaped: exactly ``&lt;`` ``&gt;`` ``&amp;`` are unescaped, in one pass, so ``&amp;lt;``
  becomes ``&lt;``. ``format_command`` returns text in the same escaped form; ``format_command_for_display``
  returns what a person types.
- Blanks: every Unicode whitespace character (``str.isspace``: space, tab, newlines, NBSP, …) plus the
  invisible U+200B, U+2060 and U+FEFF. Any run of them separates words. Blank text asks for the backup
  form (:class:`FormCommand`, INTERFACE §2 and §11).
- The first word ``help``/``list``/``status`` (any case) selects that command; ``help`` ignores the rest.
  These words are never an instance, in any position: such an instance is addressed by its ID.
- Instance: an ID (UUID ``8-4-4-4-12`` hex digits, any case, stored lowercase) or a name: 1–64 characters,
  the first a letter or digit, the rest letters, digits, ``-``, ``_`` or ``.``. "Letter" and "digit" are
  Unicode-wide. The DCS API decides which names exist; the parser only rejects what cannot be one.
  Either may be qualified with a cloud (INTERFACE §8): ``eu-nl/redis-prod``, ``eu-nl/<id>``. A cloud name
  is ``[a-z0-9-]{1,32}`` (typed in any case, stored lowercase); the parser does not know which clouds
  exist, the flow does. :func:`split_instance` takes the text apart again.
- Format: ``aof``/``rdb`` in any case, only as the word right after the instance (``--dry-run`` may come
  between). After the format, the remark starts: if it is not quoted, it is the rest of the text.
- Quotes: a remark is quoted when its first character is an opening quote. Double: ``"`` ``“`` ``”`` ``„``
  open; ``"`` ``“`` ``”`` close, whichever opened. Single: ``'`` ``‘`` ``‚`` open; ``'`` ``‘`` ``’`` close.
  A closing quote counts only where a word ends (followed by a blank or the end of the text), so
  apostrophes and inner quotes work: ``‘Bob’s test’``, ``"say "hi""``.
- Remarks are trimmed of blanks at both ends (quoted or not); a blank remark means "no remark" (``None``).
  Inside, everything is kept verbatim (newlines, mentions, ``&``, ``=``…). At most 128 code points.
- ``--dry-run`` (also ``—dry-run``/``–dry-run``, which clients make of ``--``; any case) is a word of its
  own, allowed between the instance, the format and the remark, after a quoted remark, and at the end of an
  unquoted remark (where it is removed from the remark). Elsewhere in an unquoted remark it is an error: read
  as remark text it would turn an intended dry run into a real request.
  Repeating it is harmless. Before the instance, or with ``list``/``status``, it is an error.
- Any other word starting with ``--``/``—``/``–`` and a letter, where an instance, the format or the start
  of an unquoted remark is expected, is an unknown option (a remark starting with it must be quoted).

``format_command`` writes ``instance [format] [remark] [--dry-run]``; the remark in ``"…"`` if it fits,
else in ``‘…’``, else (only with a format) unquoted. A remark fits in quotes of one kind unless one of
that kind's closing quotes is directly followed by a blank inside it; it can stand unquoted unless it starts
with a quote or an option-like word, or ends with a ``--dry-run`` word. Remarks that fit none of these
(or any quoted form when no format is given) cannot be written; ``parse_command`` never returns them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from itertools import pairwise
from typing import Final, TypeAlias

from bot.core.rules.instances import BackupFormat

REMARK_MAX_CHARS: Final = 128
INSTANCE_NAME_MAX_CHARS: Final = 64

BACKUP_USAGE: Final = '/dcs-backup <instance> [aof|rdb] ["remark"] [--dry-run]'
LIST_USAGE: Final = "/dcs-backup list <instance>"
STATUS_USAGE: Final = "/dcs-backup status <backup_id>"
HELP_USAGE: Final = "/dcs-backup help"
USAGE_TEXT: Final = "\n".join(
    (
        f"{BACKUP_USAGE}   back up an instance (asks for confirmation)",
        f"{LIST_USAGE}   recent backups of an instance",
        f"{STATUS_USAGE}   one backup started through the bot",
        f"{HELP_USAGE}   this help",
        "An instance is a name or an ID, optionally after its cloud: eu-nl/redis-prod. "
        "An instance named list, status or help must be given by its ID.",
    )
)


@dataclass(frozen=True)
class BackupCommand:
    instance: str
    backup_format: BackupFormat | None
    remark: str | None
    dry_run: bool = False


@dataclass(frozen=True)
class ListCommand:
    instance: str


@dataclass(frozen=True)
class StatusCommand:
    backup_id: str


@dataclass(frozen=True)
class HelpCommand:
    pass


Command: TypeAlias = BackupCommand | ListCommand | StatusCommand | HelpCommand


@dataclass(frozen=True)
class FormCommand:
    """``/dcs-backup`` with no text: the person wants the backup form (a modal), not an answer."""


#: What a command's text can ask for: a command, or the form.
Parsed: TypeAlias = Command | FormCommand


@dataclass(frozen=True)
class UsageError:
    """Why the text is not a command: plain text for an ephemeral reply (the Slack layer escapes it)."""

    message: str


# --- Slack escaping ---------------------------------------------------------------------------------

_SLACK_ENTITIES: Final = {"&amp;": "&", "&lt;": "<", "&gt;": ">"}
_SLACK_ENTITY_RE: Final = re.compile("&(?:amp|lt|gt);")


def unescape_slack_text(text: str) -> str:
    # One pass, so "&amp;lt;" (a typed "&lt;") becomes "&lt;" and not "<".
    return _SLACK_ENTITY_RE.sub(lambda match: _SLACK_ENTITIES[match.group()], text)


def escape_slack_text(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# --- Words ------------------------------------------------------------------------------------------

# Invisible characters that paste and autocorrect leave behind; a user cannot see them, so they separate.
_INVISIBLE_BLANKS: Final = "\u200b\u2060\ufeff"
_WORD_RE: Final = re.compile(rf"[^\s{_INVISIBLE_BLANKS}]+")


@dataclass(frozen=True)
class _Word:
    text: str
    start: int
    end: int


def _is_blank(char: str) -> bool:
    return char.isspace() or char in _INVISIBLE_BLANKS


def _words(text: str, start: int = 0) -> list[_Word]:
    return [_Word(match.group(), match.start(), match.end()) for match in _WORD_RE.finditer(text, start)]


def _trim(text: str) -> str:
    start, end = 0, len(text)
    while start < end and _is_blank(text[start]):
        start += 1
    while end > start and _is_blank(text[end - 1]):
        end -= 1
    return text[start:end]


def _span(text: str, words: list[_Word]) -> str:
    """The raw text from the first to the last of ``words``, blanks between them kept."""
    return text[words[0].start : words[-1].end]


# --- Word shapes ------------------------------------------------------------------------------------

_RESERVED_WORDS: Final = frozenset({"list", "status", "help"})
_FORMATS: Final = {backup_format.value: backup_format for backup_format in BackupFormat}
_FORMAT_CHOICES: Final = " or ".join(_FORMATS)
_UUID_RE: Final = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_EXAMPLE_UUID: Final = "8a5f9c2e-3b4d-4e6f-9a1b-2c3d4e5f6a7b"
_NAME_PUNCTUATION: Final = frozenset("-_.")
_CLOUD_RE: Final = re.compile(r"[a-z0-9-]{1,32}")
CLOUD_NAME_MAX_CHARS: Final = 32
# macOS and iOS turn a typed "--" into an em dash; some keyboards make an en dash.
_DRY_RUN_RE: Final = re.compile(r"(?:--|[—–])dry-run", re.IGNORECASE)
_OPTION_LIKE_RE: Final = re.compile(r"(?:--|[—–])[A-Za-z]")
_DRY_RUN: Final = "--dry-run"

_DOUBLE_CLOSERS: Final = frozenset('"“”')
_SINGLE_CLOSERS: Final = frozenset("'‘’")
_CLOSERS_BY_OPENER: Final = {
    '"': _DOUBLE_CLOSERS,
    "“": _DOUBLE_CLOSERS,
    "”": _DOUBLE_CLOSERS,
    "„": _DOUBLE_CLOSERS,
    "'": _SINGLE_CLOSERS,
    "‘": _SINGLE_CLOSERS,
    "‚": _SINGLE_CLOSERS,
}
# What format_command writes, in order of preference: (opening, closing, the closers of that kind).
_QUOTE_STYLES: Final = (('"', '"', _DOUBLE_CLOSERS), ("‘", "’", _SINGLE_CLOSERS))


def is_instance_id(text: str) -> bool:
    """Whether ``text`` has the form of a DCS ID (a UUID, any case)."""
    return _UUID_RE.fullmatch(text) is not None


def is_instance_name(text: str) -> bool:
    """Whether ``text`` could be a DCS instance name (reserved words included; see the module doc)."""
    return (
        0 < len(text) <= INSTANCE_NAME_MAX_CHARS
        and text[0].isalnum()
        and all(char.isalnum() or char in _NAME_PUNCTUATION for char in text)
    )


def is_cloud_name(text: str) -> bool:
    """Whether ``text`` is a cloud name as the clouds file allows (``[a-z0-9-]{1,32}``)."""
    return _CLOUD_RE.fullmatch(text) is not None


@dataclass(frozen=True)
class InstanceAddress:
    """What a command's instance text names: ``target`` (a name, or a lowercase ID) in ``cloud``, or in
    whichever cloud has it when ``cloud`` is None."""

    cloud: str | None
    target: str

    @property
    def is_id(self) -> bool:
        return is_instance_id(self.target)

    def __str__(self) -> str:
        return self.target if self.cloud is None else f"{self.cloud}/{self.target}"


def split_instance(instance: str) -> InstanceAddress:
    """The parts of a command's (canonical) instance text: ``eu-nl/redis-prod`` → cloud and name."""
    cloud, slash, target = instance.partition("/")
    return InstanceAddress(cloud, target) if slash else InstanceAddress(None, instance)


def _is_reserved(word: str) -> bool:
    return word.lower() in _RESERVED_WORDS


def _is_dry_run_flag(word: str) -> bool:
    return _DRY_RUN_RE.fullmatch(word) is not None


def _is_option_like(word: str) -> bool:
    return _OPTION_LIKE_RE.match(word) is not None


def _opens_quote(word: str) -> bool:
    return word[:1] in _CLOSERS_BY_OPENER


def canonical_instance(text: str) -> str | None:
    """``text`` as a command's instance (a name, or a lowercase ID, optionally after a lowercase cloud), or
    None when it cannot be one — for instances that arrive other than typed (e.g. from the form)."""
    return _canonical_instance(text)


def _canonical_instance(word: str) -> str | None:
    cloud, slash, target = word.partition("/")
    if slash:
        if not is_cloud_name(cloud.lower()):
            return None
        bare = _canonical_instance(target)
        return None if bare is None or "/" in target else f"{cloud.lower()}/{bare}"
    if is_instance_id(word):
        return word.lower()
    if is_instance_name(word) and not _is_reserved(word):
        return word
    return None


# --- Messages ---------------------------------------------------------------------------------------

_ECHO_MAX_CHARS: Final = 40


def _echo(user_text: str) -> str:
    """The user's own text, quoted and shortened, for an error message."""
    if len(user_text) > _ECHO_MAX_CHARS:
        user_text = user_text[: _ECHO_MAX_CHARS - 1] + "…"
    return f'"{user_text}"'


def _usage_error(message: str, usage: str = BACKUP_USAGE) -> UsageError:
    return UsageError(f"{message}\nUsage: {usage}")


def _unknown_option(word: str, usage: str, *, may_be_remark: bool = False) -> UsageError:
    hint = " If it is part of the remark, please put the remark in quotes." if may_be_remark else ""
    return _usage_error(f"{_echo(word)} is not an option I know; the only one is {_DRY_RUN}.{hint}", usage)


def _instance_error(word: str, usage: str) -> UsageError:
    cloud, slash, target = word.partition("/")
    if slash and not _is_option_like(word):
        if not is_cloud_name(cloud.lower()):
            return _usage_error(
                f"{_echo(cloud)} is not a cloud name. Cloud names have 1–{CLOUD_NAME_MAX_CHARS} letters, "
                "digits and -, as in eu-nl/redis-prod.",
                usage,
            )
        if "/" in target or not target:
            return _usage_error(
                f"{_echo(word)} is not an instance. Please write cloud/name or cloud/ID, "
                "as in eu-nl/redis-prod.",
                usage,
            )
        return _instance_error(target, usage)
    if _is_option_like(word):
        return _unknown_option(word, usage)
    if _is_reserved(word):
        return _usage_error(
            f"{_echo(word)} is a command word, so an instance with that name has to be given by its ID.",
            usage,
        )
    if _opens_quote(word):
        return _usage_error("Please write the instance without quotes: its name or its ID.", usage)
    if len(word) > INSTANCE_NAME_MAX_CHARS and is_instance_name(word[:INSTANCE_NAME_MAX_CHARS]):
        return _usage_error(
            f"{_echo(word)} is too long for an instance name "
            f"({len(word)} characters; names have at most {INSTANCE_NAME_MAX_CHARS}).",
            usage,
        )
    return _usage_error(
        f"{_echo(word)} is not an instance. Please give the instance's name (letters, digits, - _ and ., "
        f"up to {INSTANCE_NAME_MAX_CHARS} characters) or its ID (like {_EXAMPLE_UUID}).",
        usage,
    )


def _parse_instance(word: str, usage: str) -> str | UsageError:
    instance = _canonical_instance(word)
    return instance if instance is not None else _instance_error(word, usage)


# --- parse_command ----------------------------------------------------------------------------------


def parse_command(text: str) -> Parsed | UsageError:
    """Parse the ``text`` of a ``/dcs-backup`` slash command, as Slack sends it (HTML-escaped)."""
    unescaped = unescape_slack_text(text)
    words = _words(unescaped)
    if not words:
        return FormCommand()
    keyword = words[0].text.lower()
    if keyword == "help":
        return HelpCommand()
    if keyword == "list":
        return _parse_list(unescaped, words[1:])
    if keyword == "status":
        return _parse_status(unescaped, words[1:])
    return _parse_backup(unescaped, words)


def _misplaced_dry_run(words: list[_Word], command_word: str, usage: str) -> UsageError | None:
    if any(_is_dry_run_flag(word.text) for word in words):
        return _usage_error(f"{_DRY_RUN} only works for backups, not for {command_word}.", usage)
    return None


def _unexpected_words(text: str, words: list[_Word], after: str, usage: str) -> UsageError:
    return _usage_error(f"I didn't expect {_echo(_span(text, words))} after the {after}.", usage)


def _parse_list(text: str, words: list[_Word]) -> ListCommand | UsageError:
    if (error := _misplaced_dry_run(words, "list", LIST_USAGE)) is not None:
        return error
    if not words:
        return _usage_error(
            "Which instance's backups should I list? (An instance named list has to be given by its ID.)",
            LIST_USAGE,
        )
    instance = _parse_instance(words[0].text, LIST_USAGE)
    if isinstance(instance, UsageError):
        return instance
    if len(words) > 1:
        return _unexpected_words(text, words[1:], "instance", LIST_USAGE)
    return ListCommand(instance)


def _parse_status(text: str, words: list[_Word]) -> StatusCommand | UsageError:
    if (error := _misplaced_dry_run(words, "status", STATUS_USAGE)) is not None:
        return error
    if not words:
        return _usage_error(
            "Which backup? Please give its ID. (An instance named status has to be given by its ID.)",
            STATUS_USAGE,
        )
    backup_id = words[0].text
    if not is_instance_id(backup_id):
        return _usage_error(
            f"{_echo(backup_id)} is not a backup ID. Backup IDs look like {_EXAMPLE_UUID}; "
            "I show the ID when a backup starts.",
            STATUS_USAGE,
        )
    if len(words) > 1:
        return _unexpected_words(text, words[1:], "backup ID", STATUS_USAGE)
    return StatusCommand(backup_id.lower())


def _take_leading_flags(words: list[_Word]) -> tuple[list[_Word], bool]:
    index = 0
    while index < len(words) and _is_dry_run_flag(words[index].text):
        index += 1
    return words[index:], index > 0


def _drop_trailing_flags(words: list[_Word]) -> tuple[list[_Word], bool]:
    end = len(words)
    while end > 0 and _is_dry_run_flag(words[end - 1].text):
        end -= 1
    return words[:end], end < len(words)


def _parse_backup(text: str, words: list[_Word]) -> BackupCommand | UsageError:
    first = words[0].text
    if _is_dry_run_flag(first):
        return _usage_error(f"Please put {_DRY_RUN} after the instance, not before it.")
    instance = _parse_instance(first, BACKUP_USAGE)
    if isinstance(instance, UsageError):
        return instance

    rest, dry_run = _take_leading_flags(words[1:])
    if not rest:
        return BackupCommand(instance, None, None, dry_run)
    second = rest[0].text
    if _opens_quote(second):
        return _backup_with_quoted_remark(text, rest[0].start, instance, None, dry_run)
    if _is_option_like(second):
        return _unknown_option(second, BACKUP_USAGE, may_be_remark=True)
    backup_format = _FORMATS.get(second.lower())
    if backup_format is None:
        return _not_a_format_error(text, instance, rest, dry_run)

    rest, more_dry_run = _take_leading_flags(rest[1:])
    dry_run = dry_run or more_dry_run
    if not rest:
        return BackupCommand(instance, backup_format, None, dry_run)
    if _opens_quote(rest[0].text):
        return _backup_with_quoted_remark(text, rest[0].start, instance, backup_format, dry_run)
    if _is_option_like(rest[0].text):
        return _unknown_option(rest[0].text, BACKUP_USAGE, may_be_remark=True)

    remark_words, trailing_dry_run = _drop_trailing_flags(rest)
    if any(_is_dry_run_flag(word.text) for word in remark_words):
        # Reading it as remark text would turn an intended dry run into a real backup request.
        return _usage_error(
            f"{_DRY_RUN} goes at the end of the command. To use those words in a remark, put the remark "
            f'in quotes: /dcs-backup {instance} {backup_format} "…" {_DRY_RUN}'
        )
    remark = _checked_remark(_span(text, remark_words))
    if isinstance(remark, UsageError):
        return remark
    return BackupCommand(instance, backup_format, remark, dry_run or trailing_dry_run)


def _not_a_format_error(text: str, instance: str, words: list[_Word], dry_run: bool) -> UsageError:
    bad = _echo(words[0].text)
    remark_words, trailing_dry_run = _drop_trailing_flags(words)
    dry_run = dry_run or trailing_dry_run
    remark = _trim(_span(text, remark_words))
    quoted = _quoted_remark(remark) if len(remark) <= REMARK_MAX_CHARS else None
    if quoted is None:
        return _usage_error(
            f"{bad} is not a backup format. Use {_FORMAT_CHOICES}, and put a remark in quotes."
        )
    flag = f" {_DRY_RUN}" if dry_run else ""
    example = f"/dcs-backup {instance} {BackupFormat.AOF.value} {quoted}{flag}"
    return UsageError(
        f"{bad} is not a backup format. Use {_FORMAT_CHOICES} — and put a remark in quotes: {example}"
    )


def _find_closing_quote(text: str, opener_at: int) -> int | None:
    closers = _CLOSERS_BY_OPENER[text[opener_at]]
    for index in range(opener_at + 1, len(text)):
        if text[index] in closers and (index + 1 == len(text) or _is_blank(text[index + 1])):
            return index
    return None


def _backup_with_quoted_remark(
    text: str, opener_at: int, instance: str, backup_format: BackupFormat | None, dry_run: bool
) -> BackupCommand | UsageError:
    closer_at = _find_closing_quote(text, opener_at)
    if closer_at is None:
        return _usage_error(
            f"The remark's opening quote {text[opener_at]} is never closed. A closing quote counts only "
            'at the end of a word, as in "nightly backup".'
        )
    trailing, trailing_dry_run = _take_leading_flags(_words(text, closer_at + 1))
    if trailing:
        return _text_after_remark_error(text, trailing, backup_format)
    remark = _checked_remark(text[opener_at + 1 : closer_at])
    if isinstance(remark, UsageError):
        return remark
    return BackupCommand(instance, backup_format, remark, dry_run or trailing_dry_run)


def _text_after_remark_error(
    text: str, trailing: list[_Word], backup_format: BackupFormat | None
) -> UsageError:
    word = trailing[0].text
    if backup_format is None and word.lower() in _FORMATS:
        return _usage_error("Please put the format before the remark, right after the instance.")
    return _usage_error(
        f"I didn't expect {_echo(_span(text, trailing))} after the quoted remark; "
        f"only {_DRY_RUN} may follow it."
    )


def check_remark(raw: str) -> str | UsageError | None:
    """A remark as the command takes it: trimmed, None when blank, an error beyond the API's limit
    (:data:`REMARK_MAX_CHARS` code points, as DCS counts) — for remarks that arrive other than typed, so
    the error carries no usage line of the typed command."""
    remark = _trim(raw)
    if not remark:
        return None
    if len(remark) > REMARK_MAX_CHARS:
        return UsageError(
            f"The remark is {len(remark)} characters long; the limit is {REMARK_MAX_CHARS}. "
            "Please shorten it."
        )
    return remark


def _checked_remark(raw: str) -> str | UsageError | None:
    checked = check_remark(raw)
    return _usage_error(checked.message) if isinstance(checked, UsageError) else checked


# --- format_command ---------------------------------------------------------------------------------


def format_command(command: Parsed) -> str:
    """Canonical text for ``command``, escaped as Slack sends it: ``parse_command`` gives ``command`` back.

    Raises ``ValueError`` for a command ``parse_command`` cannot return (see the module doc).
    """
    return escape_slack_text(format_command_for_display(command))


def format_command_for_display(command: Parsed) -> str:
    """Canonical text for ``command`` as a person types it (not escaped); raises like ``format_command``."""
    if isinstance(command, FormCommand):
        return ""
    if isinstance(command, HelpCommand):
        return "help"
    if isinstance(command, ListCommand):
        return f"list {_checked_instance(command.instance)}"
    if isinstance(command, StatusCommand):
        if not is_instance_id(command.backup_id) or command.backup_id != command.backup_id.lower():
            raise ValueError("a backup ID must be a lowercase UUID")
        return f"status {command.backup_id}"
    return _format_backup(command)


def _checked_instance(instance: str) -> str:
    if _canonical_instance(instance) != instance:
        raise ValueError("not an instance name, or a lowercase instance ID, that the grammar accepts")
    return instance


def _format_backup(command: BackupCommand) -> str:
    parts = [_checked_instance(command.instance)]
    if command.backup_format is not None:
        parts.append(command.backup_format.value)
    if command.remark is not None:
        parts.append(_remark_form(command.remark, has_format=command.backup_format is not None))
    if command.dry_run:
        parts.append(_DRY_RUN)
    return " ".join(parts)


def _remark_form(remark: str, *, has_format: bool) -> str:
    if not remark or _trim(remark) != remark or len(remark) > REMARK_MAX_CHARS:
        raise ValueError(f"a remark must be 1-{REMARK_MAX_CHARS} characters without blanks at either end")
    quoted = _quoted_remark(remark)
    if quoted is not None:
        return quoted
    if has_format and _can_stand_unquoted(remark):
        return remark
    raise ValueError("this remark cannot be written in the command grammar")


def _quoted_remark(remark: str) -> str | None:
    for opening, closing, closers in _QUOTE_STYLES:
        if not _has_closer_before_blank(remark, closers):
            return f"{opening}{remark}{closing}"
    return None


def _has_closer_before_blank(remark: str, closers: frozenset[str]) -> bool:
    return any(char in closers and _is_blank(after) for char, after in pairwise(remark))


def _can_stand_unquoted(remark: str) -> bool:
    words = _words(remark)
    return not (
        _opens_quote(words[0].text)
        or _is_option_like(words[0].text)
        or any(_is_dry_run_flag(word.text) for word in words)
    )
