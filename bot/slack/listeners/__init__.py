"""Bolt listeners, registered through one function."""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from bot.slack.listeners import actions, commands, form, home
from bot.slack.listeners.runner import Runner


def register_listeners(app: AsyncApp, runner: Runner) -> None:
    commands.register(app, runner)
    actions.register(app, runner)
    form.register(app, runner)
    home.register(app, runner)
