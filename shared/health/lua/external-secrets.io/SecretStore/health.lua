-- WaveCD health rule for external-secrets SecretStore (external-secrets.io/SecretStore).
-- The Ready condition decides: True Healthy, False Degraded (with the controller's message);
-- no Ready condition yet: Progressing.

local status = obj.status
if status ~= nil and status.conditions ~= nil then
  for _, c in ipairs(status.conditions) do
    if c.type == "Ready" then
      if c.status == "True" then
        return { status = "Healthy", message = c.message or "" }
      elseif c.status == "False" then
        return { status = "Degraded", message = c.message or c.reason or "SecretStore is not ready" }
      end
    end
  end
end
return { status = "Progressing", message = "Waiting for SecretStore" }
