"""An in-memory slice of the Docker engine API (`EngineApi`): enough for `DockerRuntime` to
create, run and commit short-lived containers, with every container and network recorded.

Host configs are kept as the options the runtime passed, so tests assert what it asked the
engine for. A container prints one line and exits with `exit_code(command)`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from docker.errors import NotFound


@dataclass
class CreatedContainer:
    id: str
    image: str
    command: list[str]
    user: str
    labels: dict[str, str]
    host_config: dict[str, object]
    environment: dict[str, str]
    archives: list[tuple[str, bytes]] = field(default_factory=lambda: list[tuple[str, bytes]]())
    networks: list[str] = field(default_factory=lambda: list[str]())
    """The networks it is on (its `network_mode`, until disconnected)."""


class _LogStream:
    def __init__(self, lines: list[bytes]) -> None:
        self._lines = lines

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._lines)

    def close(self) -> None:
        pass


class FakeEngine:
    """Records what the runtime asks for; answers like a quiet, healthy engine."""

    def __init__(self, *, exit_code: Callable[[list[str]], int] = lambda command: 0) -> None:
        self.exit_code = exit_code
        self.containers: dict[str, CreatedContainer] = {}
        self.networks: dict[str, dict[str, object]] = {}
        self.removal_gate: threading.Event | None = None
        """When set, removals wait for it (removals run in threads)."""
        self.volumes: list[str] = []
        self.removed: list[str] = []
        self.started: list[str] = []
        self.commits: list[tuple[str, str, str, list[str]]] = []
        self.cpus = 4
        self.output: Callable[[CreatedContainer], list[bytes]] = lambda container: [
            b"fake output\n"
        ]
        """What a container prints (each line gets a timestamp)."""
        self.disconnects: list[tuple[str, str]] = []
        self.disconnect_works = True

    # Images.

    def ping(self) -> bool:
        return True

    def info(self) -> Mapping[str, object]:
        return {"NCPU": self.cpus}

    def inspect_image(self, image: str) -> Mapping[str, object]:
        return {"Id": f"sha256:{image}", "Config": {"User": "ci", "Cmd": ["python"]}}

    def commit(
        self, container: str, *, repository: str, tag: str, changes: Sequence[str]
    ) -> Mapping[str, object]:
        self.commits.append((container, repository, tag, list(changes)))
        return {"Id": f"sha256:{repository}-{tag}"}

    # Networks and volumes.

    def create_volume(self, name: str) -> Mapping[str, object]:
        self.volumes.append(name)
        return {"Name": name}

    def create_network(
        self,
        name: str,
        *,
        driver: str,
        options: Mapping[str, str],
        labels: Mapping[str, str],
        check_duplicate: bool,
    ) -> Mapping[str, object]:
        prefix = f"172.{len(self.networks) + 20}"
        self.networks[name] = {
            "Name": name,
            "Driver": driver,
            "Options": dict(options),
            "Labels": dict(labels),
            "IPAM": {"Config": [{"Subnet": f"{prefix}.0.0/16", "Gateway": f"{prefix}.0.1"}]},
        }
        return {"Id": name}

    def inspect_network(self, net_id: str) -> Mapping[str, object]:
        if net_id not in self.networks:
            raise NotFound(f"network {net_id} not found")
        return self.networks[net_id]

    # Containers.

    def create_host_config(self, **options: object) -> Mapping[str, object]:
        return dict(options)

    def create_container(
        self,
        image: str,
        *,
        command: Sequence[str],
        user: str,
        labels: Mapping[str, str],
        host_config: Mapping[str, object],
        working_dir: str | None = None,
        environment: Mapping[str, str] | None = None,
    ) -> Mapping[str, object]:
        container_id = f"c{len(self.containers):011d}"
        self.containers[container_id] = CreatedContainer(
            id=container_id,
            image=image,
            command=list(command),
            user=user,
            labels=dict(labels),
            host_config=dict(host_config),
            environment=dict(environment or {}),
        )
        network = str(dict(host_config).get("network_mode") or "default")
        self.containers[container_id].networks.append(network)
        return {"Id": container_id}

    def disconnect_container_from_network(
        self, container: str, net_id: str, *, force: bool
    ) -> None:
        self.disconnects.append((container, net_id))
        if self.disconnect_works:
            self.containers[container].networks.remove(net_id)

    def put_archive(self, container: str, path: str, data: bytes) -> bool:
        self.containers[container].archives.append((path, data))
        return True

    def start(self, container: str) -> None:
        self.started.append(container)

    def logs(
        self, container: str, *, stream: bool, follow: bool, timestamps: bool, since: int | None
    ) -> _LogStream:
        lines = self.output(self.containers[container])
        return _LogStream(
            [b"2026-01-01T00:00:00.%09dZ %s" % (n, line) for n, line in enumerate(lines, 1)]
        )

    def wait(self, container: str) -> Mapping[str, object]:
        return {"StatusCode": self.exit_code(self.containers[container].command)}

    def inspect_container(self, container: str) -> Mapping[str, object]:
        found = self.containers[container]
        return {
            "Id": container,
            "Config": {"Labels": found.labels},
            "State": {"Status": "exited", "OOMKilled": False},
            "NetworkSettings": {"Networks": {name: {} for name in found.networks}},
        }

    def remove_container(self, container: str, *, force: bool, v: bool) -> None:
        if self.removal_gate is not None:
            self.removal_gate.wait(timeout=10)
        self.removed.append(container)

    def close(self) -> None:
        pass
