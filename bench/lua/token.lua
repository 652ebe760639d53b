-- POST /token load for myapi: the OAuth2 password grant, form-encoded.
-- usage: wrk -t1 -c32 -d10s -s bench/lua/token.lua http://127.0.0.1:8000/token -- EMAIL PASSWORD
-- The RESULT line counts 200, 503 (and how many of those carried Retry-After) and other statuses.
dofile((debug.getinfo(1, "S").source:sub(2):match("^(.*/)") or "./") .. "common.lua")

local function urlencode(s)
  return (string.gsub(s, "[^%w%-%._~]", function(c)
    return string.format("%%%02X", string.byte(c))
  end))
end

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"

function init(args)
  local username = args[1] or "bench@example.com"
  local password = args[2] or "bench-password"
  wrk.body = "grant_type=password&username=" .. urlencode(username) .. "&password=" .. urlencode(password)
end
