"""Policy file validation and decisions: deny by default, first matching rule decides, reasons say why."""

from __future__ import annotations

import itertools
from fnmatch import fnmatchcase

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.core.rules.policy import (
    ADMIN_RULE,
    Action,
    Actor,
    InstanceRef,
    Policy,
    decide,
    groups_could_decide,
    instance_matches,
    may_act_somewhere,
    may_approve,
    permissions_of,
)
from bot.core.rules.policy_warnings import glob_example, policy_warnings
from bot.policy_file import PolicyError, parse_policy

PROD_ID = "8a2f0c4e-1111-2222-3333-444455556666"

POLICY = f"""
admins = ["UADMIN1"]

[[rules]]
name = "sre-prod"
users = ["UALICE1"]
groups = ["SSRE1"]
channels = ["COPS1"]
instances = ["redis-prod-*", "{PROD_ID.upper()}"]
actions = ["backup", "list"]

[[rules]]
name = "staging"
users = ["UBOB1"]
instances = ["redis-staging"]
actions = ["backup", "list", "status"]
approval = "peer"
approvers = ["SLEADS1", "ULEAD1"]

[[watch]]
instances = ["redis-prod-*"]
channel = "CALERTS1"
events = ["failed", "succeed"]
stale_after_hours = 26
"""

PROD = InstanceRef("11111111-2222-3333-4444-555555555555", "redis-prod-eu")
PROD_BY_ID = InstanceRef(PROD_ID, "renamed")
STAGING = InstanceRef("22222222-2222-3333-4444-555555555555", "redis-staging")


@pytest.fixture
def policy() -> Policy:
    return parse_policy(POLICY)


def test_example_file_parses(policy: Policy) -> None:
    assert [rule.name for rule in policy.rules] == ["sre-prod", "staging"]
    assert policy.rules[0].instances[1] == PROD_ID  # IDs are normalised to lower case
    assert policy.watch[0].stale_after_hours == 26
    assert policy.referenced_groups() == {"SSRE1", "SLEADS1"}


def test_admin_may_do_everything(policy: Policy) -> None:
    decision = decide(policy, Actor("UADMIN1", "CANY1"), Action.BACKUP, STAGING)
    assert decision.allowed
    assert decision.rule == ADMIN_RULE


def test_rule_allows_by_user_channel_instance_and_action(policy: Policy) -> None:
    decision = decide(policy, Actor("UALICE1", "COPS1"), Action.BACKUP, PROD)
    assert decision.allowed
    assert decision.rule == "sre-prod"
    assert decision.approval == "self"


def test_instance_id_pattern_matches_case_insensitively(policy: Policy) -> None:
    assert decide(policy, Actor("UALICE1", "COPS1"), Action.LIST, PROD_BY_ID).allowed


def test_group_membership_grants(policy: Policy) -> None:
    actor = Actor("UCAROL1", "COPS1", groups=frozenset({"SSRE1"}))
    assert decide(policy, actor, Action.BACKUP, PROD).allowed


def test_unknown_person_is_denied_by_default(policy: Policy) -> None:
    decision = decide(policy, Actor("UEVE1", "COPS1"), Action.BACKUP, PROD)
    assert not decision.allowed
    assert "No rule" in decision.reason
    assert not may_act_somewhere(policy, Actor("UEVE1", "COPS1"), Action.BACKUP)


def test_wrong_action_is_explained(policy: Policy) -> None:
    decision = decide(policy, Actor("UALICE1", "COPS1"), Action.STATUS, PROD)
    assert not decision.allowed
    assert "'sre-prod'" in decision.reason
    assert "see the status of" in decision.reason


def test_wrong_channel_names_the_allowed_channels(policy: Policy) -> None:
    decision = decide(policy, Actor("UALICE1", "CRANDOM1"), Action.BACKUP, PROD)
    assert not decision.allowed
    assert "<#COPS1>" in decision.reason
    assert not may_act_somewhere(policy, Actor("UALICE1", "CRANDOM1"), Action.BACKUP)


def test_wrong_instance_names_the_patterns(policy: Policy) -> None:
    decision = decide(policy, Actor("UALICE1", "COPS1"), Action.BACKUP, STAGING)
    assert not decision.allowed
    assert "redis-prod-*" in decision.reason
    assert "redis-staging" in decision.reason
    assert may_act_somewhere(policy, Actor("UALICE1", "COPS1"), Action.BACKUP)


