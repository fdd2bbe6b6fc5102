"""Every document of the bad-input corpora is rejected by the real apiserver, naming the field."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from flagops.api.resources import FEATUREFLAGS, ROLLOUTS, Resource

HERE = Path(__file__).parent
EXPECT = "test.flagops.dev/expect"
RESOURCES = {"FeatureFlag": FEATUREFLAGS, "Rollout": ROLLOUTS}


def load_corpus(name: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all((HERE / name).read_text()) if doc]


CORPUS = load_corpus("invalid_featureflags.yaml") + load_corpus("invalid_rollouts.yaml")


def _id(doc: dict[str, Any]) -> str:
    return f"{doc['kind']}/{doc['metadata']['name']}"


def test_corpora_are_complete() -> None:
    for name in ("invalid_featureflags.yaml", "invalid_rollouts.yaml"):
        docs = load_corpus(name)
        assert len(docs) >= 40, name
        names = [d["metadata"]["name"] for d in docs]
        assert len(set(names)) == len(names), name
        for doc in docs:
            assert doc["metadata"]["annotations"][EXPECT].startswith(("spec", "unknown field"))


@pytest.mark.integration
@pytest.mark.parametrize("doc", CORPUS, ids=_id)
def test_apiserver_rejects(doc: dict[str, Any], custom_objects: Any, api_namespace: str) -> None:
    from kubernetes.client.exceptions import ApiException

    body = copy.deepcopy(doc)
    expected = body["metadata"]["annotations"][EXPECT]
    resource: Resource = RESOURCES[doc["kind"]]
    with pytest.raises(ApiException) as rejected:
        custom_objects.create_namespaced_custom_object(
            resource.group,
            resource.version,
            api_namespace,
            resource.plural,
            body,
            field_validation="Strict",
        )
    assert rejected.value.status in (400, 422), rejected.value.body
    message = json.loads(rejected.value.body or "{}")["message"]
    assert expected in message, message

    with pytest.raises(ApiException) as missing:
        custom_objects.get_namespaced_custom_object(
            resource.group,
            resource.version,
            api_namespace,
            resource.plural,
            doc["metadata"]["name"],
        )
    assert missing.value.status == 404
