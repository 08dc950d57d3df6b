"""GPU workloads and NVML readings that run on the nodes.

Modules here are shipped to nodes that do not have forge installed
(:mod:`provision.remote.payload`), so they import only the standard library,
numpy, pynvml and the GPU array library (CuPy or PyTorch), and each other.
Each has a ``main`` that prints one JSON object: ``python -m provision.node_programs.gpu.hbm``.
"""
