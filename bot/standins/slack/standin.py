"""A local stand-in for Slack, playing both sides, composed of focused parts.

Towards the bot it is Slack's Web API (only the methods the bot calls, :mod:`~bot.standins.slack.web_api`),
response_urls (:mod:`~bot.standins.slack.response_urls`) and, with an app-level token, Socket Mode
(:mod:`~bot.standins.slack.socket_mode`), all served by :mod:`~bot.standins.slack.server`. Towards the user
it is the Slack client (:mod:`~bot.standins.slack.driver`): it sends slash commands and button clicks to
the bot. In between it keeps the timeline of what people see (:mod:`~bot.standins.slack.timeline`) and the
traffic the bot sent (:mod:`~bot.standins.slack.traffic`), and offers waits on both
(:mod:`~bot.standins.slack.waits`).

:class:`SlackStandIn` only wires these parts together; its parts are public (``workspace``, ``timeline``,
``server``, ``user``, ``waits``, ``socket``, ``traffic``) and the names tests use most are bound on it as
shorthands (``slack.send_command`` is ``slack.user.send_command``).

Faults: one entry point, :meth:`SlackStandIn.inject`, takes a :class:`~bot.standins.faults.Fault` naming a
Web API method (or ``"response_url"``), what the bot gets, how often, after what delay, and whether the call
takes effect first::

    slack.inject(Fault(Answer.HTML, target="chat.postMessage"))                # a gateway's 502 page
    slack.inject(Fault(Answer.EMPTY))                                          # any method: empty 200
    slack.inject(Fault(Answer.NOTHING, target="chat.postMessage", applied=True))  # posted, no answer
    slack.inject(Fault(Answer.NORMAL, target="usergroups.users.list", delay=10))   # slower than the bot waits
    slack.inject(Fault(Answer.TRUNCATED, target="response_url"))               # applied, half an answer

:meth:`SlackStandIn.fail` is the shorthand for Slack's own errors (``ratelimited`` is a 429 with
``Retry-After``), and ``fail_usergroups`` makes every user-group look-up fail (e.g. on a free plan).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from aiohttp import web

from bot.standins.faults import Answer, Fault
from bot.standins.slack.delivery import SLACK_ACK_TIMEOUT
from bot.standins.slack.driver import CommandResult, SlackUser, Submitted, Suggestions
from bot.standins.slack.render import render_transcript, render_view
from bot.standins.slack.response_urls import ResponseUrls
from bot.standins.slack.server import SlackServer
from bot.standins.slack.socket_mode import SocketModeServer
from bot.standins.slack.timeline import Button, Message, Timeline, find_buttons
from bot.standins.slack.traffic import Traffic
from bot.standins.slack.views import View, Views
from bot.standins.slack.waits import ChangeSignal, Waits
from bot.standins.slack.web_api import WebApi
from bot.standins.slack.workspace import Workspace

__all__ = ["SLACK_STANDIN", "CommandResult", "SlackStandIn", "Submitted", "Suggestions", "View"]


class SlackStandIn:
    """Slack for one workspace with one app installed. See the module docstring."""

    def __init__(
        self,
        *,
        signing_secret: str,
        bot_token: str,
        app_token: str | None = None,
        team_id: str = "T0DEMO",
        team_domain: str = "demo",
        team_name: str = "Demo Workspace",
        app_id: str = "A0DCSBACKUP",
        bot_user_id: str = "U0DCSBOT",
        bot_id: str = "B0DCSBOT",
        bot_name: str = "DCS Backup",
        verification_token: str = "emulated-verification-token",
        accept_unknown_channels: bool = True,
        ack_timeout: float | None = SLACK_ACK_TIMEOUT,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """``app_token`` (``xapp-…``) enables Socket Mode. ``clock`` drives message timestamps, response_url
        expiry and Socket Mode records (request signatures always use real time, because the bot checks
        them against its own clock)."""
        changes = ChangeSignal()
        self.workspace = Workspace(
            team_id=team_id,
            team_domain=team_domain,
            team_name=team_name,
            bot_user_id=bot_user_id,
            bot_id=bot_id,
            bot_name=bot_name,
            app_id=app_id,
            accept_unknown_channels=accept_unknown_channels,
        )
        self.timeline = Timeline(clock=clock, on_change=changes.notify)
        self.socket = SocketModeServer(app_id=app_id, clock=clock, on_change=changes.notify)
        self.traffic = Traffic(on_change=changes.notify)
        self.views = Views(clock=clock, on_change=changes.notify)
        response_urls = ResponseUrls(self.timeline, bot_user_id=bot_user_id, clock=clock)
        web_api = WebApi(
            self.workspace,
            self.timeline,
            self.views,
            bot_token=bot_token,
            app_token=app_token,
            open_socket=lambda: self.socket.issue_url(self.server.base_url),
        )
        self.server = SlackServer(web_api, response_urls, self.socket, self.traffic)
        self.server.app()[SLACK_STANDIN] = self
        self.user = SlackUser(
            self.workspace,
            self.timeline,
            response_urls,
            self.socket,
            self.views,
            signing_secret=signing_secret,
            verification_token=verification_token,
            base_url=lambda: self.server.base_url,
            ack_timeout=ack_timeout,
        )
        self.waits = Waits(changes, self.traffic, self.timeline, self.socket)

        # Shorthands: the parts hold the behaviour; these are the names tests and the demo use most.
        self.app = self.server.app
        self.bind = self.server.bind
        self.start = self.server.start
        self.stop = self.server.stop
        self.inject = self.server.inject

        self.add_channel = self.workspace.add_channel
        self.set_user = self.workspace.set_user
        self.set_usergroup = self.workspace.set_usergroup
        self.fail_usergroups = self.workspace.fail_usergroups
        self.directory = self.workspace.directory

        self.send_command = self.user.send_command
        self.click = self.user.click
        self.build_click = self.user.build_click
        self.send_interactive = self.user.send_interactive
        self.open_home = self.user.open_home
        self.click_home = self.user.click_home
        self.build_home_click = self.user.build_home_click
        self.signed_headers = self.user.signed_headers
        self.issue_response_url = self.user.issue_response_url
        self.response_url_state = self.user.response_url_state
        self.socket_delivery = self.user.socket_delivery
        self.send_shortcut = self.user.send_shortcut
        self.suggest = self.user.suggest
        self.submit_view = self.user.submit_view
        self.click_in_view = self.user.click_in_view

        self.modals_for = self.views.modals_for
        self.home_of = self.views.home_of
        self.home_views = self.views.home_views

        self.calls = self.traffic.calls
        self.response_posts = self.traffic.response_posts
        self.clear_calls = self.traffic.clear_calls

        self.wait_until = self.waits.wait_until
        self.wait_for = self.waits.wait_for
        self.wait_for_responses = self.waits.wait_for_responses
        self.wait_for_message = self.waits.wait_for_message
        self.wait_for_socket = self.waits.wait_for_socket

        self.channel_messages = self.timeline.channel_messages
        self.thread = self.timeline.thread
        self.ephemeral_for = self.timeline.ephemeral_for
        self.visible_to = self.timeline.visible_to

    @property
    def base_url(self) -> str:
        return self.server.base_url

    @property
    def api_url(self) -> str:
        """The Web API base URL for ``AsyncWebClient(base_url=...)``, with the trailing slash it needs."""
        return self.server.api_url

    def fail(
        self,
        method: str,
        error: str = "ratelimited",
        *,
        status: int | None = None,
        retry_after: int | None = None,
        times: int = 1,
    ) -> None:
        """The next ``times`` calls of ``method`` fail with Slack's ``error``.

        ``ratelimited`` defaults to HTTP 429 with ``Retry-After: 1`` as Slack sends it; others to HTTP 200.
        """
        fault = Fault(
            Answer.ERROR, target=method, times=times, status=status, error=error, retry_after=retry_after
        )
        self.inject(fault)

    def messages(self) -> list[Message]:
        """Every message not deleted, in the order they were posted."""
        return [m for m in self.timeline.messages if not m.deleted]

    @staticmethod
    def buttons(message: Message) -> list[Button]:
        return find_buttons(message.blocks)

    def render_home(self, user_id: str) -> str:
        """``user_id``'s Home tab as they read it, as the bot last published it."""
        home = self.views.home_of(user_id)
        return "(empty Home tab)\n" if home is None else self.render_view(home)

    def render_transcript(self) -> str:
        return render_transcript(self.timeline.events, self.workspace.directory())

    def render_view(self, view: View) -> str:
        """The view as its person sees it, with the errors on its fields."""
        return render_view(view.definition, self.workspace.directory(), errors=view.errors)

    async def wait_for_modal(self, user_id: str, count: int = 1, timeout: float = 5.0) -> View:
        """The ``count``-th modal ever opened for ``user_id``, once it is there."""
        await self.wait_until(
            lambda: len(self.views.opened_for(user_id)) >= count, timeout=timeout, what=f"modal {count}"
        )
        return self.views.opened_for(user_id)[count - 1]


SLACK_STANDIN = web.AppKey("slack_standin", SlackStandIn)
