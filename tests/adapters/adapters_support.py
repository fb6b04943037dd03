"""Helpers of the adapter tests (importable, unlike conftest): clients, files, inbox writes."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import pika

from adapters import AgencyClient
from signing.pki import cert_pem, key_pem

_spec = importlib.util.spec_from_file_location(
    "axis_tests_hub_support", Path(__file__).parent.parent / "hub" / "conftest.py"
)
assert _spec is not None and _spec.loader is not None
hub_support = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = hub_support
_spec.loader.exec_module(hub_support)
Hub = hub_support.Hub
Agency = hub_support.Agency


def client_for(hub: Any, agency: Any, **options: Any) -> AgencyClient:
    """A client for ``agency``: trusts the hub's CA, pins the hub's certificate."""
    return hub.client(agency, **options)


def agency_files(hub: Any, agency: Any, folder: Path) -> dict[str, Path]:
    """Write the agency's key, certificate, password, the CA and the hub certificate to files."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {
        "key": folder / "agency.key",
        "cert": folder / "agency.pem",
        "password": folder / "amqp.password",
        "ca": folder / "ca.pem",
        "hub": folder / "hub.pem",
    }
    files["key"].write_bytes(key_pem(agency.signer.key))
    files["cert"].write_bytes(cert_pem(agency.signer.certificate))
    files["password"].write_text(agency.password)
    files["ca"].write_bytes(cert_pem(hub.ca.certificate))
    files["hub"].write_bytes(hub.config.signing.certificate.read_bytes())
    return files


def publish_to_inbox(hub: Any, code: str, body: bytes, headers: dict, kind: str = "edoc") -> None:
    """Put a message into ``code``'s inbox as the hub would (admin connection, test vhost)."""
    connection = pika.BlockingConnection(pika.URLParameters(hub.broker.amqp_url))
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        channel.basic_publish(
            "axis.deliver",
            code,
            body,
            pika.BasicProperties(
                delivery_mode=2,
                content_type="application/xml",
                type=kind,
                message_id=headers.get("x-axis-receipt-id"),
                headers=headers,
            ),
            mandatory=True,
        )
    finally:
        connection.close()
