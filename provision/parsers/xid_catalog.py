"""What each Xid means for the node: NVIDIA's Xid catalog as one table.

Source: NVIDIA, "Analyzing Xid Errors with the Xid Catalog" (Ampere and newer,
column "Resolution Bucket (Immediate Action)"),
https://docs.nvidia.com/deploy/xid-errors/analyzing-xid-catalog.html, and for
the ECC/row-remapping Xids "GPU Memory Error Management", section "Error
Recovery and Response Flags",
https://docs.nvidia.com/deploy/a100-gpu-mem-error-mgmt/index.html.

The catalog's buckets are folded into five actions:

- ``ignore``: informational, or a consequence of another event (45, 121, 144 Nonfatal)
- ``restart_app``: the application's own fault (13 out-of-bounds, 31 MMU fault,
  43 stopped channel): the application is killed, the GPU is healthy
- ``reset_gpu``: the GPU must be reset before it is trusted again (48, 63, 64, 74,
  92, 94, 95, 119, 120, 140)
- ``reboot``: only a node reboot recovers the GPU (79 fallen off the bus, 143)
- ``service``: the part needs service (RMA triage)

Application actions never fail a node; every other known action drains it
(:func:`is_hardware`). An Xid code the table does not know is ``unknown``:
recorded and reported, never a drain by itself.

Where the driver reports a GPU recovery action through NVML
(``nvmlDeviceGetGpuRecoveryAction``, driver 550+; ``nvidia-smi -q`` "GPU
Recovery Action"; Xid 154 in the kernel log), that action wins over the table:
see :func:`recovery_action` and :data:`NVML_RECOVERY`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

Action = Literal["ignore", "restart_app", "reset_gpu", "reboot", "service", "unknown"]

SOURCE = ("NVIDIA Xid catalog, Resolution Bucket (Immediate Action), "
          "docs.nvidia.com/deploy/xid-errors/analyzing-xid-catalog.html")


@dataclass(frozen=True)
class XidInfo:
    code: int
    mnemonic: str
    action: Action
    meaning: str


def _x(code: int, mnemonic: str, action: Action, meaning: str) -> XidInfo:
    return XidInfo(code, mnemonic, action, meaning)


#: The table. One row per code; the mnemonic is the catalog's.
CATALOG: dict[int, XidInfo] = {x.code: x for x in (
    _x(8, "ROBUST_CHANNEL_FIFO_ERROR_IDLE_TIMEOUT", "restart_app", "GPU stopped processing"),
    _x(13, "ROBUST_CHANNEL_GR_EXCEPTION", "restart_app",
       "graphics engine exception: usually an application's out-of-range access"),
    _x(31, "ROBUST_CHANNEL_FIFO_ERROR_MMU_ERR_FLT", "restart_app",
       "GPU memory page fault: usually an application's illegal address"),
    _x(32, "ROBUST_CHANNEL_PBDMA_ERROR", "restart_app", "invalid or corrupted push buffer"),
    _x(38, "ROBUST_CHANNEL_ERROR_DRIVER_FW", "restart_app", "driver firmware error"),
    _x(43, "ROBUST_CHANNEL_RESETCHANNEL_VERIF_ERROR", "restart_app",
       "GPU stopped processing a channel: the application faulted"),
    _x(45, "ROBUST_CHANNEL_PREEMPTIVE_REMOVAL", "ignore",
       "preemptive cleanup after another error or a killed application"),
    _x(48, "ROBUST_CHANNEL_DBE_ERROR", "reset_gpu", "double-bit ECC error (uncorrectable)"),
    _x(56, "ROBUST_CHANNEL_DISPLAY_ERROR", "reset_gpu", "display engine error"),
    _x(57, "ROBUST_CHANNEL_FB_MEMORY_ERROR", "reset_gpu",
       "error programming the video memory interface"),
    _x(58, "ROBUST_CHANNEL_FB_UNSTABLE", "reset_gpu", "unstable video memory interface"),
    _x(61, "ROBUST_CHANNEL_PMU_BREAKPOINT", "reset_gpu", "internal micro-controller breakpoint"),
    _x(62, "ROBUST_CHANNEL_PMU_HALT", "reset_gpu", "internal micro-controller halt"),
    _x(63, "ROBUST_CHANNEL_ECC_PAGE_RETIREMENT_OR_ROW_REMAPPING", "reset_gpu",
       "row remapping (page retirement) recorded: a reset applies it"),
    _x(64, "ROBUST_CHANNEL_ROW_REMAPPING_FAILURE", "reset_gpu",
       "row remapping or page retirement failed"),
    _x(68, "ROBUST_CHANNEL_NVDEC0_ERROR", "restart_app", "video decoder exception"),
    _x(69, "ROBUST_CHANNEL_GR_CLASS_ERROR", "restart_app", "graphics engine class error"),
    _x(74, "ROBUST_CHANNEL_NVLINK_ERROR", "reset_gpu",
       "NVLink error: the signature of a failing NVLink bridge or link"),
    _x(79, "ROBUST_CHANNEL_GPU_HAS_FALLEN_OFF_THE_BUS", "reboot",
       "GPU has fallen off the bus: no longer reachable over PCIe"),
    _x(92, "ROBUST_CHANNEL_HIGH_SBE_RATE", "reset_gpu", "high single-bit ECC error rate"),
    _x(94, "ROBUST_CHANNEL_CONTAINED_ERROR", "reset_gpu",
       "contained ECC error: affected applications killed, a reset remaps the row"),
    _x(95, "ROBUST_CHANNEL_UNCONTAINED_ERROR", "reset_gpu",
       "uncontained ECC error: every application on the GPU affected, reset required"),
    _x(109, "ROBUST_CHANNEL_CTXSW_TIMEOUT", "restart_app", "context switch timeout"),
    _x(119, "GSP_RPC_TIMEOUT", "reset_gpu", "GSP firmware RPC timeout"),
    _x(120, "GSP_ERROR", "reset_gpu", "GSP firmware error"),
    _x(121, "C2C_LINK_CORRECTED", "ignore", "C2C link corrected error"),
    _x(140, "ROBUST_CHANNEL_UNRECOVERED_ECC", "reset_gpu", "unrecovered ECC error"),
    _x(143, "GPU_INIT_FAILURE", "reboot", "GPU initialisation failure"),
    # NVLink5 (Blackwell): the fatality is in the message ("Fatal" / "Nonfatal"),
    # see judge(); the row gives the action of the fatal form
    *(_x(c, f"NVLINK5_{c}", "reset_gpu", "NVLink5 error (fatality in the message)")
      for c in range(144, 151)),
    _x(154, "GPU_RECOVERY_ACTION_CHANGED", "unknown",
       "the driver's recovery action changed: the action named in the message applies"),
)}

#: nvmlDeviceGetGpuRecoveryAction values (nvmlDeviceGpuRecoveryAction_t, NVML API
#: reference; cuda.bindings.nvml.DeviceGpuRecoveryAction)
NVML_RECOVERY: dict[int, Action] = {0: "ignore", 1: "reset_gpu", 2: "reboot",
                                    3: "reset_gpu", 4: "reset_gpu"}
NVML_RECOVERY_NAMES = {0: "None", 1: "GPU reset", 2: "node reboot", 3: "drain P2P",
                       4: "drain P2P and reset"}
_HARDWARE: frozenset[Action] = frozenset({"reset_gpu", "reboot", "service"})
_154 = re.compile(r"\(\s*(None|Reset|Reboot|Drain[ _]P2P|Drain and Reset)\s*\)\s*$", re.I)
_154_WORDS: dict[str, Action] = {"none": "ignore", "reset": "reset_gpu", "reboot": "reboot",
                                 "drain p2p": "reset_gpu", "drain_p2p": "reset_gpu",
                                 "drain and reset": "reset_gpu"}


def info(code: int) -> XidInfo | None:
    return CATALOG.get(code)


def judge(code: int, message: str = "") -> Action:
    """The action one kernel-log Xid line asks for (pure)."""
    row = CATALOG.get(code)
    if row is None:
        return "unknown"
    if 144 <= code <= 150:
        return "ignore" if re.search(r"\bNon-?fatal\b", message, re.I) else row.action
    if code == 154:
        m = _154.search(message)
        return _154_WORDS.get(m[1].lower(), "unknown") if m else "unknown"
    return row.action


def is_hardware(action: Action) -> bool:
    """Does this action take the GPU out of service (drain the node)?"""
    return action in _HARDWARE


def recovery_action(nvml_value: int | None) -> Action | None:
    """NVML's recovery action as a table action; None where the driver reports none."""
    if nvml_value is None:
        return None
    return NVML_RECOVERY.get(int(nvml_value), "unknown")
