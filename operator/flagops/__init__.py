"""flagops: roll integrations out safely on Kubernetes behind feature flags."""

__version__ = "0.1.0"
