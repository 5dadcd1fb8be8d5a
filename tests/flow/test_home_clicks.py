"""Approving and rejecting from the Home tab: a click there has no response_url, so its answers go to the
Home tab and the approval request in the channel is replaced (chat.update) as a channel click would."""

from __future__ import annotations

from datetime import timedelta

from bot.core.flow.inputs import Click
from bot.core.flow.service import BackupService
from bot.core.rules.backup_request import BackupRequest, RequestState
from bot.core.rules.messages import CardClosed, ClickRefused, Reply
from tests.factories import ALICE, BOB, LEAD, NOW, OPS, awaiting_approval
from tests.fakes import Fakes, make_fakes

POLICY = f'[[rules]]\nname = "r"\nusers = ["{BOB}"]\ninstances = ["*"]\nactions = ["backup"]\n'


class Answers:
    def __init__(self) -> None:
        self.told: list[tuple[str, Reply]] = []

    def answer(self, user_id: str, reply: Reply) -> None:
        self.told.append((user_id, reply))


def service(fakes: Fakes, answers: Answers) -> BackupService:
    return BackupService(
        dcs=fakes.dcs,
        requests=fakes.requests,
        audit=fakes.audit,
        groups=fakes.groups,
        notifier=fakes.notifier,
        policy=lambda: fakes.policy,
        clock=fakes.clock,
        options=fakes.options,
        home=answers,
    )


def home_click(user: str, request: BackupRequest) -> Click:
    return Click(user_id=user, request_id=request.request_id, response_url=None)


async def test_a_rejection_from_the_home_tab_closes_the_channel_message() -> None:
    fakes, answers = make_fakes(POLICY), Answers()
    request = awaiting_approval(requester=BOB, approval_message_ts="1.5", response_url="http://x/bob")
    await fakes.requests.add(request)

    await service(fakes, answers).reject(home_click(LEAD, request))

    [(who, closed)] = answers.told
    assert who == LEAD and isinstance(closed, CardClosed) and closed.outcome == "rejected"
    [replaced] = fakes.notifier.updates
    assert (replaced.channel_id, replaced.ts, replaced.content) == (OPS, "1.5", closed)
    # The requester's card, which said it waits for approval, says how that ended.
    [told] = fakes.notifier.replies
    assert (told.response_url, told.reply, told.replace_original) == ("http://x/bob", closed, True)
    stored = await fakes.requests.get(request.request_id)
    assert stored is not None and stored.state == RequestState.REJECTED


async def test_an_expired_approval_clicked_on_the_home_tab_is_closed_everywhere() -> None:
    fakes, answers = make_fakes(POLICY), Answers()
    request = awaiting_approval(requester=BOB, approval_message_ts="1.5", now=NOW - timedelta(hours=1))
    await fakes.requests.add(request)

    await service(fakes, answers).approve(home_click(LEAD, request))

    assert [type(reply) for _, reply in answers.told] == [CardClosed]
    assert len(fakes.notifier.updates) == 1
    assert fakes.dcs.created == []


async def test_a_refusal_on_the_home_tab_goes_to_the_home_tab() -> None:
    fakes, answers = make_fakes(POLICY), Answers()
    request = awaiting_approval(requester=BOB, approval_message_ts="1.5")
    await fakes.requests.add(request)

    await service(fakes, answers).approve(home_click(ALICE, request))

    [(who, refusal)] = answers.told
    assert who == ALICE and isinstance(refusal, ClickRefused) and "Only the approvers" in refusal.plain
    assert fakes.notifier.updates == [] and fakes.notifier.replies == []


async def test_without_a_channel_message_only_the_home_tab_is_told() -> None:
    fakes, answers = make_fakes(POLICY), Answers()
    request = awaiting_approval(requester=BOB)
    await fakes.requests.add(request)

    await service(fakes, answers).reject(home_click(LEAD, request))

    assert len(answers.told) == 1 and fakes.notifier.updates == []
