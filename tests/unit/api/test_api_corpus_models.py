"""The pydantic models reject what the CRDs reject (the integration corpora), so Python
callers such as `kubectl flagops validate` reach the same verdict as the apiserver.

Unknown fields are the one documented difference: the models ignore them (the
apiserver prunes or, with strict field validation, rejects them).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from flagops.api.featureflag import FeatureFlag
from flagops.api.rollout import Rollout

CORPORA = Path(__file__).resolve().parents[2] / "integration" / "api"
MODELS: dict[str, type[FeatureFlag | Rollout]] = {"FeatureFlag": FeatureFlag, "Rollout": Rollout}
EXPECT = "test.flagops.dev/expect"


def _corpus() -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for name in ("invalid_featureflags.yaml", "invalid_rollouts.yaml"):
        docs.extend(d for d in yaml.safe_load_all((CORPORA / name).read_text()) if d)
    return docs


SCHEMA_CASES = [
    d for d in _corpus() if not d["metadata"]["annotations"][EXPECT].startswith("unknown")
]


@pytest.mark.parametrize("doc", SCHEMA_CASES, ids=lambda d: f"{d['kind']}/{d['metadata']['name']}")
def test_models_reject_the_corpus(doc: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        MODELS[doc["kind"]].model_validate(doc)


def test_most_of_the_corpus_is_schema_cases() -> None:
    assert len(SCHEMA_CASES) >= 75