def test_peer_rule_carries_its_approvers(policy: Policy) -> None:
    decision = decide(policy, Actor("UBOB1", "CANY1"), Action.BACKUP, STAGING)
    assert decision.allowed
    assert decision.approval == "peer"
    assert decision.approvers == ("SLEADS1", "ULEAD1")


def test_unreadable_groups_grant_nothing_and_say_why(policy: Policy) -> None:
    actor = Actor("UCAROL1", "COPS1", groups_unknown="plan_upgrade_required")
    decision = decide(policy, actor, Action.BACKUP, PROD)
    assert not decision.allowed
    assert "plan_upgrade_required" in decision.reason


def test_a_passing_group_failure_adds_no_note_to_a_refusal(policy: Policy) -> None:
    actor = Actor("UCAROL1", "CRANDOM1", groups_unknown="no answer in time", groups_passing=True)
    decision = decide(policy, actor, Action.BACKUP, PROD)
    assert not decision.allowed and "no answer in time" not in decision.reason


def test_groups_could_decide_when_a_group_rule_comes_before_the_persons_own(policy: Policy) -> None:
    carol = Actor("UCAROL1", "COPS1", groups_unknown="timeout", groups_passing=True)
    # sre-prod grants through SSRE1: Carol might be in it.
    assert groups_could_decide(policy, carol, Action.BACKUP, PROD)
    assert groups_could_decide(policy, carol, Action.LIST, None)
    # No rule grants status through groups, and none covers this channel through a group.
    assert not groups_could_decide(policy, carol, Action.STATUS, PROD)
    assert not groups_could_decide(policy, Actor("UCAROL1", "CRANDOM1"), Action.BACKUP, PROD)
    # Alice is named in sre-prod itself: the groups cannot change what it says for her.
    assert not groups_could_decide(policy, Actor("UALICE1", "COPS1"), Action.BACKUP, PROD)
    assert not groups_could_decide(policy, Actor("UADMIN1", "COPS1"), Action.BACKUP, PROD)


def test_groups_could_decide_over_a_later_rule_that_names_the_person() -> None:
    policy = parse_policy(
        """
        [[rules]]
        name = "four-eyes"
        groups = ["SPAYMENTS1"]
        instances = ["redis-*"]
        actions = ["backup"]
        approval = "peer"
        approvers = ["ULEAD1"]

        [[rules]]
        name = "self"
        users = ["UALICE1"]
        instances = ["*"]
        actions = ["backup"]
        """
    )
    alice = Actor("UALICE1", "COPS1", groups_unknown="timeout", groups_passing=True)
    # Were Alice in SPAYMENTS1, the peer rule would decide; the answer turns on the group.
    assert groups_could_decide(policy, alice, Action.BACKUP, PROD)
    assert not groups_could_decide(policy, alice, Action.BACKUP, InstanceRef("x", "cache-eu"))


def test_first_matching_rule_decides() -> None:
    policy = parse_policy(
        """
        [[rules]]
        name = "careful"
        users = ["UALICE1"]
        instances = ["redis-prod-*"]
        actions = ["backup"]
        approval = "peer"
        approvers = ["ULEAD1"]

        [[rules]]
        name = "loose"
        users = ["UALICE1"]
        instances = ["*"]
        actions = ["backup"]
        """
    )
    assert decide(policy, Actor("UALICE1", "C1X"), Action.BACKUP, PROD).rule == "careful"
    assert decide(policy, Actor("UALICE1", "C1X"), Action.BACKUP, STAGING).rule == "loose"


def test_permissions_for_help(policy: Policy) -> None:
    assert [p.rule for p in permissions_of(policy, Actor("UBOB1", "C1X"))] == ["staging"]
    assert permissions_of(policy, Actor("UADMIN1", "C1X"))[0].rule == ADMIN_RULE
    assert permissions_of(policy, Actor("UEVE1", "C1X")) == []


