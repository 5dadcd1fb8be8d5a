"""How answers name clouds: ambiguity with the qualified forms, the clouds that could not be asked."""

from __future__ import annotations

from bot.core.rules.instances import Instance
from bot.core.rules.messages import CloudUnavailable, InstanceAmbiguous, InstanceNotFound, UnaskedCloud
from bot.slack.blocks import render_reply

DE = Instance(instance_id="11111111-2222-3333-4444-555555555555", name="redis-prod", cloud="eu-de")
NL = Instance(instance_id="33333333-2222-3333-4444-555555555555", name="redis-prod", cloud="eu-nl")


def text_of(reply: object) -> str:
    message = render_reply(reply)  # type: ignore[arg-type]
    return "\n".join(str(block) for block in message.blocks)


def test_ambiguity_across_clouds_offers_the_qualified_forms() -> None:
    shown = text_of(InstanceAmbiguous("redis-prod", (DE, NL), qualified=True))
    assert "`eu-de/redis-prod`" in shown and "`eu-nl/redis-prod`" in shown
    assert "more than one place" in shown


def test_ambiguity_in_one_cloud_keeps_asking_for_the_id() -> None:
    shown = text_of(InstanceAmbiguous("redis-prod", (DE, NL)))
    assert "Please use the instance ID instead" in shown and "eu-de/" not in shown


def test_a_cloud_that_could_not_be_asked_is_named() -> None:
    shown = text_of(InstanceNotFound("redis-x", (), (UnaskedCloud("eu-nl", "it did not answer in time"),)))
    assert "Could not ask eu-nl (eu-nl: it did not answer in time)" in shown


def test_cloud_unavailable_names_the_cloud_when_given() -> None:
    assert "DCS in eu-nl" in text_of(CloudUnavailable("refused", "eu-nl"))
    assert "from DCS (refused)" in text_of(CloudUnavailable("refused"))


def test_not_found_for_a_qualified_id_says_with_id() -> None:
    assert "with ID" in text_of(InstanceNotFound(f"eu-nl/{DE.instance_id}"))
