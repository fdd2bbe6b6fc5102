-- Argo CD health of a flagops.dev Rollout. Argo CD's Lua sandbox has no string
-- library, so this uses only comparisons, `..` and tostring.
local hs = {}

local function describe(status)
  local text = ""
  if status.stage ~= nil then
    text = "stage " .. tostring(status.stage)
    if status.currentPercent ~= nil then
      text = text .. " (" .. tostring(status.currentPercent) .. "%)"
    end
  end
  if status.message ~= nil and status.message ~= "" then
    if text ~= "" then
      text = text .. ": "
    end
    text = text .. tostring(status.message)
  end
  return text
end

if obj.status == nil or obj.status.phase == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the flagops operator to pick the Rollout up"
  return hs
end

local generation = obj.metadata.generation
local observed = obj.status.observedGeneration
if generation ~= nil and (observed == nil or observed < generation) then
  hs.status = "Progressing"
  hs.message = "Waiting for the flagops operator to observe the newest spec"
  return hs
end

local phase = obj.status.phase
local details = describe(obj.status)
if phase == "Completed" then
  hs.status = "Healthy"
elseif phase == "Paused" then
  hs.status = "Suspended"
elseif phase == "RolledBack" or phase == "Degraded" then
  hs.status = "Degraded"
else
  -- Pending, Progressing, and any phase a newer operator may add.
  hs.status = "Progressing"
end
if details ~= "" then
  hs.message = tostring(phase) .. ", " .. details
else
  hs.message = tostring(phase)
end
return hs
