"""The rules: pure values in, values out — the command grammar, policy decisions, the request state
machine, what DCS records mean for following and watching, and what the bot says, as data.

Nothing here performs I/O, waits, logs or knows a wire format; the flow (:mod:`bot.core.flow`) applies
these rules to what the ports bring in.
"""
