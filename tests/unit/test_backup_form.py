"""The backup form's pure parts: the picker's options (policy, matching, order, Block Kit limits), reading a
submission, and the modal itself as Slack checks views."""

from __future__ import annotations

import pytest

from bot.core.rules.backup_form import (
    MAX_OPTION_LABEL,
    MAX_OPTIONS,
    FormErrors,
    FormInput,
    instance_options,
    read_form,
)
from bot.core.rules.grammar import BackupCommand
from bot.core.rules.instances import BackupFormat, Instance
from bot.core.rules.policy import Action, Actor, Policy, Rule
from bot.slack.backup_form import FormPlace, form_input, form_view, options_answer
from bot.standins.slack.view_checks import suggestion_problems, view_problems

ALICE, OPS, RANDOM = "UALICE", "COPS", "CRANDOM"
ID = "8a5f9c2e-3b4d-4e6f-9a1b-2c3d4e5f6a7b"
POLICY = Policy(
    rules=(
        Rule(
            name="sre",
            users=(ALICE,),
            channels=(OPS,),
            instances=("redis-*",),
            actions=(Action.BACKUP,),
        ),
        Rule(
            name="tagged", users=(ALICE,), tags=(("env", "prod"),), instances=("*",), actions=(Action.BACKUP,)
        ),
    )
)


def instance(name: str, number: int = 0, *, cloud: str | None = None, **tags: str) -> Instance:
    return Instance(
        instance_id=f"{number:08d}-0000-4000-8000-000000000000",
        name=name,
        cloud=cloud,
        tags=tuple(tags.items()),
    )


def labels(
    instances: list[Instance], typed: str = "", *, channel: str = OPS, qualified: bool = False
) -> list[str]:
    options = instance_options(instances, POLICY, Actor(ALICE, channel), typed, qualified=qualified)
    return [o.label for o in options]


def test_only_instances_the_policy_allows_in_that_channel() -> None:
    estate = [instance("redis-a", 1), instance("billing", 2), instance("mongo", 3, env="prod")]

    assert labels(estate) == ["mongo", "redis-a"]
    assert labels(estate, channel=RANDOM) == ["mongo"], "the channel rule does not apply elsewhere"


def test_without_a_channel_the_picker_offers_what_some_channel_allows() -> None:
    estate = [instance("redis-a", 1), instance("billing", 2), instance("mongo", 3, env="prod")]

    options = instance_options(estate, POLICY, Actor(ALICE, ""), "", qualified=False, anywhere=True)

    assert [o.label for o in options] == ["mongo", "redis-a"], "redis-a: in #ops only, still offered"
    assert instance_options(estate, POLICY, Actor("UNOBODY", OPS), "", qualified=False) == []


def test_matching_is_case_insensitive_anywhere_and_exact_and_prefix_matches_come_first() -> None:
    estate = [instance(n, i) for i, n in enumerate(["redis-cache", "redis-b", "redis-a-cache", "redis-c"])]

    assert labels(estate, "CACHE") == ["redis-a-cache", "redis-cache"]
    assert labels(estate, "redis-c") == ["redis-c", "redis-cache"], "the exact name first, then prefixes"
    assert labels(estate, f"{1:08d}-0000") == ["redis-b"], "an ID matches too"


def test_several_clouds_are_qualified_and_values_name_the_cloud_and_id() -> None:
    estate = [instance("redis-x", 1, cloud="eu-nl"), instance("redis-x", 2, cloud="eu-de")]

    options = instance_options(estate, POLICY, Actor(ALICE, OPS), "", qualified=True)

    assert [o.label for o in options] == ["eu-de/redis-x", "eu-nl/redis-x"]
    assert [o.value for o in options] == [
        f"eu-de/{2:08d}-0000-4000-8000-000000000000",
        f"eu-nl/{1:08d}-0000-4000-8000-000000000000",
    ]
    assert labels(estate, "eu-nl/", qualified=True) == ["eu-nl/redis-x"]


