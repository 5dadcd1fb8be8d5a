"""The flow: answering commands and clicks, submitting backups, settling interrupted submissions,
following backups and watching the estate — orchestration on the ports of :mod:`bot.core.ports`.

It may wait and log, but it owns no sockets, SQL or payloads and knows no DCS paths or error codes.
"""
