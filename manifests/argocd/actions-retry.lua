-- Argo CD action "retry" on a flagops.dev Rollout: asks the operator through the
-- flagops.dev/action annotation (never the spec, so Git stays the owner of the spec).
-- The id must be new for every request: the operator performs each id once.
-- Argo CD's sandbox offers os.date; the resourceVersion tells apart two requests in one second.
if obj.metadata.annotations == nil then
  obj.metadata.annotations = {}
end
local version = obj.metadata.resourceVersion
if version == nil then
  version = "0"
end
obj.metadata.annotations["flagops.dev/action"] = "retry@argocd-" .. os.date("!%Y%m%d%H%M%S") .. "-" .. version
return obj
