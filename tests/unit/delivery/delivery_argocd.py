"""The Argo CD customisations: the argocd-cm patch built from the Lua files, and
a Lua sandbox shaped like Argo CD's (Lua 5.1; base, table and a two-function os).

Regenerate the ConfigMap after editing a Lua file:
    .venv/bin/python tests/unit/delivery/delivery_argocd.py --write
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from flagops.api.resources import GROUP

ARGOCD_DIR = Path(__file__).resolve().parents[3] / "manifests" / "argocd"
CONFIGMAP = ARGOCD_DIR / "argocd-cm.yaml"
ACTIONS = ("advance", "pause", "resume", "rollback", "retry")

HEADER = """\
# Argo CD customisations for flagops: health of Rollouts and FeatureFlags, and
# the Rollout actions advance, pause, resume, rollback and retry.
# Merge into Argo CD's argocd-cm, e.g.:
#   kubectl -n argocd patch configmap argocd-cm --patch-file manifests/argocd/argocd-cm.yaml
# GENERATED from the *.lua files in this folder by
#   python tests/unit/delivery/delivery_argocd.py --write
# (a unit test fails when this file and the Lua files disagree).
apiVersion: v1
kind: ConfigMap
metadata:
  name: argocd-cm
  namespace: argocd
  labels:
    app.kubernetes.io/name: argocd-cm
    app.kubernetes.io/part-of: argocd
data:
"""


def lua(name: str) -> str:
    return (ARGOCD_DIR / name).read_text()


def _block(text: str, indent: int) -> str:
    pad = " " * indent
    return "".join(pad + line if line.strip() else "\n" for line in text.splitlines(True))


def render() -> str:
    actions = "discovery.lua: |\n" + _block(lua("actions-discovery.lua"), 2) + "definitions:\n"
    for verb in ACTIONS:
        actions += f"  - name: {verb}\n    action.lua: |\n" + _block(lua(f"actions-{verb}.lua"), 6)
    return (
        HEADER
        + f"  resource.customizations.health.{GROUP}_Rollout: |\n"
        + _block(lua("health-rollout.lua"), 4)
        + f"  resource.customizations.health.{GROUP}_FeatureFlag: |\n"
        + _block(lua("health-featureflag.lua"), 4)
        + f"  resource.customizations.actions.{GROUP}_Rollout: |\n"
        + _block(actions, 4)
    )


class ArgoLua:
    """Runs scripts the way Argo CD's gopher-lua VM does: `obj` global, no string/math/io."""

    def __init__(self) -> None:
        from lupa import lua51

        self._lua = lua51.LuaRuntime(register_eval=False, register_builtins=False)
        self._run = self._lua.eval(
            """
            function(script, obj)
              local env = {}
              for _, name in ipairs({"assert", "error", "ipairs", "next", "pairs", "pcall",
                  "select", "tonumber", "tostring", "type", "unpack", "xpcall", "rawequal",
                  "rawget", "rawset", "setmetatable", "getmetatable", "_VERSION"}) do
                env[name] = _G[name]
              end
              env.table = {insert = table.insert, remove = table.remove, concat = table.concat,
                           sort = table.sort, getn = table.getn, maxn = table.maxn}
              env.os = {time = os.time, date = os.date}
              env.obj = obj
              local chunk, err = loadstring(script)
              if chunk == nil then error(err) end
              setfenv(chunk, env)
              return chunk()
            end
            """
        )
        # Without Argo CD's string library, ("x"):sub() must fail here too.
        self._lua.execute('getmetatable("").__index = {}')

    def run(self, script: str, obj: dict[str, Any]) -> Any:
        return self._to_python(self._run(script, self._lua.table_from(obj, recursive=True)))

    def _to_python(self, value: Any) -> Any:
        if self._lua.eval("type")(value) != "table":
            return value
        items = {key: self._to_python(item) for key, item in value.items()}
        if (
            items
            and all(isinstance(k, int) for k in items)
            and set(items) == set(range(1, len(items) + 1))
        ):
            return [items[i] for i in range(1, len(items) + 1)]
        return items


if __name__ == "__main__":
    if sys.argv[1:] == ["--write"]:
        CONFIGMAP.write_text(render())
    else:
        sys.stdout.write(render())
