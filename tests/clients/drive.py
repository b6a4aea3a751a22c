"""Create, list and verify a key through the Python client that openapi-python-client
generated from openapi.yaml (tests/clients.sh).

    python3 drive.py BASE_URL ADMIN_SECRET    with the generated package apikeys_client on sys.path

Every step goes through the generated, typed functions and models; any surprise is an
AssertionError, so a nonzero exit.
"""

import sys
import uuid

from apikeys_client import AuthenticatedClient
from apikeys_client.api.api_keys import create_api_key, list_api_keys
from apikeys_client.api.verify import verify_api_key
from apikeys_client.models import (
    ApiKeyWithSecret,
    CreateKeyRequest,
    KeyPage,
    Permission,
    VerifyRequest,
    VerifyResult,
    VerifyResultCode,
)


def create(client, name):
    reply = create_api_key.sync_detailed(
        client=client, body=CreateKeyRequest(name=name, permissions=[Permission.API_KEYS_VIEW])
    )
    assert reply.status_code == 201, (reply.status_code, reply.content)
    key = reply.parsed
    assert isinstance(key, ApiKeyWithSecret), key
    assert key.name == name and key.restricted is True, key
    assert key.permissions == [Permission.API_KEYS_VIEW], key.permissions
    assert key.status.value == "active", key.status
    assert key.secret.startswith("apk_") and key.last_four_digits == key.secret[-4:], key
    return key


def listed(client, key):
    # By name: exactly the new key.
    reply = list_api_keys.sync_detailed(client=client, name=key.name)
    assert reply.status_code == 200, (reply.status_code, reply.content)
    page = reply.parsed
    assert isinstance(page, KeyPage), page
    assert [k.id for k in page.data] == [key.id], page.data
    assert page.data[0].permissions == [Permission.API_KEYS_VIEW], page.data[0]
    # Unfiltered, newest first: the new key leads the page.
    page = list_api_keys.sync(client=client, limit=5)
    assert isinstance(page, KeyPage), page
    assert page.data and page.data[0].id == key.id, [k.id for k in page.data]


def verify(client, secret, permissions):
    reply = verify_api_key.sync_detailed(
        client=client, body=VerifyRequest(key=secret, permissions=permissions)
    )
    assert reply.status_code == 200, (reply.status_code, reply.content)
    assert isinstance(reply.parsed, VerifyResult), reply.parsed
    return reply.parsed


def main(base_url, admin_secret):
    client = AuthenticatedClient(base_url=base_url, token=admin_secret, raise_on_unexpected_status=True)
    key = create(client, f"python client {uuid.uuid4()}")
    print(f"clients: python: created {key.id} ({key.name})")
    listed(client, key)
    print("clients: python: listed it")
    result = verify(client, key.secret, [Permission.API_KEYS_VIEW])
    assert result.code == VerifyResultCode.VALID and result.valid is True, result
    assert result.key.id == key.id, result.key
    result = verify(client, key.secret, [Permission.CALLS_VIEW])
    assert result.code == VerifyResultCode.INSUFFICIENT_PERMISSIONS and result.valid is False, result
    result = verify(client, "apk_not-a-real-key", None)
    assert result.code == VerifyResultCode.NOT_FOUND and result.key is None, result
    print("clients: python: verify: VALID, INSUFFICIENT_PERMISSIONS without calls.view, NOT_FOUND for no key")


if __name__ == "__main__":
    main(*sys.argv[1:])
