"""Pure resolution: FeatureFlags and Rollout holds become documents and statuses.

No Kubernetes here: the controller's publisher gathers the objects and writes
what these modules compute (resolve, fit, sharing, status, record).
"""
