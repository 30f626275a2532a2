"""The network dependency builds run on, and the check that it is confined.

A build needs the package index and nothing else. With `CI_BUILD_NETWORK=isolated` (the
default) each installation has a bridge network of its own, `ci-build-<installation>` on the
interface `cib<installation>`, created the first time a build needs it and kept (labelled
with the installation). Its containers cannot talk to each other (ICC off). What it reaches
beyond that is decided by the host firewall `scripts/build-network-firewall` installs for
every `cib*` interface: public addresses (the index) and the host's DNS resolvers; not the
Docker host, private, shared or link-local ranges, nor IPv6.

Docker cannot set such rules itself, and the controller may be neither root nor on the
engine's machine, so it checks them before a build: a sandboxed container on the network
connects to the network's gateway, which is the Docker host. A rejection (the firewall
answers "administratively prohibited") or silence lets the build go on; an answer from the
host (refused or accepted) fails the build with what to do. The check sends traffic only to
that bridge address of the host. It sees the host rule only; the script installs the
forwarding (range) rules before it, so one stands for the other.

A passed check holds for `CHECK_VALID_SECONDS`: the check's container start is ~0.5 s, a
third of a small build, and firewall rules do not come and go between two builds. So the
first build of a controller checks (concurrent builds wait for that one check), later builds
within the period do not, and the first build after it checks again. A network the
controller (re)creates is checked again at once, and a failed check is never kept: every
build re-checks until the firewall is fixed, with no restart needed.

Any other value of the setting names a Docker network used as it is, unchecked: `bridge`
(Docker's default) reaches the host and the local network, so it is only for installations
whose users are all trusted; `none` suits requirements that need no download.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import logging
import time
from typing import cast

from docker.errors import APIError, NotFound

from ci_common.models import DEFAULT_ENGINE
from ci_controller.docker.engine_api import ENGINE_ERRORS, EngineApi, Json, explain
from ci_controller.docker.labels import OwnerLabels
from ci_controller.docker.running import ContainerRunner, run_to_end
from ci_controller.docker.sandboxes import Sandboxes
from ci_controller.runtime import (
    BUILD_NETWORK_ISOLATED,
    LABEL_INSTALLATION,
    ROLE_PROBE,
    RuntimeFault,
    Sandbox,
)

logger = logging.getLogger(__name__)

BRIDGE_PREFIX = "cib"
"""The firewall matches build networks by this interface prefix (`-i cib+`)."""
CHECK_VALID_SECONDS = 300.0
"""How long a passed check lets builds go on without another."""
_CHECK_PORT = 9
_CHECK_REACHED_EXIT = 1
_CHECK = """
import errno, socket, sys
host, port = sys.argv[1], int(sys.argv[2])
try:
    socket.create_connection((host, port), timeout=3).close()
except OSError as exc:
    if exc.errno == errno.ECONNREFUSED:
        print(f"the Docker host answered at {host} (connection refused)")
        sys.exit(1)
    print(f"the Docker host is unreachable: {exc}")
    sys.exit(0)
