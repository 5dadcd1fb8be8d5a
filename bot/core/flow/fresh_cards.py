"""Ways forward from a dead end: buttons that give the clicker a fresh confirmation card.

``backup_retry`` (a refused or failed backup, an expired card: "Start over") and ``backup_run`` (a dry run)
carry a stored request's id; ``backup_pick`` (a "did you mean" suggestion, one of several instances with a
name) carries an instance id, with its cloud when several are served; the rest of the command the person
typed (format, remark, ``--dry-run``, or ``list``) was kept for them in that channel when the picks were
offered (:mod:`bot.core.rules.pick_offer`), and a pick offered to nobody else is refused. Nothing else in
the click is used: the card is made exactly as for a typed command — the instance resolved afresh, the
policy decided for the *clicker*, in the request's channel — so a button grants nothing the person could
not type.
"""

from __future__ import annotations

from bot.core.flow.command_answers import CommandAnswers
from bot.core.flow.context import Workflow
from bot.core.flow.inputs import Click, Invocation
from bot.core.rules.audit import AuditEntry, AuditKind
from bot.core.rules.backup_request import default_remark
from bot.core.rules.grammar import BackupCommand, format_command_for_display, is_instance_id, split_instance
from bot.core.rules.messages import ClickRefused
from bot.core.rules.pick_offer import OfferedCommand, usable_since

_UNKNOWN = "This backup request is unknown to the bot (it may have been cleaned up). Nothing was changed."
_BAD_PICK = "That choice is not one the bot offered. Nothing was changed."
_NOT_OFFERED = (
    "That choice is not one the bot offered you in this channel, or it was offered too long ago. "
    "Please type the command again. Nothing was changed."
)
# The Home tab offers none of these buttons; a click from it has no message to put a card in.
_NOT_HOME = "That button works only on a message. Nothing was changed."


class FreshCards:
    def __init__(self, workflow: Workflow, answers: CommandAnswers) -> None:
        self._w = workflow
        self._answers = answers

    async def again(self, click: Click, *, replace_original: bool) -> None:
        """A fresh card for the same instance, format and remark as the request the button names. With
        ``replace_original`` the card takes the place of the (ephemeral) message clicked."""
        request = await self._w.requests.get(click.request_id)
        await self._audit_click(click, "run" if replace_original else "retry", click.request_id)
        if click.response_url is None:
            await self._refuse(click, _NOT_HOME, click.request_id)
            return
        if request is None:
            await self._refuse(click, _UNKNOWN, click.request_id)
            return
        # A remark the bot wrote for the first requester is written anew for whoever clicks now.
        remark = None if request.remark == default_remark(request.requester_name) else request.remark
        target = request.instance_id
        if request.cloud is not None and self._w.multi_cloud:
            target = f"{request.cloud}/{target}"
        command = BackupCommand(target, request.backup_format, remark)
        await self._card(
            click, click.response_url, command, request.channel_id, replace_original=replace_original
        )

    async def pick(self, click: Click) -> None:
        """The card for the instance picked, in place of the suggestions."""
        address = split_instance(click.request_id)
        await self._audit_click(click, "pick", None)
        known_cloud = address.cloud is None or address.cloud in self._w.clouds.names
        if click.response_url is None:
            await self._refuse(click, _NOT_HOME, None)
            return
        if not is_instance_id(address.target) or not known_cloud or click.channel_id is None:
            await self._refuse(click, _BAD_PICK, None)
            return
        # What else was typed is kept for the person and channel it was offered in, never read from the click.
        since = usable_since(self._w.clock.now())
        offer = await self._w.requests.offered(click.user_id, click.channel_id, click.request_id, since=since)
        if offer is None:
            await self._refuse(click, _NOT_OFFERED, None)
            return
        command = offer.picked(click.request_id)
        await self._card(click, click.response_url, command, offer.channel_id, replace_original=True)

    async def _card(
        self,
        click: Click,
        response_url: str,
        command: OfferedCommand,
        channel_id: str,
        *,
        replace_original: bool,
    ) -> None:
        invocation = Invocation(
            user_id=click.user_id,
            user_name=click.user_name or click.user_id,
            channel_id=channel_id,
            response_url=response_url,
            text=_as_typed(command),
        )
        reply = await self._answers.handle(command, invocation)
        await self._w.notifier.reply(response_url, reply, replace_original=replace_original)

    async def _audit_click(self, click: Click, button: str, request_id: str | None) -> None:
        detail: dict[str, object] = {"button": button}
        if request_id is None:
            detail["value"] = click.request_id
        await self._w.audit.record(
            AuditEntry(
                AuditKind.CLICK,
                user_id=click.user_id,
                channel_id=click.channel_id,
                request_id=request_id,
                detail=detail,
            )
        )

    async def _refuse(self, click: Click, message: str, request_id: str | None) -> None:
        await self._w.audit.record(
            AuditEntry(
                AuditKind.CLICK_REFUSED,
                user_id=click.user_id,
                channel_id=click.channel_id,
                request_id=request_id,
                outcome=message,
            )
        )
        if click.response_url is None:
            self._w.home.answer(click.user_id, ClickRefused(message))
        else:
            await self._w.notifier.reply(click.response_url, ClickRefused(message))


def _as_typed(command: OfferedCommand) -> str:
    """The command a click stands for, as it would be typed (for the audit trail)."""
    try:
        return format_command_for_display(command)
    except ValueError:  # a remark the grammar cannot quote
        return command.instance
