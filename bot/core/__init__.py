"""The core: command grammar, policy decisions, the backup request state machine.

Nothing in this package performs I/O or imports Slack, HTTP or database libraries; adapters reach it
through the protocols in :mod:`bot.core.ports`.
"""
