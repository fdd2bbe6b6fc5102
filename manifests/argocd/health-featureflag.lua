-- Argo CD health of a flagops.dev FeatureFlag, from its Published and Conflict conditions.
local hs = {}

if obj.status == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the flagops operator to publish the flag"
  return hs
end

local generation = obj.metadata.generation
local observed = obj.status.observedGeneration
if generation ~= nil and (observed == nil or observed < generation) then
  hs.status = "Progressing"
  hs.message = "Waiting for the flagops operator to observe the newest spec"
  return hs
end

local published = nil
local conflict = nil
if obj.status.conditions ~= nil then
  for _, condition in ipairs(obj.status.conditions) do
    if condition.type == "Published" then
      published = condition
    elseif condition.type == "Conflict" then
      conflict = condition
    end
  end
end

local function explain(condition, fallback)
  if condition.message ~= nil and condition.message ~= "" then
    return condition.message
  end
  if condition.reason ~= nil and condition.reason ~= "" then
    return condition.reason
  end
  return fallback
end

if conflict ~= nil and conflict.status == "True" then
  hs.status = "Degraded"
  hs.message = explain(conflict, "Another FeatureFlag in the namespace has the same key")
elseif published == nil or published.status == "Unknown" then
  hs.status = "Progressing"
  hs.message = "Not published yet"
elseif published.status == "True" then
  hs.status = "Healthy"
  hs.message = explain(published, "Published")
else
  hs.status = "Degraded"
  hs.message = explain(published, "Not published")
end
return hs
