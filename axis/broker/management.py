"""A small client for the RabbitMQ management HTTP API.

The hub provisions vhosts, agency users, permissions and queues through this API
(AMQP cannot create users), and tests use it to look at what the broker really holds.

    >>> with Management("http://127.0.0.1:15672", "guest", "guest") as mgmt:
    ...     mgmt.create_vhost("axis-demo")
    ...     mgmt.declare_queue("axis-demo", "q", arguments={"x-queue-type": "quorum"})
    ...     mgmt.queue("axis-demo", "q")["messages"]
    0

Every failure is a :class:`ManagementError`; a broker that cannot be reached at all is
the subclass :class:`ManagementUnavailable`.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import Any, Self
from urllib.parse import quote

import httpx

__all__ = ["Management", "ManagementError", "ManagementUnavailable"]

# The depth counters every caller of ``queue()`` may rely on; the broker only adds
# them to the JSON once its stats collector has seen the queue.
_DEPTH_KEYS = ("messages", "messages_ready", "messages_unacknowledged", "consumers")


class ManagementError(Exception):
    """A management API call failed.

    ``status`` is the HTTP status, or ``None`` when no response came back; ``detail``
    is the broker's own explanation (its ``reason`` field) when it gave one.
    """

    def __init__(self, status: int | None, method: str, path: str, detail: str) -> None:
        self.status = status
        self.method = method
        self.path = path
        self.detail = detail
        where = f"{method} {path}"
        super().__init__(
            f"RabbitMQ management API {where} failed"
            + (f" with HTTP {status}" if status is not None else "")
            + (f": {detail}" if detail else "")
        )


class ManagementUnavailable(ManagementError):
    """The management API did not answer (refused, timed out, not HTTP)."""

    def __init__(self, method: str, path: str, detail: str, base_url: str) -> None:
        super().__init__(
            None,
            method,
            path,
            f"{detail} — is RabbitMQ running with the management plugin at {base_url}? "
            "(`rabbitmq-plugins enable rabbitmq_management`, or `make services`)",
        )


def _q(segment: str) -> str:
    """Quote one path segment; ``/`` (the default vhost) must become ``%2F``."""
    return quote(segment, safe="")


class Management:
    """Client for the RabbitMQ management HTTP API (one keep-alive connection).

    ``url`` is the API root without ``/api`` (e.g. ``http://127.0.0.1:15672``). The
    password is only handed to httpx for basic auth; it never appears in errors,
    ``repr`` or logs.
    """

    def __init__(self, url: str, user: str, password: str, *, timeout: float = 60) -> None:
        self.url = url.rstrip("/")
        self.user = user
        self._client = httpx.Client(
            base_url=self.url + "/api",
            auth=httpx.BasicAuth(user, password),
            timeout=httpx.Timeout(timeout),
            headers={"content-type": "application/json"},
        )

    def __repr__(self) -> str:
        return f"Management({self.url!r}, user={self.user!r})"

    def close(self) -> None:
        """Close the underlying HTTP connection."""
        self._client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        ok_missing: bool = False,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        """Send one request; return the decoded JSON body, or ``None`` if it had none.

        With ``ok_missing`` a 404 counts as success, which makes deletes idempotent.
        """
        try:
            try:
                response = self._client.request(method, path, json=json, headers=headers)
            except (httpx.RemoteProtocolError, httpx.ReadError):
                # The server closes keep-alive connections it finds idle; every call
                # of this API is idempotent (PUT/DELETE/GET), so one retry is safe.
                response = self._client.request(method, path, json=json, headers=headers)
        except httpx.TransportError as exc:
            detail = f"{type(exc).__name__}: {exc}"
            raise ManagementUnavailable(method, path, detail, self.url) from exc
        if response.status_code == 404 and ok_missing:
            return None
        if response.status_code >= 400:
            raise ManagementError(response.status_code, method, path, _detail(response))
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise ManagementError(
                response.status_code, method, path, "response is not JSON"
            ) from None

    def overview(self) -> dict[str, Any]:
        """Broker-wide overview (versions, totals); a cheap liveness and auth check."""
        result: dict[str, Any] = self._request("GET", "/overview")
        return result

    def create_vhost(self, name: str, *, wait: float = 30.0) -> None:
        """Create a virtual host (an existing one is left as it is) and wait until it runs.

        A busy broker answers the PUT before the vhost's processes are up, and a
        connection made in that moment is refused with "vhost is down".
        """
        self._request("PUT", f"/vhosts/{_q(name)}")
        deadline = time.monotonic() + wait
        while True:
            states = (self._request("GET", f"/vhosts/{_q(name)}") or {}).get("cluster_state", {})
            if states and all(state == "running" for state in states.values()):
                return
            if time.monotonic() > deadline:
                raise ManagementError(
                    None, "GET", f"/vhosts/{name}", f"vhost not running: {states}"
                )
            time.sleep(0.1)

    def delete_vhost(self, name: str) -> None:
        """Delete a virtual host and everything in it; a missing one is fine."""
        self._request("DELETE", f"/vhosts/{_q(name)}", ok_missing=True)

    def list_vhosts(self) -> list[str]:
        """The names of every virtual host."""
        return [vhost["name"] for vhost in self._request("GET", "/vhosts")]

    def vhost_exists(self, name: str) -> bool:
        """Whether the virtual host exists."""
        return self._request("GET", f"/vhosts/{_q(name)}", ok_missing=True) is not None

    def put_user(
        self,
        name: str,
        password: str | None = None,
        *,
        password_hash: str | None = None,
        tags: Iterable[str] = (),
    ) -> None:
        """Create or update a user.

        Give either ``password`` or ``password_hash`` (RabbitMQ's own hash format);
        with neither, the user exists but cannot log in with a password.
        """
        if password is not None and password_hash is not None:
            raise ValueError("give password or password_hash, not both")
        # A comma-separated string is what every 3.x release accepts for tags.
        body: dict[str, Any] = {"tags": ",".join(tags)}
        if password is not None:
            body["password"] = password
        else:
            body["password_hash"] = password_hash or ""
        self._request("PUT", f"/users/{_q(name)}", json=body)

    def get_user(self, name: str) -> dict[str, Any] | None:
        """The user's record (``name``, ``tags`` as a list...), or None if there is none."""
        result: dict[str, Any] | None = self._request("GET", f"/users/{_q(name)}", ok_missing=True)
        if result is not None and isinstance(result.get("tags"), str):
            result["tags"] = [t for t in result["tags"].split(",") if t]
        return result

    def delete_user(self, name: str) -> None:
        """Delete a user (and its permissions in every vhost); a missing one is fine."""
        self._request("DELETE", f"/users/{_q(name)}", ok_missing=True)

    def list_users(self) -> list[dict[str, Any]]:
        """All users of the broker, with ``tags`` normalised to a list of strings."""
        users: list[dict[str, Any]] = self._request("GET", "/users")
        for user in users:
            # Before 3.9 tags came back as one comma-separated string.
            tags = user.get("tags", [])
            if isinstance(tags, str):
                user["tags"] = [t for t in tags.split(",") if t]
        return users

    def user_permissions(self, user: str) -> list[dict[str, Any]]:
        """The user's permissions in every vhost (empty for an unknown user)."""
        result = self._request("GET", f"/users/{_q(user)}/permissions", ok_missing=True)
        return list(result or [])

    def set_permissions(self, vhost: str, user: str, configure: str, write: str, read: str) -> None:
        """Set the user's configure/write/read regular expressions on the vhost."""
        self._request(
            "PUT",
            f"/permissions/{_q(vhost)}/{_q(user)}",
            json={"configure": configure, "write": write, "read": read},
        )

    def clear_permissions(self, vhost: str, user: str) -> None:
        """Remove the user's permissions on the vhost; none set is fine."""
        self._request("DELETE", f"/permissions/{_q(vhost)}/{_q(user)}", ok_missing=True)

    def declare_exchange(self, vhost: str, name: str, kind: str, durable: bool = True) -> None:
        """Declare an exchange; redeclaring with the same properties is a no-op.

        Raises :class:`ManagementError` (HTTP 400) if it exists with other properties.
        """
        self._request(
            "PUT",
            f"/exchanges/{_q(vhost)}/{_q(name)}",
            json={"type": kind, "durable": durable, "auto_delete": False, "internal": False},
        )

    def exchange(self, vhost: str, name: str) -> dict[str, Any]:
        """The exchange's definition (``type``, ``durable``, ``arguments``...)."""
        result: dict[str, Any] = self._request("GET", f"/exchanges/{_q(vhost)}/{_q(name)}")
        return result

    def declare_queue(
        self,
        vhost: str,
        name: str,
        *,
        arguments: Mapping[str, Any] | None = None,
        durable: bool = True,
    ) -> None:
        """Declare a queue; redeclaring with the same properties is a no-op.

        Quorum queues need ``arguments={"x-queue-type": "quorum"}`` and ``durable``.
        Raises :class:`ManagementError` (HTTP 400) if it exists with other arguments.
        """
        self._request(
            "PUT",
            f"/queues/{_q(vhost)}/{_q(name)}",
            json={"durable": durable, "auto_delete": False, "arguments": dict(arguments or {})},
        )

    def delete_queue(self, vhost: str, name: str) -> None:
        """Delete a queue with its messages and bindings; a missing one is fine."""
        self._request("DELETE", f"/queues/{_q(vhost)}/{_q(name)}", ok_missing=True)

    def queue(self, vhost: str, name: str) -> dict[str, Any]:
        """The queue's definition and depth.

        ``messages``, ``messages_ready``, ``messages_unacknowledged`` and ``consumers``
        are always present. They come from the broker's statistics, which lag by up to
        the collection interval (5 s by default): poll, or count with AMQP, when a
        test needs an exact figure right after publishing.
        """
        result: dict[str, Any] = self._request("GET", f"/queues/{_q(vhost)}/{_q(name)}")
        for key in _DEPTH_KEYS:
            result.setdefault(key, 0)
        return result

    def list_queues(self, vhost: str) -> list[dict[str, Any]]:
        """Every queue of the vhost, as :meth:`queue` returns them."""
        queues: list[dict[str, Any]] = self._request("GET", f"/queues/{_q(vhost)}")
        for queue in queues:
            for key in _DEPTH_KEYS:
                queue.setdefault(key, 0)
        return queues

    def bind_queue(self, vhost: str, exchange: str, queue: str, routing_key: str = "") -> None:
        """Bind ``queue`` to ``exchange``; an identical existing binding is a no-op."""
        self._request(
            "POST",
            f"/bindings/{_q(vhost)}/e/{_q(exchange)}/q/{_q(queue)}",
            json={"routing_key": routing_key, "arguments": {}},
        )

    def list_connections(
        self, *, user: str | None = None, vhost: str | None = None
    ) -> list[dict[str, Any]]:
        """Open AMQP connections, optionally only those of ``user`` on ``vhost``.

        Like queue depths, the list comes from the statistics database and can lag a
        newly opened connection by a moment.
        """
        connections: list[dict[str, Any]] = self._request("GET", "/connections")
        return [
            c
            for c in connections
            if (user is None or c.get("user") == user)
            and (vhost is None or c.get("vhost") == vhost)
        ]

    def close_connection(self, name: str, reason: str = "") -> None:
        """Close an AMQP connection by name; one already gone is fine.

        ``reason`` reaches the client in the connection.close frame.
        """
        headers = {"X-Reason": reason} if reason else None
        self._request("DELETE", f"/connections/{_q(name)}", ok_missing=True, headers=headers)

    def list_bindings(self, vhost: str, exchange: str, queue: str) -> list[dict[str, Any]]:
        """The bindings from ``exchange`` to ``queue``."""
        result: list[dict[str, Any]] = self._request(
            "GET", f"/bindings/{_q(vhost)}/e/{_q(exchange)}/q/{_q(queue)}"
        )
        return result


def _detail(response: httpx.Response) -> str:
    """The broker's explanation of an error response, short and free of secrets."""
    try:
        body = response.json()
    except ValueError:
        return response.reason_phrase
    if isinstance(body, dict):
        error, reason = body.get("error"), body.get("reason")
        return ": ".join(str(part) for part in (error, reason) if part) or response.reason_phrase
    return response.reason_phrase
