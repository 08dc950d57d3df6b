"""Frozen records passed between the BMC stages: targets, options, inventories, outcomes."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Generic, Literal, TypeVar

T = TypeVar("T")

Scheme = Literal["https", "http"]


@dataclass(frozen=True)
class Expected:
    """What the site spec says a node must show its BMC (None: not stated, not checked)."""

    serial: str | None = None
    macs: tuple[tuple[str, str], ...] = ()          # (name, MAC) in spec order, lower case
    gpu_count: int | None = None
    gpu_model: str | None = None
    #: (adapter model, count) from the hardware profile, e.g. ("ConnectX-7 NDR200", 5)
    nics: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True)
class BmcTarget:
    """One node's BMC: where it answers and what it must show."""

    node: str
    host: str
    port: int | None = None
    expected: Expected = field(default_factory=Expected)

    @property
    def address(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port is None else f"{host}:{self.port}"


@dataclass(frozen=True)
class TlsPolicy:
    """How the BMC's certificate is trusted. Verification is on unless ``insecure``."""

    verify: bool = True
    ca_bundle: str | None = None
    pinned_sha256: str | None = None                 # hex, colons allowed
    insecure: bool = False

    def describe(self) -> str:
        if self.insecure:
            return "TLS verification off (--insecure)"
        if self.pinned_sha256:
            return "pinned certificate sha256"
        if self.ca_bundle:
            return f"CA bundle {self.ca_bundle}"
        return "system CA store" if self.verify else "TLS verification off (verify_tls: false)"


@dataclass(frozen=True)
class Timeouts:
    connect_s: float = 5.0
    read_s: float = 20.0
    retries: int = 3                                 # attempts for GETs on 5xx / resets
    retry_delay_s: float = 1.0
    node_deadline_s: float = 60.0                    # whole operation, one node
    concurrency: int = 32


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str = field(repr=False)


@dataclass(frozen=True)
class BmcOptions:
    credentials: Credentials
    scheme: Scheme = "https"
    tls: TlsPolicy = field(default_factory=TlsPolicy)
    timeouts: Timeouts = field(default_factory=Timeouts)


class Status(enum.StrEnum):
    """How one node's operation ended; the CLI maps these to the exit-code table."""

    OK = "ok"
    UNREACHABLE = "unreachable"        # refused, reset, timed out, past the node deadline
    AUTH_FAILED = "auth_failed"        # the BMC answered 401/403
    TLS_FAILED = "tls_failed"          # certificate not trusted or pin mismatch
    TIMEOUT = "timeout"                # accepted, but the new state was not reported in time
    ERROR = "error"                    # the BMC answered something we cannot use


@dataclass(frozen=True)
class NicInfo:
    """A MAC the host side of the BMC reports (system Ethernet interface or adapter port)."""

    source: str                        # "EthernetInterfaces/NIC1" or "NetworkAdapters/slot-1/1.1"
    mac: str


@dataclass(frozen=True)
class PcieDeviceInfo:
    id: str
    name: str | None
    kind: str                          # "gpu" | "nic" | "other"
    manufacturer: str | None
    model: str | None
    firmware_version: str | None
    serial: str | None = None


@dataclass(frozen=True)
class AdapterInfo:
    id: str
    manufacturer: str | None
    model: str | None
    firmware_version: str | None
    macs: tuple[str, ...] = ()
    port_guids: tuple[str, ...] = ()


@dataclass(frozen=True)
class FirmwareItem:
    id: str
    name: str | None
    version: str | None


@dataclass(frozen=True)
class NodeInventory:
    """What one BMC reported. ``None`` means the BMC does not expose the field."""

    node: str
    system_id: str
    manufacturer: str | None
    model: str | None
    serial: str | None
    uuid: str | None
    bios_version: str | None
    bmc_version: str | None
    power_state: str | None
    health: str | None
    memory_gib: float | None
    cpu_count: int | None
    cpu_model: str | None
    nics: tuple[NicInfo, ...] = ()
    pcie: tuple[PcieDeviceInfo, ...] = ()
    adapters: tuple[AdapterInfo, ...] = ()
    firmware: tuple[FirmwareItem, ...] = ()
    #: parts of the Redfish tree this BMC does not expose (for the report, not an error)
    not_exposed: tuple[str, ...] = ()

    @property
    def gpus(self) -> tuple[PcieDeviceInfo, ...]:
        return tuple(d for d in self.pcie if d.kind == "gpu")

    def all_macs(self) -> tuple[str, ...]:
        seen: dict[str, None] = {}
        for nic in self.nics:
            seen.setdefault(nic.mac, None)
        for adapter in self.adapters:
            for mac in adapter.macs:
                seen.setdefault(mac, None)
        return tuple(seen)


@dataclass(frozen=True)
class Mismatch:
    """One difference between the spec and what the BMC reports."""

    node: str
    field: str                         # "serial", "mac:mgmt", "gpu_count", "firmware:uefi", ...
    expected: str
    actual: str
    severity: Literal["mismatch", "unverified"] = "mismatch"

    def text(self) -> str:
        return f"{self.field}: expected {self.expected}, BMC reports {self.actual}"


@dataclass(frozen=True)
class Outcome(Generic[T]):
    """How one node's operation ended, with its value when it succeeded."""

    node: str
    address: str
    status: Status
    value: T | None = None
    message: str = ""
    elapsed_s: float = 0.0
