-- WaveCD health rule for cert-manager certificates (cert-manager.io/Certificate).
-- Issuing True (a first issuance or a renewal under way): Progressing.
-- Otherwise the Ready condition decides: True Healthy, False Degraded; no Ready condition yet: Progressing.

local issuing, ready
local status = obj.status
if status ~= nil and status.conditions ~= nil then
  for _, c in ipairs(status.conditions) do
    if c.type == "Issuing" then issuing = c end
    if c.type == "Ready" then ready = c end
  end
end

if issuing ~= nil and issuing.status == "True" then
  return { status = "Progressing", message = issuing.message or "Issuing certificate" }
end
if ready ~= nil and ready.status == "True" then
  return { status = "Healthy", message = ready.message or "" }
end
if ready ~= nil and ready.status == "False" then
  return { status = "Degraded", message = ready.message or ready.reason or "Certificate is not ready" }
end
return { status = "Progressing", message = "Waiting for certificate" }
