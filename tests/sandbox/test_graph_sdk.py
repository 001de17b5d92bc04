"""The real msgraph-sdk GraphServiceClient + azure-identity over HTTPS against the sandbox (reference §9.2, §9.7)."""

from __future__ import annotations

import asyncio
import ssl
import time

import httpx
import pytest

from migrate.sandbox.graph import GraphSandbox, TenantSpec

SPEC = TenantSpec(seed=21, users=3, sites=2, teams=1, files_per_drive=30, max_depth=3, no_mysite_users=1)


@pytest.fixture(scope="module")
def tls_sandbox():
    with GraphSandbox(SPEC, tls=True, page_size=10, download_url_ttl=2) as g:
        yield g


def make_client(g: GraphSandbox, credential):
    from kiota_authentication_azure.azure_identity_authentication_provider import (
        AzureIdentityAuthenticationProvider,
    )
    from msgraph import GraphServiceClient
    from msgraph.graph_request_adapter import GraphRequestAdapter
    from msgraph.graph_request_adapter import options as graph_options
    from msgraph_core import GraphClientFactory

    verify = ssl.create_default_context(cafile=g.ca_path)
    http = GraphClientFactory.create_with_default_middleware(
        client=httpx.AsyncClient(timeout=httpx.Timeout(100, connect=30), verify=verify), options=graph_options)
    provider = AzureIdentityAuthenticationProvider(credential, scopes=["https://graph.microsoft.com/.default"])
    adapter = GraphRequestAdapter(provider, client=http)
    adapter.base_url = g.graph_url
    return GraphServiceClient(request_adapter=adapter), http


def secret_credential(g: GraphSandbox):
    from azure.identity.aio import ClientSecretCredential

    return ClientSecretCredential(g.tenant_id, g.client_id, g.client_secret, authority=g.authority,
                                  disable_instance_discovery=True, connection_verify=g.ca_path)


async def delta_all(rb_root, link: str | None = None):
    page = await (rb_root.delta.with_url(link).get() if link else rb_root.delta.get())
    items = list(page.value)
    while page.odata_next_link:
        page = await rb_root.delta.with_url(page.odata_next_link).get()
        items += page.value
    return items, page.odata_delta_link


def test_sdk_journey_over_https(tls_sandbox):
    g = tls_sandbox
    t = g.tenant

    async def journey():
        cred = secret_credential(g)
        client, http = make_client(g, cred)
        try:
            users = await client.users.get()
            assert {u.user_principal_name for u in users.value} == {u.upn for u in t.users}
            owner = next(u for u in t.users if u.drive_id)
            drive = await client.users.by_user_id(owner.id).drive.get()
            assert drive.id == owner.drive_id and drive.drive_type == "business"
            from msgraph.generated.models.o_data_errors.o_data_error import ODataError

            nomy = next(u for u in t.users if not u.drive_id)
            with pytest.raises(ODataError) as exc:
                await client.users.by_user_id(nomy.id).drive.get()
            assert exc.value.response_status_code == 404 and exc.value.error.code == "ResourceNotFound"
            site = t.sites[-1]
            libs = await client.sites.by_site_id(site.id).drives.get()
            assert [x.id for x in libs.value] == site.drive_ids
            sites = await client.sites.get_all_sites.get()
            assert {s.id for s in sites.value} == {s.id for s in t.sites}

            d = t.drive_list[0]
            root = client.drives.by_drive_id(d.id).items.by_drive_item_id("root")
            page = await root.children.get()
            names = [x.name for x in page.value]
            while page.odata_next_link:                       # page_size=10 forces several pages
                page = await root.children.with_url(page.odata_next_link).get()
                names += [x.name for x in page.value]
            assert sorted(names) == sorted(c.name for c in d.root.children.values())

            items, link = await delta_all(root)
            assert {x.id for x in items} == {i.id for i in d.live_items()} and link
            added = g.mutate.add_file(d.id, "/", "from-sdk-test.txt", 777)
            f = next(i for i in d.live_items() if i.kind == "file" and i.content.size and not i.malware)
            g.mutate.rename(d.id, f.id, "renamed-by-sdk-test.txt")
            changed, link2 = await delta_all(root, link)
            by_id = {x.id: x for x in changed}
            assert by_id[added["id"]].size == 777 and by_id[f.id].name == "renamed-by-sdk-test.txt"
            assert d.root.id in by_id and link2

            shared = next(i for i in d.live_items() if i.perms)
            perms = await client.drives.by_drive_id(d.id).items.by_drive_item_id(shared.id).permissions.get()
            assert len([p for p in perms.value if p.inherited_from is None]) == len(shared.perms)
            assert any(p.inherited_from is not None for p in perms.value)
            versioned = next(i for i in d.live_items() if i.old_versions)
            vs = await client.drives.by_drive_id(d.id).items.by_drive_item_id(versioned.id).versions.get()
            assert [v.id for v in vs.value][0] == versioned.version_label and len(vs.value) >= 2

            body = await client.drives.by_drive_id(d.id).items.by_drive_item_id(f.id).content.get()
            row = next(r for r in g.truth()[d.id] if r["id"] == f.id)
            import hashlib

            assert len(body) == row["size"] and hashlib.sha1(body).hexdigest() == row["sha1"]
            item = await client.drives.by_drive_id(d.id).items.by_drive_item_id(f.id).get()
            url = item.additional_data["@microsoft.graph.downloadUrl"]
            async with httpx.AsyncClient(verify=ssl.create_default_context(cafile=g.ca_path)) as plain:
                part = await plain.get(url, headers={"Range": "bytes=1-10"})
                assert part.status_code == 206 and part.content == body[1:11]
                await asyncio.sleep(2.2)
                assert (await plain.get(url)).status_code == 401

            g.expire_delta_tokens()
            with pytest.raises(Exception) as gone:
                await root.delta.with_url(link2).get()
            assert getattr(gone.value, "response_status_code", None) == 410
        finally:
            await http.aclose()
            await cred.close()

    asyncio.run(journey())
    assert g.stats()["requests"]["token"] >= 1


def test_certificate_credential_and_token_refresh():
    from azure.identity import CertificateCredential, ClientSecretCredential

    with GraphSandbox(SPEC, tls=True, token_lifetime=2) as g:
        cert = CertificateCredential(g.tenant_id, g.client_id, certificate_path=g.client_cert_path,
                                     authority=g.authority, disable_instance_discovery=True,
                                     connection_verify=g.ca_path)
        tok = cert.get_token("https://graph.microsoft.com/.default")
        with httpx.Client(verify=g.ca_path) as c:
            assert c.get(g.graph_url + "/users", headers={"Authorization": f"Bearer {tok.token}"}).status_code == 200
        wrong = ClientSecretCredential(g.tenant_id, g.client_id, "not-the-secret", authority=g.authority,
                                       disable_instance_discovery=True, connection_verify=g.ca_path)
        from azure.core.exceptions import ClientAuthenticationError

        with pytest.raises(ClientAuthenticationError):
            wrong.get_token("https://graph.microsoft.com/.default")

        async def run():
            cred = secret_credential(g)
            client, http = make_client(g, cred)
            try:
                await client.users.get()
                issued = g.authority_obj.issued
                time.sleep(2.5)                             # the token expires mid-run ...
                await client.users.get()                    # ... and azure-identity fetches a new one
                assert g.authority_obj.issued > issued
            finally:
                await http.aclose()
                await cred.close()

        asyncio.run(run())
