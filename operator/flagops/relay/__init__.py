"""The relay: serves the published flag documents to every app, from memory.

`flagops relay` list-watches the flag ConfigMaps the operator publishes and serves
OFREP v1 (remote evaluation, for browsers and any OpenFeature SDK), the documents
themselves (for SDKs that evaluate locally) and server-sent event streams of
their changes. docs/relay.md is the user's guide.
"""
