-- Builds the environment scripts run in. Runs once per Lua state, with the real globals, and
-- receives the Rust helpers and the `redis` table's contents. Everything a script can reach is
-- a read-only proxy: writing to it (or to its metatable) raises Redis's error, so no script can
-- leave state behind for the next one or change what another script sees.
local helpers = ...

local error, type, tostring, select = error, type, tostring, select
local raw_pcall, raw_xpcall, raw_next, raw_pairs = pcall, xpcall, next, pairs
local raw_setmetatable = setmetatable
local interrupted, normalize = helpers.interrupted, helpers.normalize

local READONLY = 'Attempt to modify a readonly table'
local protected = {} -- proxy -> the table it guards

local function deny_write()
  error(READONLY, 2)
end

local function missing_global_message(name)
  return "Script attempted to access nonexistent global variable '" .. tostring(name) .. "'"
end

-- For an __index function that finds `name` absent: the error points at the reader's line.
local function missing_global(_, name)
  error(missing_global_message(name), 3)
end

-- The same, as the __index metamethod itself.
local function absent_global(_, name)
  error(missing_global_message(name), 2)
end

-- A read-only view of `backing`. With `strict`, reading an absent key raises Redis's
-- nonexistent-global error (globals); otherwise an absent key gives nil (library tables).
-- The proxy's __index is the backing table itself, so reading a name that exists calls no
-- function; `strict` puts the error on the backing table's own metatable, for absent names.
local function readonly(backing, strict)
  local proxy = {}
  if strict then
    raw_setmetatable(backing, { __index = absent_global })
  end
  raw_setmetatable(proxy, { __index = backing, __newindex = deny_write, __metatable = false })
  protected[proxy] = backing
  return proxy
end

-- Lets a caught error carry on when the script is being interrupted (SCRIPT KILL, shutdown):
-- pcall, xpcall and coroutine.resume cannot swallow it.
local function rethrow_if_interrupted(ok, ...)
  if not ok and interrupted() then
    error((...), 0)
  end
  return ok, ...
end

local function pcall_result(ok, ...)
  if ok then
    return true, ...
  end
  if interrupted() then
    error((...), 0)
  end
  -- As Redis 7: an error table with a string `err` reaches the caller as that string.
  return false, normalize((...))
end

local env = {}
for _, name in ipairs({
  'assert', 'collectgarbage', 'error', 'gcinfo', 'getmetatable', 'ipairs', 'rawequal',
  'select', 'tonumber', 'tostring', 'type', 'unpack', '_VERSION',
}) do
  env[name] = _G[name]
end

env.pcall = function(...)
  return pcall_result(raw_pcall(...))
end
env.xpcall = function(f, handler)
  return rethrow_if_interrupted(raw_xpcall(f, handler))
end
-- next/pairs see through the proxies so `pairs(string)` lists the library as usual.
local function next_entry(t, k)
  return raw_next(protected[t] or t, k)
end
env.next = next_entry
env.pairs = function(t)
  if protected[t] then
    return next_entry, t, nil
  end
  return raw_pairs(t)
end

local env_proxy

-- The interrupt hook watches one Lua thread at a time: it is moved to a coroutine while it
-- runs and back to the resumer afterwards, so a loop inside a coroutine is stopped too.
local co = {}
for k, v in raw_pairs(coroutine) do
  co[k] = v
end
local raw_resume = coroutine.resume
local hook_thread, hook_current = helpers.hook_thread, helpers.hook_current
local function resumed(...)
  hook_current()
  return rethrow_if_interrupted(...)
end
co.resume = function(thread, ...)
  hook_thread(thread)
  return resumed(raw_resume(thread, ...))
end
local user_where = helpers.user_where
local function wrapped_result(ok, ...)
  if ok then
    return ...
  end
  local err = ...
  if type(err) == 'string' then
    -- As Lua's own wrap: a string error gets the caller's position.
    err = user_where() .. err
  end
  error(err, 0)
end
co.wrap = function(f)
  local thread = co.create(f)
  return function(...)
    return wrapped_result(co.resume(thread, ...))
  end
end
env.coroutine = readonly(co)

-- math.random/randomseed come from Rust (Redis's own generator, not the C library's).
math.random = helpers.random
math.randomseed = helpers.randomseed

local string_proxy = readonly(string)
env.string = string_proxy
env.table = readonly(table)
env.math = readonly(math)
for _, name in ipairs({ 'cjson', 'cmsgpack', 'bit', 'struct' }) do
  local lib = _G[name]
  if type(lib) == 'table' then
    env[name] = readonly(lib)
  end
end

-- Methods on strings ("x"):upper() go through the string proxy; the metatable itself is
-- hidden behind a read-only view.
local string_meta = getmetatable('')
string_meta.__index = string_proxy
string_meta.__metatable = readonly(string_meta)

local redis_backing = helpers.redis
env.redis = readonly(redis_backing)

env_proxy = readonly(env, true)
env._G = env_proxy

-- The restricted world of FUNCTION LOAD: only `redis` with register_function, log and the
-- constants; any other name raises the nonexistent-global error.
local load_redis = {}
for _, name in ipairs({
  'log', 'LOG_DEBUG', 'LOG_VERBOSE', 'LOG_NOTICE', 'LOG_WARNING', 'REDIS_VERSION',
  'REDIS_VERSION_NUM',
}) do
  load_redis[name] = redis_backing[name]
end
load_redis.register_function = helpers.register_function
local load_env = { redis = readonly(load_redis, true) }

-- The environment of one library: the load world while its code runs, then (after
-- `finish`) the ordinary script environment, for the callbacks and helpers it defined.
local function library_env()
  local meta = { __index = function(_, key)
    local value = load_env[key]
    if value == nil then
      missing_global(nil, key)
    end
    return value
  end, __newindex = deny_write, __metatable = false }
  local lib_env = raw_setmetatable({}, meta)
  protected[lib_env] = load_env
  local function finish()
    -- Absent names raise the error through `env`'s own metatable (see `readonly`).
    meta.__index = env
    protected[lib_env] = env
  end
  return lib_env, finish
end

-- Runs `f` (a compiled script, or a function callback with its two tables) under an error
-- handler that records where the error happened.
local function run(f, handler, keys, args)
  if keys == nil then
    return raw_xpcall(f, handler)
  end
  return raw_xpcall(function()
    return f(keys, args)
  end, handler)
end

-- Runs a compiled script with KEYS and ARGV set (in the backing table) for its duration.
local function end_script(...)
  env.KEYS, env.ARGV = nil, nil
  return ...
end
local function run_script(f, handler, keys, args)
  env.KEYS, env.ARGV = keys, args
  return end_script(raw_xpcall(f, handler))
end

-- rawget, rawset, setmetatable, load and loadstring come from Rust (they must stay C functions so that errors
-- in them point at the user's line even from a tail call).
return {
  protected = protected,
  env = env_proxy,
  env_backing = env,
  library_env = library_env,
  run = run,
  run_script = run_script,
}
