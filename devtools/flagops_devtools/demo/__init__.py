"""`make demo`: the whole flagops story on a local control plane.

`python -m flagops_devtools.demo --help` for its options.
"""
