"""Slurm's view of a node's GPUs: the GRES type and the CPU cores beside each GPU.

How slurmd names a GPU (SchedMD/slurm, src/plugins/gpu/nvml/gpu_nvml.c
``_nvml_get_device_name``): it takes ``nvmlDeviceGetName()`` and passes it to
``gpu_common_underscorify_tolower`` (src/plugins/gpu/common/gpu_common.c), which
lower-cases every character and turns each space into ``_``: "NVIDIA H100 NVL"
becomes ``nvidia_h100_nvl``. With ``AutoDetect=nvml`` a gres.conf record is kept
for a detected device only when the record's ``Type`` is a *substring* of that
name (src/plugins/gres/gpu/gres_gpu.c ``_normalize_sys_gres_types``: "Could not
find an unused configuration record with a GRES type that is a substring of
system device ..."); otherwise the device's type is dropped and a typed
``Gres=gpu:<type>:8`` in slurm.conf no longer matches what the node reports
(NVIDIA/deepops#1214). So forge's type is slurmd's name without the vendor
prefix (``h100_nvl``), which is a substring by construction, or no type at all
when the NVML name is unknown.
"""

from __future__ import annotations

from collections.abc import Sequence

VENDOR_PREFIX = "nvidia_"


def slurm_device_name(nvml_name: str) -> str:
    """The name slurmd's NVML plugin gives a GPU (``gpu_common_underscorify_tolower``)."""
    return nvml_name.lower().replace(" ", "_")


def gres_type(nvml_name: str) -> str:
    """The GRES ``Type`` for a GPU with this NVML name: slurmd's name less ``nvidia_``.

    Empty when the NVML name is unknown: gres.conf and slurm.conf then carry no
    type, which matches every device.
    """
    name = slurm_device_name(nvml_name.strip())
    return name[len(VENDOR_PREFIX):] if name.startswith(VENDOR_PREFIX) else name


def default_gpu_sockets(gpus: int, sockets: int) -> tuple[int, ...]:
    """GPUs spread evenly over the sockets in index order (0-3 on socket 0 of 2 for 8 GPUs)."""
    if gpus <= 0:
        return ()
    sockets = max(1, sockets)
    return tuple(i * sockets // gpus for i in range(gpus))


def gpu_cores(gpu_sockets: Sequence[int], cores_per_socket: int) -> list[str]:
    """gres.conf ``Cores=`` per GPU: every core of the socket the GPU hangs off.

    Slurm numbers cores 0..N-1 across sockets (socket s owns cores
    s*cores_per_socket .. (s+1)*cores_per_socket-1; gres.conf(5) "Cores").
    """
    cps = max(1, cores_per_socket)
    out = []
    for s in gpu_sockets:
        first, last = s * cps, (s + 1) * cps - 1
        out.append(str(first) if first == last else f"{first}-{last}")
    return out
