"""Development tools for flagops, never shipped in the product wheel or the runtime image.

`testing` is the envtest-style harness (local control plane, Prometheus, relay and
operator processes, the probe kubelet stand-in, traffic), `calendar_server` a local
Google Calendar v3 + OAuth server, and `demo` the `make demo` story built from them.
No `flagops` module imports this distribution (an import contract checks it).
"""