def test_approvers_by_user_or_group() -> None:
    assert may_approve(("ULEAD1",), "ULEAD1", frozenset())
    assert may_approve(("SLEADS1",), "UX1", frozenset({"SLEADS1"}))
    assert not may_approve(("SLEADS1",), "UX1", frozenset())


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "[[rules]]\nname='a'\nusers=['U1A']\ninstances=['*']\nactions=['delete']",
            "unknown action 'delete'",
        ),
        (
            "[[rules]]\nname='a'\nusers=['U1A']\ninstances=['*']\nactions=['list']\ncolour='red'",
            "colour: unknown key",
        ),
        ("admins=['alice']", "admins[0]: 'alice' is not a Slack user ID"),
        ("[[rules]]\nname='a'\nusers=['U1A']\ninstances=['8a2f…']\nactions=['list']", "instances[0]"),
        (
            "[[rules]]\nname='a'\nusers=['U1A']\ninstances=['8a2f0c4e-11']\nactions=['list']",
            "not a complete UUID",
        ),
        (
            "[[rules]]\nname='a'\nusers=['U1A']\ninstances=['redis-[prod']\nactions=['list']",
            "not an instance name glob",
        ),
        ("[[rules]]\nname='a'\ninstances=['*']\nactions=['list']", "needs users or groups"),
        (
            "[[rules]]\nname='a'\nusers=['U1A']\ninstances=['*']\nactions=['list']\napproval='peer'",
            "needs approvers",
        ),
        (
            "[[rules]]\nname='a'\nusers=['U1A']\ninstances=['*']\nactions=['list']\napproval='boss'",
            "'boss' is not allowed",
        ),
        (
            "[[rules]]\nname='a'\nusers=['U1A']\nchannels=['#ops']\ninstances=['*']\nactions=['list']",
            "channel ID",
        ),
        ("[[rules]]\nname='a'\nusers=['U1A']\ninstances=['*']", "actions: required key is missing"),
        ("[[watch]]\ninstances=['*']\nchannel='C1A'\nevents=['exploded']", "events[0]"),
        ("rules = [", "not valid TOML"),
    ],
)
def test_mistakes_are_named(text: str, expected: str) -> None:
    with pytest.raises(PolicyError) as caught:
        parse_policy(text, "p.toml")
    assert any(expected in problem for problem in caught.value.problems), caught.value.problems


def test_every_mistake_is_listed_with_its_rule_name() -> None:
    text = """
    [[rules]]
    name = "sre-prod"
    users = ["nobody"]
    instances = ["*"]
    actions = ["backup", "nuke"]
    """
    with pytest.raises(PolicyError) as caught:
        parse_policy(text, "p.toml")
    problems = caught.value.problems
    assert len(problems) == 2
    assert all(problem.startswith("rules[0] ('sre-prod')") for problem in problems)
    assert str(caught.value).startswith("p.toml: ")


def test_a_refused_item_is_reported_once() -> None:
    text = "[[rules]]\nname='a'\nusers=['U1A']\ninstances=['8a2f…']\nactions=['list']"
    with pytest.raises(PolicyError) as caught:
        parse_policy(text)
    assert len(caught.value.problems) == 1


def test_duplicate_rule_names_are_a_warning_not_an_error() -> None:
    rule = "[[rules]]\nname='a'\nusers=['U1A']\ninstances=['*']\nactions=['list']\n"
    policy = parse_policy(rule + rule)
    assert "rule name 'a' is used by rules[0] and rules[1]; the audit trail cannot tell them apart" in (
        policy_warnings(policy)
    )


@given(st.from_regex(r"[a-z][a-z0-9-]{3,20}", fullmatch=True))
def test_star_matches_every_name(name: str) -> None:
    assert instance_matches(["*"], InstanceRef(PROD_ID, name))


def rules(*bodies: str) -> Policy:
    text = ""
    for index, body in enumerate(bodies):
        text += f"[[rules]]\nname = 'r{index}'\ninstances = ['*']\n{body}\n"
    return parse_policy(text)


def test_shadowing_examples_say_when_it_depends_on_group_membership() -> None:
    policy = rules(
        "groups = ['SSRE1']\nactions = ['backup']",
        "users = ['UBOB1']\nchannels = ['COPS1']\nactions = ['backup', 'list']\n"
        "approval = 'peer'\napprovers = ['ULEAD1']",
    )
    assert policy_warnings(policy) == [
        "rule 'r1' (approval = \"peer\") can be skipped: rule 'r0' above it allows the same "
        "without approval, e.g. user UBOB1, if a member of SSRE1, in channel COPS1 may back up x"
    ]


