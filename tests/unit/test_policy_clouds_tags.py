"""Rules and watches limited to clouds and tags (INTERFACE §4), qualified instance addresses (§2)."""

from __future__ import annotations

from bot.core.rules.grammar import InstanceAddress, split_instance
from bot.core.rules.instances import Instance
from bot.core.rules.policy import (
    Action,
    Actor,
    InstanceRef,
    Permission,
    Policy,
    Rule,
    Watch,
    decide,
    describe_scope,
    permissions_of,
    tags_match,
)
from bot.core.rules.policy_warnings import policy_warnings
from bot.core.rules.watching import watch_targets

ALICE = Actor("UALICE", "C0OPS")
ID = "8a5f9c2e-3b4d-4e6f-9a1b-2c3d4e5f6a7b"


def ref(cloud: str | None = "eu-de", tags: tuple[tuple[str, str], ...] | None = ()) -> InstanceRef:
    return InstanceRef(ID, "redis-prod", cloud, tags)


def rule(**limits: object) -> Rule:
    return Rule(name="r", users=("UALICE",), instances=("*",), actions=(Action.BACKUP,), **limits)  # type: ignore[arg-type]


def test_split_instance() -> None:
    assert split_instance("redis-prod") == InstanceAddress(None, "redis-prod")
    assert split_instance("eu-nl/redis-prod") == InstanceAddress("eu-nl", "redis-prod")
    assert split_instance(f"eu-nl/{ID}").is_id
    assert str(split_instance("eu-nl/redis-prod")) == "eu-nl/redis-prod"


def test_a_rule_limited_to_a_cloud_covers_only_that_cloud() -> None:
    policy = Policy(rules=(rule(clouds=("eu-de",)),))
    assert decide(policy, ALICE, Action.BACKUP, ref("eu-de")).allowed
    refused = decide(policy, ALICE, Action.BACKUP, ref("eu-nl"))
    assert not refused.allowed
    assert "in cloud eu-de" in refused.reason and "it is in cloud eu-nl" in refused.reason
    # Not knowing the cloud is no reason to allow.
    assert not decide(policy, ALICE, Action.BACKUP, ref(None)).allowed


def test_tags_must_all_be_there_with_their_values_and_star_means_any_value() -> None:
    wanted = (("env", "prod"), ("team", "*"))
    assert tags_match(wanted, ref(tags=(("env", "prod"), ("team", "shop"), ("x", "y"))))
    assert not tags_match(wanted, ref(tags=(("env", "prod"),)))
    assert not tags_match(wanted, ref(tags=(("env", "staging"), ("team", "shop"))))
    assert not tags_match(wanted, ref(tags=None))
    assert tags_match(None, ref(tags=None))


def test_a_tag_rule_allows_a_tagged_instance_and_refuses_an_untagged_one() -> None:
    policy = Policy(rules=(rule(tags=(("env", "prod"),)),))
    allowed = decide(policy, ALICE, Action.BACKUP, ref(tags=(("env", "prod"),)))
    assert allowed.allowed and allowed.tags == (("env", "prod"),)
    refused = decide(policy, ALICE, Action.BACKUP, ref(tags=()))
    assert not refused.allowed and "with tag env=prod" in refused.reason and "no tags" in refused.reason


def test_help_lists_the_clouds_and_tags_of_rules() -> None:
    policy = Policy(rules=(rule(clouds=("eu-de", "eu-nl"), tags=(("env", "prod"),)),))
    [permission] = permissions_of(policy, ALICE)
    assert isinstance(permission, Permission)
    assert describe_scope(permission.clouds, permission.tags) == "in clouds eu-de, eu-nl, with tag env=prod"
    assert describe_scope(None, None) == "anywhere"


def test_a_watch_limited_to_a_cloud_and_tags() -> None:
    watch = Watch(instances=("*",), clouds=("eu-nl",), tags=(("env", "*"),), channel="C0ALERTS")
    instances = [
        Instance(instance_id=ID, name="redis-prod", cloud="eu-nl", tags=(("env", "prod"),)),
        Instance(instance_id=ID.replace("8", "9"), name="redis-prod", cloud="eu-de", tags=(("env", "prod"),)),
        Instance(instance_id=ID.replace("8", "7"), name="redis-other", cloud="eu-nl"),
    ]
    assert [t.instance_id for t in watch_targets([watch], instances)] == [ID]


def _peer_below_self(earlier: Rule) -> list[str]:
    later = Rule(
        name="peer",
        users=("UALICE",),
        instances=("*",),
        actions=(Action.BACKUP,),
        approval="peer",
        approvers=("ULEAD",),
        clouds=("eu-de",),
        tags=(("env", "prod"),),
    )
    return policy_warnings(Policy(rules=(earlier, later)))


def test_no_shadowing_is_claimed_across_different_clouds_or_tag_values() -> None:
    assert _peer_below_self(rule(clouds=("eu-nl",))) == []
    assert _peer_below_self(rule(tags=(("env", "staging"),))) == []


def test_shadowing_within_a_shared_cloud_names_it() -> None:
    [warning] = _peer_below_self(rule(clouds=("eu-de", "eu-nl"), tags=(("env", "*"),)))
    assert "can be skipped" in warning and "in cloud eu-de" in warning and "tagged env=prod" in warning


def test_a_rule_limited_to_fewer_clouds_never_covers_a_later_rule_for_more() -> None:
    earlier = Rule(name="a", users=("UALICE",), instances=("*",), actions=(Action.BACKUP,), clouds=("eu-de",))
    later = Rule(name="b", users=("UALICE",), instances=("*",), actions=(Action.BACKUP,))
    assert policy_warnings(Policy(rules=(earlier, later))) == []
    assert any("never decides" in w for w in policy_warnings(Policy(rules=(later, earlier))))
    tagged = Rule(
        name="c", users=("UALICE",), instances=("*",), actions=(Action.BACKUP,), tags=(("env", "*"),)
    )
    narrower = Rule(
        name="d", users=("UALICE",), instances=("*",), actions=(Action.BACKUP,), tags=(("env", "prod"),)
    )
    assert any("never decides" in w for w in policy_warnings(Policy(rules=(tagged, narrower))))
    assert policy_warnings(Policy(rules=(narrower, tagged))) == []
