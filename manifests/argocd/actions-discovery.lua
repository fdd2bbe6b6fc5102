-- Argo CD action discovery for a flagops.dev Rollout: each action is offered
-- only in the phases where the operator would perform it.
local actions = {}
actions["advance"] = {["disabled"] = true, ["iconClass"] = "fa fa-fw fa-forward"}
actions["pause"] = {["disabled"] = true, ["iconClass"] = "fa fa-fw fa-pause-circle"}
actions["resume"] = {["disabled"] = true, ["iconClass"] = "fa fa-fw fa-play-circle"}
actions["rollback"] = {["disabled"] = true, ["iconClass"] = "fa fa-fw fa-undo"}
actions["retry"] = {["disabled"] = true, ["iconClass"] = "fa fa-fw fa-redo"}

if obj.status == nil or obj.status.phase == nil then
  return actions
end

local phase = obj.status.phase
-- A declarative pause belongs to Git: resuming it takes a commit, not an action.
local specPaused = obj.spec ~= nil and obj.spec.paused == true

if phase == "Progressing" then
  actions["advance"]["disabled"] = false
  actions["pause"]["disabled"] = false
  actions["rollback"]["disabled"] = false
elseif phase == "Paused" then
  actions["resume"]["disabled"] = specPaused
  actions["rollback"]["disabled"] = false
elseif phase == "Completed" then
  actions["rollback"]["disabled"] = false
elseif phase == "RolledBack" then
  actions["retry"]["disabled"] = false
end
return actions
