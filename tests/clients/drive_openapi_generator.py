"""Create, list and verify a key through the Python client that openapi-generator's python
generator made from openapi.yaml (pydantic models; tests/clients.sh).

    python3 drive_openapi_generator.py BASE_URL ADMIN_SECRET
        with that generated package apikeys_client on sys.path

Any surprise is an exception, so a nonzero exit.
"""

import sys
import uuid

from apikeys_client import (
    ApiClient,
    ApiKeysApi,
    Configuration,
    CreateKeyRequest,
    Permission,
    VerifyApi,
    VerifyRequest,
)


def check(ok, what, got):
    if not ok:
        raise AssertionError(f"clients: openapi-generator python: {what}: {got!r}")


def main(base_url, admin_secret):
    client = ApiClient(Configuration(host=base_url, access_token=admin_secret))
    keys, verify = ApiKeysApi(client), VerifyApi(client)
    name = f"openapi-generator python client {uuid.uuid4()}"
    view = [Permission.API_KEYS_DOT_VIEW]
    reply = keys.create_api_key_with_http_info(CreateKeyRequest(name=name, permissions=view))
    check(reply.status_code == 201, "create", reply)
    key = reply.data
    check(key.name == name and key.restricted is True and key.status == "active", "the created key", key)
    check(key.permissions == view, "its permissions", key.permissions)
    check(key.secret.startswith("apk_") and key.last_four_digits == key.secret[-4:], "its secret", key)
    print(f"clients: openapi-generator python: created {key.id} ({key.name})")

    page = keys.list_api_keys(name=name)
    check([k.id for k in page.data] == [key.id], "list by name", page)
    page = keys.list_api_keys(limit=5)
    check(page.data and page.data[0].id == key.id, "list, newest first", page)
    print("clients: openapi-generator python: listed it")

    for secret, permissions, code in [
        (key.secret, view, "VALID"),
        (key.secret, [Permission.CALLS_DOT_VIEW], "INSUFFICIENT_PERMISSIONS"),
        ("apk_not-a-real-key", None, "NOT_FOUND"),
    ]:
        result = verify.verify_api_key(VerifyRequest(key=secret, permissions=permissions))
        check(result.code == code and result.valid == (code == "VALID"), f"verify, expected {code}", result)
        check((result.key.id if result.key else None) == (None if code == "NOT_FOUND" else key.id), "the verified key", result)
    print("clients: openapi-generator python: verify: VALID, INSUFFICIENT_PERMISSIONS without calls.view, NOT_FOUND for no key")


if __name__ == "__main__":
    main(*sys.argv[1:])
