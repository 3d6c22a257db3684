-- Argo CD health of the modelpilot.dev kinds: ModelMonitor, RetrainPolicy and CanaryRelease.
-- Argo CD runs it with Lua 5.1 semantics and, by default, without the string library: only the
-- base and table libraries are used. What each state maps to, and why: docs/gitops.md.

local function health(status, message)
  return { status = status, message = message or "" }
end

local function find(conditions, type_)
  for _, condition in ipairs(conditions) do
    if condition.type == type_ then
      return condition
    end
  end
  return nil
end

-- "Reason: message", as `kubectl describe` shows a condition.
local function said(condition)
  if condition.message == nil or condition.message == "" then
    return condition.reason
  end
  return condition.reason .. ": " .. condition.message
end

-- A generation differs from the resource's own; an absent one (an older status) never does.
local function behind(generation, observed)
  return generation ~= nil and observed ~= nil and observed ~= generation
end

-- What every kind shares: no verdict before the operator has decided on the current spec.
-- Ready alone is trusted only for what is written without a full decision (admission and a
-- failed tick); any other verdict needs every condition decided for the current generation,
-- because admission refreshes Ready's generation while it keeps the previous verdict.
local function undecided(generation, status, conditions, ready)
  if ready == nil then
    return health("Progressing", "waiting for the operator to admit the resource")
  end
  if behind(generation, status.observedGeneration) or behind(generation, ready.observedGeneration) then
    return health("Progressing", "the operator has not yet seen generation " .. tostring(generation))
  end
  if ready.reason == "InvalidSpec" or ready.reason == "TickFailed" then
    return health("Degraded", said(ready))
  end
  if ready.reason == "Pending" then
    return health("Progressing", ready.message)
  end
  for _, condition in ipairs(conditions) do
    if behind(generation, condition.observedGeneration) then
      return health("Progressing", "the operator has not yet decided on generation " .. tostring(generation))
    end
  end
  return nil
end

-- The condition status that is a problem, as the operator alerts on it at warning or critical
-- (Overprovisioned is advice, at info: not a degradation).
local MONITOR_PROBLEMS = {
  Healthy = "False",
  PerformanceDegraded = "True",
  ErrorRateHigh = "True",
  LatencyHigh = "True",
  DataDrift = "True",
  LabelDrift = "True",
  ConceptDrift = "True",
  ResourcePressure = "True",
  DataQuality = "True",
}

local function monitor(status, conditions, ready)
  if ready.status ~= "True" then
    return health("Degraded", "cannot evaluate: " .. said(ready))
  end
  local problems, open = {}, {}
  for _, condition in ipairs(conditions) do
    if MONITOR_PROBLEMS[condition.type] == condition.status then
      table.insert(problems, condition.type .. ": " .. (condition.message or ""))
    elseif MONITOR_PROBLEMS[condition.type] ~= nil and condition.status == "Unknown" then
      table.insert(open, condition.type .. " (" .. condition.reason .. ")")
    end
  end
  if #problems > 0 then
    return health("Degraded", table.concat(problems, "; "))
  end
  if #open > 0 then
    -- Too few labels or no traffic gives no verdict, and no verdict is no problem.
    return health("Healthy", (ready.message or "") .. "; without a verdict: " .. table.concat(open, ", "))
  end
  return health("Healthy", ready.message)
end

local RETRAIN_PHASES = {
  Idle = "Healthy",
  Training = "Progressing",
  Registering = "Progressing",
  AwaitingApproval = "Suspended",
  Deploying = "Progressing",
}

local function policy(status, conditions, ready)
  if ready.status ~= "True" then
    return health("Degraded", said(ready))
  end
  local phase = status.phase
  if RETRAIN_PHASES[phase] == nil then
    return health("Unknown", "unknown phase " .. tostring(phase))
  end
  if phase == "Idle" and status.lastResult == "Failed" then
    local history = status.history or {}
    local last = history[#history]
    return health("Degraded", "the last run failed: " .. (last and last.message or ""))
  end
  if phase == "AwaitingApproval" then
    local waiting = find(conditions, "AwaitingApproval")
    return health("Suspended", waiting and waiting.message or ready.message)
  end
  return health(RETRAIN_PHASES[phase], ready.message)
end

local RELEASE_PHASES = {
  Initializing = "Progressing",
  Progressing = "Progressing",
  AwaitingPromotion = "Progressing",
  Promoting = "Progressing",
  Promoted = "Healthy",
  RolledBack = "Degraded",
  Completed = "Healthy",
}

local function release(status, conditions, ready)
  if ready.status == "False" then
    return health("Degraded", said(ready))
  end
  if ready.status == "Unknown" then
    -- Held for want of candidate data: traffic will bring it. Any other Unknown is a failure.
    if ready.reason == "AnalysisHeld" and status.lastCheck == "NoData" then
      return health("Progressing", said(ready))
    end
    return health("Degraded", said(ready))
  end
  local phase = status.phase
  if RELEASE_PHASES[phase] == nil then
    return health("Unknown", "unknown phase " .. tostring(phase))
  end
  local paused = find(conditions, "Paused")
  if paused ~= nil and paused.status == "True" then
    return health("Suspended", said(paused))
  end
  return health(RELEASE_PHASES[phase], ready.message)
end

local KINDS = { ModelMonitor = monitor, RetrainPolicy = policy, CanaryRelease = release }

local decide = KINDS[obj.kind]
if decide == nil then
  return health("Unknown", "not a modelpilot.dev kind: " .. tostring(obj.kind))
end
local status = obj.status or {}
local conditions = status.conditions or {}
local ready = find(conditions, "Ready")
local generation = obj.metadata and obj.metadata.generation
return undecided(generation, status, conditions, ready) or decide(status, conditions, ready)
