"""The backup form's two questions to the flow: which instances to offer a person (the picker's options,
asked on every keystroke), and whether a submitted form can go ahead (else errors on its fields).

Both answer within Slack's 3 s: the options are what the clouds' listings give within
:data:`OPTIONS_WAIT` (a cloud slower than that is left out, its listing finished in the background for
the next keystroke); a submission is checked against what is known without asking DCS (nothing slow
before the ack) and then runs the path of the typed command, which asks DCS and decides again.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace

from bot.core.errors import DcsError
from bot.core.flow.context import Workflow
from bot.core.flow.instance_cache import EstateCache, Estates
from bot.core.ports import GroupLookupError
from bot.core.rules.backup_form import (
    CHANNEL_FIELD,
    INSTANCE_FIELD,
    FormErrors,
    FormInput,
    InstanceOption,
    instance_options,
    may_back_up,
    read_form,
)
from bot.core.rules.grammar import BackupCommand, split_instance
from bot.core.rules.instances import BackupFormat, Instance
from bot.core.rules.policy import Action, Actor, decide, may_act_somewhere, ref_of

log = logging.getLogger(__name__)

#: Seconds the picker's options may take (user groups and listings together), inside Slack's 3 s.
OPTIONS_WAIT = 2.0
#: Seconds a submission's check may wait for the person's user groups before leaving the decision to the
#: path it runs.
SUBMISSION_WAIT = 1.0


class BackupForm:
    def __init__(
        self, workflow: Workflow, *, estates: Estates | None = None, options_wait: float = OPTIONS_WAIT
    ) -> None:
        self._w = workflow
        self._options_wait = options_wait
        self._estates = estates or Estates(workflow.clouds, workflow.clock)

    @property
    def default_format(self) -> BackupFormat:
        """The format the form has chosen when it opens (``BOT_DEFAULT_FORMAT``)."""
        return self._w.options.default_format

    def _estate(self, cloud: str) -> EstateCache:
        return self._estates.of(cloud)

    async def options(self, user_id: str, channel_id: str | None, typed: str) -> list[InstanceOption]:
        """The instances ``user_id`` may back up in ``channel_id`` (None: in some channel) matching
        ``typed``; empty when nothing could be found out in time."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._options_wait
        policy = self._w.policy()
        try:
            async with asyncio.timeout(self._options_wait):
                # Groups are not per channel; without one, the channels are decided per instance.
                actor = await self._w.actor(policy, user_id, channel_id or "")
        except TimeoutError:
            log.warning("user groups of %s not known in time for the form's options", user_id)
            return []
        anywhere = channel_id is None
        if not anywhere and not may_act_somewhere(policy, actor, Action.BACKUP):
            return []  # nothing to offer, and no cloud asked
        instances = await self._listed(max(0.0, deadline - loop.time()))
        return instance_options(
            instances, policy, actor, typed, qualified=self._w.multi_cloud, anywhere=anywhere
        )

    async def _listed(self, wait: float) -> list[Instance]:
        names = list(self._w.clouds.names)
        tasks = {asyncio.ensure_future(self._estate(name).instances()): name for name in names}
        done, pending = await asyncio.wait(tasks, timeout=wait)
        for task in pending:
            # The listing itself goes on (shielded) for the next keystroke; only this wait ends.
            task.cancel()
            log.warning("cloud %s did not list its instances in time for the form", tasks[task])
        found: list[Instance] = []
        for task in done:
            error = task.exception()
            if error is not None:
                if not isinstance(error, DcsError):
                    raise error
                log.warning("cloud %s could not list its instances for the form: %s", tasks[task], error)
                continue
            found += [replace(instance, cloud=tasks[task]) for instance in task.result()]
        return found

    async def check(
        self, user_id: str, channel_id: str | None, entered: FormInput
    ) -> BackupCommand | FormErrors:
        """The command the form asks for, or errors on its fields: what cannot be read, and an instance the
        person may not back up in the channel or that is not there, as far as the fresh listings tell (no
        call). ``channel_id`` None: the form asked for the channel, and a refusal is shown on that field."""
        command = read_form(entered)
        errors = dict(command.errors) if isinstance(command, FormErrors) else {}
        channel = channel_id or entered.channel
        if channel is None:
            errors[CHANNEL_FIELD] = "Please choose the channel for the confirmation card."
        if errors or isinstance(command, FormErrors) or channel is None:
            return FormErrors(errors)
        problem = await self._instance_problem(user_id, channel, command)
        if problem is None:
            return command
        field, message = problem
        return FormErrors(
            {CHANNEL_FIELD if field is None and channel_id is None else INSTANCE_FIELD: message}
        )

    async def _instance_problem(
        self, user_id: str, channel_id: str, command: BackupCommand
    ) -> tuple[str | None, str] | None:
        """What is wrong with the instance: on its own field, or (field None) the policy's refusal for the
        channel."""
        address = split_instance(command.instance)
        clouds = list(self._w.clouds.names)
        if address.cloud is not None and address.cloud not in clouds:
            return INSTANCE_FIELD, (
                "That instance is in a cloud this bot does not serve. Please pick one from the list."
            )
        cloud = address.cloud or (clouds[0] if len(clouds) == 1 else None)
        listed = self._estate(cloud).fresh() if cloud is not None else None
        if listed is None:
            return None  # nothing known without asking DCS: the typed command's path finds out
        wanted = address.target.lower()
        instance = next((i for i in listed if wanted in (i.instance_id.lower(), i.name)), None)
        if instance is None:
            return INSTANCE_FIELD, "That instance is not there any more. Please pick another one."
        policy = self._w.policy()
        try:
            async with asyncio.timeout(SUBMISSION_WAIT):
                actor: Actor = await self._w.actor(policy, user_id, channel_id)
        except (TimeoutError, GroupLookupError):
            return None
        instance = replace(instance, cloud=cloud)
        if may_back_up(policy, actor, instance):
            return None
        if self._w.undecidable(policy, actor, Action.BACKUP, ref_of(instance)):
            return None  # the path asks the person to try again, as for a typed command
        return None, decide(policy, actor, Action.BACKUP, ref_of(instance)).reason
