-- WaveCD health rule for CloudNativePG clusters (postgresql.cnpg.io/Cluster).
-- Hibernated (condition cnpg.io/hibernation True) or reconciliation disabled: Suspended.
-- A phase that needs a human (unrecoverable, missing plugin or image, failing over): Degraded.
-- "Cluster in healthy state": Healthy. Any other phase (setting up, replicas, upgrades, switchover): Progressing.

local DEGRADED_PHASES = {
  ["Failing over"] = true,
  ["Waiting for user action"] = true,
  ["Unable to create required cluster objects"] = true,
  ["Cluster cannot proceed to reconciliation due to an unknown plugin being required"] = true,
  ["Cluster has incomplete or invalid image catalog"] = true,
  ["Cluster is unrecoverable and needs manual intervention"] = true,
  ["Cluster cannot execute instance online upgrade due to missing architecture binary"] = true,
}
local HEALTHY_PHASE = "Cluster in healthy state"

local function condition(status, kind)
  if status == nil or status.conditions == nil then return nil end
  for _, c in ipairs(status.conditions) do
    if c.type == kind then return c end
  end
  return nil
end

local function describe(status)
  if status.phaseReason ~= nil and status.phaseReason ~= "" then
    return status.phase .. ": " .. status.phaseReason
  end
  return status.phase
end

local annotations = obj.metadata and obj.metadata.annotations or {}
if annotations["cnpg.io/reconciliationLoop"] == "disabled" then
  return { status = "Suspended", message = "Reconciliation of the cluster is disabled" }
end

local status = obj.status
local hibernation = condition(status, "cnpg.io/hibernation")
if hibernation ~= nil and hibernation.status == "True" then
  return { status = "Suspended", message = hibernation.message or "Cluster is hibernated" }
end

if status == nil or status.phase == nil or status.phase == "" then
  return { status = "Progressing", message = "Waiting for the cluster to be reconciled" }
end
if DEGRADED_PHASES[status.phase] then
  return { status = "Degraded", message = describe(status) }
end
if status.phase == HEALTHY_PHASE then
  local message = status.phase
  if status.readyInstances ~= nil and status.instances ~= nil then
    message = string.format("%d of %d instances ready", status.readyInstances, status.instances)
  end
  return { status = "Healthy", message = message }
end
return { status = "Progressing", message = describe(status) }
