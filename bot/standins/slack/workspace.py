"""Who and what exists in the Slack stand-in's workspace: the team, the app, channels, people, user groups.

Arranged by tests and the demo (``add_channel``, ``set_user``, ``set_usergroup``, ``fail_usergroups``);
read by the Web API (may the bot post there? who is in that group?) and by the user-side driver (names
for payloads and the transcript).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.standins.slack.payloads import Person, Place
from bot.standins.slack.render import Directory
from bot.standins.slack.timeline import JsonDict, Message


@dataclass
class Channel:
    id: str
    name: str
    #: False models a private channel the bot was not invited to, or a public one without chat:write.public.
    bot_member: bool = True


@dataclass
class Workspace:
    """One workspace with one app installed."""

    team_id: str
    team_domain: str
    team_name: str
    bot_user_id: str
    bot_id: str
    bot_name: str
    app_id: str
    accept_unknown_channels: bool = True
    channels: dict[str, Channel] = field(default_factory=dict)
    user_names: dict[str, str] = field(default_factory=dict)
    usergroups: dict[str, list[str]] = field(default_factory=dict)
    usergroups_error: str | None = None
    #: Names of channels the workspace does not know, as given with a slash command (for the transcript).
    channel_labels: dict[str, str] = field(default_factory=dict)

    # ---- arranging -------------------------------------------------------------------------------------

    def add_channel(self, channel_id: str, name: str, *, bot_member: bool = True) -> None:
        """``bot_member=False``: the bot may not post there (``not_in_channel``), e.g. a private channel."""
        self.channels[channel_id] = Channel(id=channel_id, name=name, bot_member=bot_member)

    def set_user(self, user_id: str, name: str) -> None:
        self.user_names[user_id] = name

    def set_usergroup(self, group_id: str, members: list[str]) -> None:
        self.usergroups[group_id] = list(members)

    def fail_usergroups(self, error_name: str | None) -> None:
        """Every usergroups.* call answers ``error_name`` (e.g. ``plan_upgrade_required``); None resets."""
        self.usergroups_error = error_name

    # ---- reading ---------------------------------------------------------------------------------------

    def user_name(self, user_id: str) -> str:
        if user_id == self.bot_user_id:
            return self.bot_name
        return self.user_names.get(user_id, user_id.lower())

    def resolve_channel(self, value: str) -> tuple[str, str | None]:
        """The channel id for ``value`` (an id or a name) and Slack's error if the bot may not post there."""
        channel = self.channels.get(value)
        if channel is None:
            wanted = value.removeprefix("#")
            channel = next((c for c in self.channels.values() if c.name == wanted), None)
        if channel is None:
            if not value or not self.accept_unknown_channels:
                return value, "channel_not_found"
            return value, None
        if not channel.bot_member:
            return channel.id, "not_in_channel"
        return channel.id, None

    def person(self, user_id: str, user_name: str | None = None) -> Person:
        """Who acts in a payload; a name given for an unknown user is remembered."""
        if user_name is not None and user_id not in self.user_names:
            self.user_names[user_id] = user_name
        return Person(id=user_id, name=user_name or self.user_name(user_id))

    def place(self, channel_id: str, channel_name: str | None = None) -> Place:
        """Where a payload comes from; a name given for a channel is remembered for the transcript."""
        if channel_name is not None:
            self.channel_labels.setdefault(channel_id, channel_name)
        known = self.channels.get(channel_id)
        return Place(id=channel_id, name=channel_name or (known.name if known else channel_id))

    def directory(self) -> Directory:
        """Names to show for ids in a transcript."""
        channel_names = dict(self.channel_labels)
        channel_names.update({c.id: c.name for c in self.channels.values()})
        return Directory(
            bot_user_id=self.bot_user_id,
            bot_name=self.bot_name,
            user_names=dict(self.user_names),
            channel_names=channel_names,
        )

    def message_json(self, message: Message) -> JsonDict:
        """A message the way Slack serialises it in API answers and interaction payloads."""
        body: JsonDict = {
            "type": "message",
            "ts": message.ts,
            "text": message.text,
            "blocks": message.blocks,
            "team": self.team_id,
        }
        if message.author == self.bot_user_id:
            body.update(user=self.bot_user_id, bot_id=self.bot_id, app_id=self.app_id)
        else:
            body["user"] = message.author
        if message.thread_ts is not None:
            body["thread_ts"] = message.thread_ts
        return body
