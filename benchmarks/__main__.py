"""``make bench``: the command benchmark (bot against a bare Bolt app), then the tracker's poll cost."""

import argparse

from benchmarks import commands, polling

parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
commands.add_arguments(parser)
parser.add_argument("--only", choices=("commands", "polling"), help="run one section only")
arguments = parser.parse_args()
status = 0
if arguments.only in (None, "commands"):
    status |= commands.main(commands.options_from(arguments))
if arguments.only in (None, "polling"):
    print("\n== polling: the tracker's DCS calls per cycle ==")
    status |= polling.main()
raise SystemExit(status)