def test_limits_hold_for_a_large_estate_and_long_names() -> None:
    long_name = "redis-" + "n" * 58  # 64 characters, the longest name DCS allows
    estate = [instance(f"redis-{i:03d}", i) for i in range(500)]
    estate.append(instance(long_name, 999, cloud="a-cloud-name-of-thirty-two-chars"))

    options = instance_options(estate, POLICY, Actor(ALICE, OPS), "", qualified=True)
    longest = instance_options(estate, POLICY, Actor(ALICE, OPS), "nnn", qualified=True)

    assert len(options) == MAX_OPTIONS
    assert [o.label for o in longest] == [
        f"a-cloud-name-of-thirty-two-chars/{long_name}"[: MAX_OPTION_LABEL - 1] + "…"
    ]
    assert suggestion_problems({"options": options_answer(options)}) == []
    assert suggestion_problems({"options": options_answer(longest)}) == []


@pytest.mark.parametrize(
    ("entered", "expected"),
    [
        (
            FormInput(ID, "aof", "  before the migration  ", True),
            BackupCommand(ID, BackupFormat.AOF, "before the migration", True),
        ),
        (FormInput(f"eu-nl/{ID.upper()}", None, "", False), BackupCommand(f"eu-nl/{ID}", None, None, False)),
        (FormInput(None, "rdb", None), FormErrors({"instance": "Please pick an instance from the list."})),
        (
            FormInput("not an instance!", "rdb", None),
            FormErrors(
                {"instance": "That is not an instance this form offers. Please pick one from the list."}
            ),
        ),
        (FormInput(ID, "zip", None), FormErrors({"format": "Choose AOF or RDB."})),
    ],
)
def test_a_submission_reads_as_the_typed_command(entered: FormInput, expected: object) -> None:
    assert read_form(entered) == expected


def test_the_remark_is_counted_in_code_points_as_dcs_counts() -> None:
    assert read_form(FormInput(ID, "rdb", "é" * 128)) == BackupCommand(ID, BackupFormat.RDB, "é" * 128)
    refused = read_form(FormInput(ID, "rdb", "e\u0301" * 65))  # 65 characters seen, 130 code points

    assert isinstance(refused, FormErrors) and "130 characters" in refused.errors["remark"]
    # On the form's field, not the typed command's usage line: the form is not typed.
    assert (
        refused.errors["remark"] == "The remark is 130 characters long; the limit is 128. Please shorten it."
    )


def test_the_place_travels_in_private_metadata() -> None:
    place = FormPlace(OPS, "https://hooks.slack.com/commands/T/1/x")

    assert FormPlace.decode(place.encode()) == place
    assert FormPlace.decode(FormPlace(OPS).encode()) == FormPlace(OPS)
    assert FormPlace.decode(FormPlace(None).encode()) == FormPlace(None), "opened from the Home tab"
    for odd in (None, "", "{", "[]", "{}", '{"channel": 5}', '{"channel": "C1", "response_url": 7}'):
        assert FormPlace.decode(odd) is None


def test_the_modal_is_one_slack_takes_and_its_state_reads_back() -> None:
    view = form_view(FormPlace(OPS), BackupFormat.AOF)
    state = {
        "values": {
            "instance": {"instance": {"type": "external_select", "selected_option": {"value": ID}}},
            "format": {"format": {"type": "radio_buttons", "selected_option": {"value": "aof"}}},
            "remark": {"remark": {"type": "plain_text_input", "value": "hi"}},
            "dry_run": {"dry_run": {"type": "checkboxes", "selected_options": [{"value": "dry_run"}]}},
        }
    }

    assert view_problems(view, expected_type="modal") == []
    assert form_input({"state": state}) == FormInput(ID, "aof", "hi", True)
    assert form_input({}) == FormInput(None, None, None, False)
    assert form_input({"state": {"values": {"remark": {"remark": {"value": 5}}}}}).remark is None


def test_a_form_opened_without_a_channel_asks_for_one() -> None:
    view = form_view(FormPlace(None), BackupFormat.RDB)
    chosen = {"channel": {"channel": {"type": "conversations_select", "selected_conversation": OPS}}}

    assert view_problems(view, expected_type="modal") == []
    assert view["blocks"][0]["block_id"] == "channel"
    assert form_input({"state": {"values": chosen}}).channel == OPS
    assert form_input({}).channel is None
