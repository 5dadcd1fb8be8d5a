"""Bolt middleware: what every request goes through before a listener sees it."""