def test_rules_that_cannot_meet_give_no_warning() -> None:
    peer = "approval = 'peer'\napprovers = ['ULEAD1']"
    assert (
        policy_warnings(
            rules("users = ['UA1']\nactions = ['list']", f"users = ['UA1']\nactions = ['backup']\n{peer}")
        )
        == []
    )
    assert (
        policy_warnings(
            rules(
                "users = ['UA1']\nchannels = ['C1A']\nactions = ['backup']",
                f"users = ['UA1']\nchannels = ['C2B']\nactions = ['backup']\n{peer}",
            )
        )
        == []
    )
    disjoint = parse_policy(
        "[[rules]]\nname = 'a'\nusers = ['UA1']\ninstances = ['redis-dev-*']\nactions = ['backup']\n"
        "[[rules]]\nname = 'b'\nusers = ['UA1']\ninstances = ['redis-prod-*']\n"
        f"actions = ['backup']\n{peer}\n"
    )
    assert policy_warnings(disjoint) == []


def test_other_approvers_deciding_first_is_a_warning() -> None:
    policy = rules(
        "users = ['UA1']\nactions = ['backup']\napproval = 'peer'\napprovers = ['ULEAD1']",
        "groups = ['SSRE1']\nactions = ['backup']\napproval = 'peer'\napprovers = ['SLEADS1']",
    )
    assert policy_warnings(policy) == [
        "rule 'r1' asks SLEADS1 to approve, but rule 'r0' above it decides first and asks ULEAD1, "
        "e.g. user UA1, if a member of SSRE1, in any channel may back up x"
    ]


def test_a_rule_only_for_admins_never_decides() -> None:
    policy = parse_policy(
        "admins = ['UADMIN1']\n"
        "[[rules]]\nname = 'a'\nusers = ['UADMIN1']\ninstances = ['*']\nactions = ['list']\n"
    )
    assert policy_warnings(policy) == ["rule 'a' never decides: every user it names is an admin"]


def test_instance_ids_in_shadowing_examples() -> None:
    peer = "approval = 'peer'\napprovers = ['ULEAD1']"
    by_id = parse_policy(
        f"[[rules]]\nname = 'a'\nusers = ['UA1']\ninstances = ['redis-*']\nactions = ['backup']\n"
        f"[[rules]]\nname = 'b'\nusers = ['UA1']\ninstances = ['{PROD_ID}']\nactions = ['backup']\n{peer}\n"
    )
    [warning] = policy_warnings(by_id)
    assert warning.endswith(f"may back up {PROD_ID} if it is named like redis-*")
    same_id = parse_policy(
        f"[[rules]]\nname = 'a'\nusers = ['UA1']\ninstances = ['{PROD_ID}']\nactions = ['backup']\n"
        f"[[rules]]\nname = 'b'\nusers = ['UA1']\ninstances = ['{PROD_ID}']\nactions = ['backup']\n{peer}\n"
    )
    assert policy_warnings(same_id)[0].endswith(f"may back up {PROD_ID}")


@pytest.mark.parametrize(
    ("first", "second", "example"),
    [
        ("*", "redis-prod-*", "redis-prod-x"),
        ("redis-*", "*-prod", "redis-prod"),
        ("redis-?", "redis-[0-9]", "redis-0"),
        ("redis-[!a]", "redis-a", None),
        ("redis-dev-*", "redis-prod-*", None),
        ("a*b", "*", "axb"),
        ("ab", "a*b", "ab"),
    ],
)
def test_glob_examples(first: str, second: str, example: str | None) -> None:
    assert glob_example(first, second) == example
    assert glob_example(second, first) == example or example is None


GLOBS = st.lists(st.sampled_from(["a", "b", "-", "*", "?", "[ab]", "[!a]"]), min_size=1, max_size=6).map(
    "".join
)


@given(GLOBS, GLOBS)
def test_a_glob_example_matches_both_globs(first: str, second: str) -> None:
    example = glob_example(first, second)
    if example is not None:
        assert example and fnmatchcase(example, first) and fnmatchcase(example, second)
    else:
        # No short name over the characters the globs tell apart matches both.
        assert not any(
            fnmatchcase(name, first) and fnmatchcase(name, second)
            for size in range(1, 5)
            for name in ("".join(letters) for letters in itertools.product("ab-x", repeat=size))
        )