print(f"the Docker host accepted a connection at {host}:{port}")
sys.exit(1)
"""
_HOW_TO_CONFINE = (
    "install the firewall for build networks with scripts/build-network-firewall (as root "
    "on the Docker engine's machine; scripts/install-docker does it), or, if every user of "
    "this installation is trusted, set CI_BUILD_NETWORK=bridge (see README, Dependency builds)"
)


class BuildNetwork:
    """Resolves a build's network: the installation's confined network for `isolated`."""

    def __init__(
        self,
        *,
        owner: OwnerLabels,
        calls: EngineApi,
        sandboxes: Sandboxes,
        runner: ContainerRunner,
    ) -> None:
        self._owner = owner
        self._api = calls
        self._sandboxes = sandboxes
        self._runner = runner
        self.name, self.bridge = network_names(owner)
        self._lock = asyncio.Lock()
        self._check_lock = asyncio.Lock()
        self._passed_at: dict[str, float] = {}
        """When the check last passed, by gateway (forgotten when the network is made)."""

    async def confine(self, *, image: str, sandbox: Sandbox) -> Sandbox:
        """`sandbox` with its network ready for a build; `RuntimeFault` when the isolated
        network lets a build reach the Docker host."""
        confined, gateway = await self.ready(sandbox)
        if gateway is not None:
            await self.check(image=image, sandbox=confined, gateway=gateway)
        return confined

    async def ready(self, sandbox: Sandbox) -> tuple[Sandbox, str | None]:
        """`sandbox` on its build network, made if missing, and the gateway `check` must
        find closed before a build starts (None: a network used as it is, unchecked). Lets a
        caller prepare the build container while the check runs."""
        if sandbox.network != BUILD_NETWORK_ISOLATED:
            return sandbox, None
        async with self._lock:  # builds of one controller run concurrently
            gateway = await asyncio.to_thread(self._ensure)
        return dataclasses.replace(sandbox, network=self.name), gateway

    async def check(self, *, image: str, sandbox: Sandbox, gateway: str) -> None:
        """`RuntimeFault` unless the network's gateway, the Docker host, is unreachable
        (checked now, or by a check that passed less than `CHECK_VALID_SECONDS` ago)."""
        async with self._check_lock:  # concurrent builds wait for one check
            passed_at = self._passed_at.get(gateway)
            if passed_at is not None and _now() - passed_at < CHECK_VALID_SECONDS:
                return
            started = _now()
            await self._check(image=image, sandbox=sandbox, gateway=gateway)
            self._passed_at[gateway] = started

    def _ensure(self) -> str:
        """The network's gateway address, creating the network when it is missing."""
        try:
            try:
                found = self._api.inspect_network(self.name)
            except NotFound:
                self._create()
                self._passed_at.clear()  # a new network: nothing is known of it
                found = self._api.inspect_network(self.name)
        except ENGINE_ERRORS as exc:
            raise RuntimeFault(
                f"cannot set up the build network {self.name}: {explain(exc)}"
            ) from exc
        ipam = cast(Json, found.get("IPAM") or {})
        configs = cast(list[Json], ipam.get("Config") or [])
        gateways = [str(c["Gateway"]) for c in configs if c.get("Gateway")]
        if not gateways:
            raise RuntimeFault(
                f"the build network {self.name} has no gateway; remove it "
                f"(docker network rm {self.name}) and the controller makes it again"
            )
        return gateways[0]

    def _create(self) -> None:
        logger.info("creating the build network %s (interface %s)", self.name, self.bridge)
        try:
            self._api.create_network(
                self.name,
                driver="bridge",
                options={
                    "com.docker.network.bridge.name": self.bridge,
                    "com.docker.network.bridge.enable_icc": "false",
                },
                labels={LABEL_INSTALLATION: self._owner.installation_id},
                check_duplicate=True,
            )
        except APIError as exc:
            if exc.status_code != 409:  # 409: made meanwhile by another caller
                raise

    async def _check(self, *, image: str, sandbox: Sandbox, gateway: str) -> None:
        try:
            container_id = await asyncio.to_thread(
                self._sandboxes.create,
                image,
                command=["python", "-c", _CHECK, gateway, str(_CHECK_PORT)],
                sandbox=sandbox,
                labels=self._owner.for_role(ROLE_PROBE),
            )
        except ENGINE_ERRORS as exc:
            raise RuntimeFault(
                f"cannot check the build network {self.name}: {explain(exc)}"
            ) from exc
        status, output = await run_to_end(self._runner, container_id)
        said = output.decode(errors="replace").strip()
        if status.exit_code == _CHECK_REACHED_EXIT:
            raise RuntimeFault(
                f"dependency builds are not confined: from the build network {self.name}, "
                f"{said}; {_HOW_TO_CONFINE}"
            )
        if status.exit_code != 0:
            raise RuntimeFault(
                f"cannot check the build network {self.name} (the check exited with "
                f"{status.exit_code}: {said[-300:]})"
            )
        logger.debug("build network %s is confined: %s", self.name, said)


def network_names(owner: OwnerLabels) -> tuple[str, str]:
    """The build network's name and its bridge interface's (at most 15 characters). Engines
    on one machine share the host's interfaces, so another engine's bridge is named by a hash
    of the engine's name too (the firewall matches the `cib` prefix whatever follows)."""
    if owner.engine == DEFAULT_ENGINE:
        tag = owner.installation_id
        return f"ci-build-{tag}", f"{BRIDGE_PREFIX}{tag}"[:15]  # IFNAMSIZ - 1
    tag = hashlib.sha256(f"{owner.installation_id}:{owner.engine}".encode()).hexdigest()[:12]
    return f"ci-build-{owner.installation_id}-{owner.engine}", f"{BRIDGE_PREFIX}{tag}"


def _now() -> float:
    """The clock check verdicts are kept by (a module function, so tests can move it)."""
    return time.monotonic()
