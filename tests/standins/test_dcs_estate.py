"""One emulator process, two clouds (``dcs-bot emulator --clouds 2``): each its own endpoint, project,
credentials and instances, and the clouds-file blocks it prints are a valid clouds file."""

from __future__ import annotations

import aiohttp
import pytest

from bot.clouds_file import AkSk, Iam, parse_clouds
from bot.core.errors import DcsApiError
from bot.dcs.auth import AkSkAuth, TokenAuth
from bot.dcs.client import DcsClient
from bot.standins.dcs.control import EmulatedCloud, secret_variable, start_estate


async def names_in(
    cloud: EmulatedCloud, session: aiohttp.ClientSession, *, auth: AkSkAuth | TokenAuth
) -> set[str]:
    info = cloud.running.connection_info()
    client = DcsClient(session, endpoint=info.endpoint, project_id=info.project_id, auth=auth, timeout=5)
    page = await client.list_instances()
    return {instance.name for instance in page.instances}


async def test_two_clouds_with_their_own_projects_credentials_and_instances() -> None:
    estate = await start_estate(2)
    try:
        de, nl = estate
        assert (de.name, de.iam, nl.name, nl.iam) == ("eu-de", False, "eu-nl", True)
        assert de.running.url != nl.running.url
        de_info, nl_info = de.running.connection_info(), nl.running.connection_info()
        assert de_info.project_id != nl_info.project_id
        assert de_info.access_key != nl_info.access_key and de_info.iam_username != nl_info.iam_username

        # The printed blocks and variables make a clouds file the bot reads as it is.
        environ = de.env() | nl.env()
        assert set(environ) == {"DCS_EU_DE_SECRET_KEY", "DCS_EU_NL_PASSWORD"}
        clouds = parse_clouds(de.toml() + "\n" + nl.toml(), default_timeout=5, environ=environ)
        assert [cloud.name for cloud in clouds] == ["eu-de", "eu-nl"]
        assert isinstance(clouds[0].auth, AkSk) and isinstance(clouds[1].auth, Iam)

        async with aiohttp.ClientSession() as session:
            de_auth = AkSkAuth(de_info.access_key, de_info.secret_key, de_info.project_id)
            nl_auth = TokenAuth(
                session,
                iam_endpoint=nl_info.endpoint,
                username=nl_info.iam_username,
                password=nl_info.iam_password,
                domain=nl_info.iam_domain,
                project_id=nl_info.project_id,
                timeout=5,
            )
            de_names = await names_in(de, session, auth=de_auth)
            nl_names = await names_in(nl, session, auth=nl_auth)
            assert "redis-prod" in de_names and "redis-prod" in nl_names, "one name in both clouds"
            assert "redis-nl-sessions" in nl_names - de_names

            # eu-de's keys open nothing in eu-nl: each cloud checks its own signatures.
            wrong = AkSkAuth(de_info.access_key, de_info.secret_key, nl_info.project_id)
            with pytest.raises(DcsApiError) as refused:
                await names_in(nl, session, auth=wrong)
            assert refused.value.status == 401
    finally:
        for cloud in estate:
            await cloud.running.close()


async def test_one_cloud_or_two() -> None:
    [only] = await start_estate(1)
    await only.running.close()
    assert only.name == "eu-de"
    with pytest.raises(ValueError, match="1 to 2 clouds"):
        await start_estate(3)
    assert secret_variable("eu-nl", iam=True) == "DCS_EU_NL_PASSWORD"
