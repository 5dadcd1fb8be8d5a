"""The core of the bot: pure rules (:mod:`bot.core.rules`) and the flow that applies them
(:mod:`bot.core.flow`), plus the protocols the adapters implement (:mod:`bot.core.ports`) and the
errors they raise (:mod:`bot.core.errors`).

Nothing in this package imports Slack, HTTP or database libraries.
"""
