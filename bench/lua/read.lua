-- GET load for myapi. Pass the bearer token with -H 'Authorization: Bearer ...'.
-- usage: wrk -t1 -c16 -d10s -H 'Authorization: Bearer T' -s bench/lua/read.lua URL -- MODE [MAX_ID]
--   MODE static  the URL given to wrk, e.g. http://127.0.0.1:8000/movies/new?year=2020&rating=9
--   MODE by_id   /movies/?movie_id=<uniform random in 1..MAX_ID> (MAX_ID default 10000)
--   MODE mix     alternates by_id and /movies/new?year=2020&rating=9
dofile((debug.getinfo(1, "S").source:sub(2):match("^(.*/)") or "./") .. "common.lua")

local mode = "static"
local max_id = 10000
local static_request
local n = 0

function init(args)
  mode = args[1] or "static"
  if args[2] then
    max_id = tonumber(args[2])
  end
  if mode ~= "static" and mode ~= "by_id" and mode ~= "mix" then
    error("read.lua: unknown mode " .. mode .. " (static, by_id or mix)")
  end
  -- A fixed seed: the same id sequence in every run (each thread its own; setup() numbers them).
  math.randomseed(12345 + (thread_id or 0))
  static_request = wrk.format()
end

function request()
  if mode == "static" then
    return static_request
  end
  n = n + 1
  if mode == "mix" and n % 2 == 0 then
    return wrk.format(nil, "/movies/new?year=2020&rating=9")
  end
  return wrk.format(nil, "/movies/?movie_id=" .. math.random(1, max_id))
end
