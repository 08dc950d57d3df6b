"""Everything forge runs on a node: collectors, GPU workloads, the health check.

See README.md here. The programs shipped to nodes without forge
(:mod:`provision.remote.payload`) import only the standard library, numpy, pynvml
and the GPU array library, and each other.
"""
