"""``sightd keys create | list | revoke``: API keys of the store named by the configuration."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from sightd import config
from sightd.store import keys
from sightd.store.database import open_database

_STORE_OPTIONS = ("data_dir", "database_url")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("keys", help="create, list or revoke API keys")
    actions = parser.add_subparsers(dest="keys_action", required=True, metavar="ACTION")

    create = actions.add_parser("create", help="create a key; the key is printed on the last line, once")
    config.add_arguments(create, _STORE_OPTIONS)
    create.add_argument(
        "--tenant", default=keys.DEFAULT_TENANT, help="tenant owning the key (created if new)"
    )
    create.add_argument("--name", default="", help="a label for the key")
    create.set_defaults(handler=_create)

    listing = actions.add_parser("list", help="list keys (ids, tenants, dates; never secrets)")
    config.add_arguments(listing, _STORE_OPTIONS)
    listing.set_defaults(handler=_list)

    revoke = actions.add_parser("revoke", help="revoke a key by its id (as `keys list` shows it)")
    config.add_arguments(revoke, _STORE_OPTIONS)
    revoke.add_argument("key_id", help="the key's id")
    revoke.set_defaults(handler=_revoke)


async def _run_create(settings: config.Settings, tenant: str, name: str) -> tuple[keys.ApiKey, str]:
    database = await open_database(settings.resolved_database_url)
    try:
        async with database.write() as connection:
            return await keys.create_key(connection, tenant=tenant, name=name)
    finally:
        await database.close()


def _create(args: argparse.Namespace) -> int:
    settings = config.load_settings(args)
    try:
        record, plaintext = asyncio.run(_run_create(settings, args.tenant, args.name))
    except keys.ApiKeyError as error:
        print(f"sightd keys create: {error}", file=sys.stderr)
        return 1
    print(f"Created API key {record.id} for tenant {record.tenant!r}. It is shown once; store it now:")
    print(plaintext)
    return 0


async def _run_list(settings: config.Settings) -> list[keys.ApiKey]:
    database = await open_database(settings.resolved_database_url)
    try:
        async with database.read() as connection:
            return await keys.list_keys(connection)
    finally:
        await database.close()


def _list(args: argparse.Namespace) -> int:
    records = asyncio.run(_run_list(config.load_settings(args)))
    print(f"{'ID':<10} {'TENANT':<20} {'CREATED':<20} {'STATUS':<28} NAME")
    for record in records:
        status = f"revoked {record.revoked_at:%Y-%m-%d %H:%M}" if record.revoked_at else "active"
        created = f"{record.created_at:%Y-%m-%d %H:%M:%S}"
        print(f"{record.id:<10} {record.tenant:<20} {created:<20} {status:<28} {record.name}")
    return 0


async def _run_revoke(settings: config.Settings, key_id: str) -> None:
    database = await open_database(settings.resolved_database_url)
    try:
        async with database.write() as connection:
            await keys.revoke_key(connection, key_id)
    finally:
        await database.close()


def _revoke(args: argparse.Namespace) -> int:
    try:
        asyncio.run(_run_revoke(config.load_settings(args), args.key_id))
    except keys.ApiKeyError as error:
        print(f"sightd keys revoke: {error}", file=sys.stderr)
        return 1
    print(f"Revoked API key {args.key_id}.")
    return 0
