"""``make bench``: the command benchmark (bot against a bare Bolt app), the tracker's poll cost, then the
store's confirm and audit write latency on SQLite and PostgreSQL."""

import argparse

from benchmarks import commands, polling, store

parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
commands.add_arguments(parser)
parser.add_argument("--only", choices=("commands", "polling", "store"), help="run one section only")
arguments = parser.parse_args()
status = 0
if arguments.only in (None, "commands"):
    status |= commands.main(commands.options_from(arguments))
if arguments.only in (None, "polling"):
    print("\n== polling: the tracker's DCS calls per cycle ==")
    status |= polling.main()
if arguments.only in (None, "store"):
    print("\n== store: confirm and audit write latency, SQLite and PostgreSQL ==")
    status |= store.main()
raise SystemExit(status)
