"""Where the bot's CPU goes: a summary of a py-spy profile (``python -m benchmarks --profile FILE``).

``python -m benchmarks.profile FILE`` reads py-spy's collapsed stacks (``--format raw``: one line per stack,
frames joined by ``;`` from the root, then the sample count) and prints the share of samples in which each
part of the bot appears anywhere on the stack (inclusive, so the parts overlap), then the functions that
were running themselves (leaf frames) most often. The benchmark records with ``--gil``: only the thread
holding the GIL is sampled, so the shares are shares of Python CPU time (SQLite's C code, which runs
without the GIL in aiosqlite's thread, is not in them).
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

#: (label, fragments): a sample belongs to the part when any of its frames contains one of the fragments.
PARTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("DCS calls (bot/dcs: client, signing, validation)", ("bot/dcs/",)),
    ("  of which signing (bot/dcs/signer.py)", ("bot/dcs/signer.py",)),
    ("  of which pydantic validation", ("pydantic",)),
    ("SQLite: the stores (bot/store) on the loop", ("bot/store/",)),
    ("SQLite: aiosqlite's thread", ("_connection_worker_thread (aiosqlite/",)),
    ("response_url posts (slack_sdk webhook client)", ("slack_sdk/webhook/",)),
    ("Bolt dispatch (slack_bolt)", ("slack_bolt/",)),
    ("  of which request verification", ("request_verification",)),
    ("Block Kit rendering (bot/slack/blocks.py)", ("bot/slack/blocks.py",)),
    ("the core's flow (bot/core/flow)", ("bot/core/flow/",)),
    ("logging (stdlib logging)", ("logging/__init__.py",)),
    ("aiohttp client (outgoing requests)", ("aiohttp/client", "aiohttp/connector.py")),
    ("aiohttp server (incoming requests)", ("aiohttp/web_protocol.py", "aiohttp/web_app.py")),
)

#: The same samples split without overlap: each goes to the first part (in this order) on its stack.
PARTITION: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("response_url posts (a new AsyncWebhookClient each)", ("slack_sdk/webhook/",)),
    ("DCS calls (client, signing, aiohttp, validation)", ("bot/dcs/",)),
    ("SQLite (stores on the loop + aiosqlite thread)", ("bot/store/", "aiosqlite/")),
    ("logging (access log and the bot's own lines)", ("logging/__init__.py",)),
    ("Bolt dispatch (middleware, listeners, ack)", ("slack_bolt/",)),
    ("aiohttp server (parsing, responses) around Bolt", ("aiohttp/web_",)),
    ("the rest of the core's flow, rules and rendering", ("bot/core/", "bot/slack/")),
    ("metrics (prometheus_client)", ("prometheus_client/",)),
)


@dataclass(frozen=True)
class Stack:
    frames: tuple[str, ...]
    samples: int


def parse(lines: Iterable[str]) -> list[Stack]:
    stacks = []
    for line in lines:
        text, _, count = line.rstrip("\n").rpartition(" ")
        if text and count.isdigit():
            stacks.append(Stack(tuple(text.split(";")), int(count)))
    return stacks


def shares(stacks: Sequence[Stack]) -> list[tuple[str, float]]:
    total = sum(stack.samples for stack in stacks) or 1
    result = []
    for label, fragments in PARTS:
        hit = sum(
            stack.samples
            for stack in stacks
            if any(fragment in frame for frame in stack.frames for fragment in fragments)
        )
        result.append((label, hit / total))
    return result


def partition(stacks: Sequence[Stack]) -> list[tuple[str, float]]:
    total = sum(stack.samples for stack in stacks) or 1
    counter: Counter[str] = Counter()
    for stack in stacks:
        label = next(
            (
                label
                for label, fragments in PARTITION
                if any(fragment in frame for frame in stack.frames for fragment in fragments)
            ),
            "other (event loop, asyncio, supervisor)",
        )
        counter[label] += stack.samples
    order = [label for label, _ in PARTITION] + ["other (event loop, asyncio, supervisor)"]
    return [(label, counter[label] / total) for label in order]


def leaves(stacks: Sequence[Stack], top: int = 25) -> list[tuple[str, float]]:
    total = sum(stack.samples for stack in stacks) or 1
    counter: Counter[str] = Counter()
    for stack in stacks:
        counter[stack.frames[-1]] += stack.samples
    return [(frame, count / total) for frame, count in counter.most_common(top)]


def report(stacks: Sequence[Stack]) -> str:
    total = sum(stack.samples for stack in stacks)
    lines = [f"{total} samples of the bot process (the thread holding the GIL); inclusive shares:"]
    lines += [f"  {share * 100:5.1f} %  {label}" for label, share in shares(stacks)]
    lines.append("the same samples without overlap (each to the first part that matches, in this order):")
    lines += [f"  {share * 100:5.1f} %  {label}" for label, share in partition(stacks)]
    lines.append("most frequent leaf frames (self time):")
    lines += [f"  {share * 100:5.1f} %  {frame}" for frame, share in leaves(stacks)]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    print(report(parse(Path(argv[0]).read_text().splitlines())))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
