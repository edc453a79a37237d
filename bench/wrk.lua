-- bench/run's one wrk script: every row builds each request here and counts every answer's
-- status here, so wrk's own per-request cost is the same in every row.
--
--   wrk ... -s bench/wrk.lua URL -- MODE THREADS [FILE] [SECRET]
--
-- MODE   form        urlencoded form post; with FILE, one fresh caputchin-token per request
--        redeem      Cap redeem body {"token","solutions"} from FILE lines "token<TAB>n1,n2"
--        siteverify  {"secret":SECRET,"response":token} from FILE
--        empty       an empty POST (challenge issuance)
-- FILE   one item per line; thread k of THREADS takes lines k, k+THREADS, ... so no item is
--        ever handed out twice. When a thread's slice runs out it sends a request with the
--        literal token "exhausted", which the server rejects: it shows up as an error.
--
-- An answer is "ok" when it is what a successful request gets: a 2xx or 303 for form and empty
-- posts, a body with "success":true for redeem and siteverify (siteverify always answers 200).
-- done() prints one line, "BENCH key=value ...", for bench/run to parse.

local threads = {}
local counter = 0

function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

local mode, items, next_item, path, headers, has_file

function init(args)
  mode = args[1] or "form"
  local nthreads = tonumber(args[2] or "1")
  local file = args[3]
  local secret = args[4] or ""
  items = {}
  next_item = 1
  has_file = file ~= nil and file ~= "" and file ~= "-"
  if has_file then
    local n = 0
    for line in io.lines(file) do
      if n % nthreads == id then
        items[#items + 1] = line
      end
      n = n + 1
    end
  end
  path = wrk.path
  headers = {}
  if mode == "form" then
    headers["Content-Type"] = "application/x-www-form-urlencoded"
  elseif mode ~= "empty" then
    headers["Content-Type"] = "application/json"
  end
  secret_json = secret
  s2xx, s303, s3xx, s4xx, s5xx, exhausted, ok = 0, 0, 0, 0, 0, 0, 0
  check_body = mode == "redeem" or mode == "siteverify"
  slice = #items
end

local function take()
  local item = items[next_item]
  if item == nil then
    exhausted = exhausted + 1
    return nil
  end
  items[next_item] = nil
  next_item = next_item + 1
  return item
end

function request()
  if mode == "form" then
    local token = "none"
    if has_file then
      token = take() or "exhausted"
    end
    return wrk.format("POST", path, headers,
      "name=bench&message=hello&caputchin-token=" .. token)
  elseif mode == "redeem" then
    local item = take()
    local body
    if item then
      local token, solutions = item:match("^([^\t]+)\t(.*)$")
      body = '{"token":"' .. token .. '","solutions":[' .. solutions .. ']}'
    else
      body = '{"token":"exhausted","solutions":[1]}'
    end
    return wrk.format("POST", path, headers, body)
  elseif mode == "siteverify" then
    local token = take() or "exhausted"
    return wrk.format("POST", path, headers,
      '{"secret":"' .. secret_json .. '","response":"' .. token .. '"}')
  else
    return wrk.format("POST", path, headers, "")
  end
end

function response(status, hdrs, body)
  if check_body then
    if body and body:find('"success":true', 1, true) then
      ok = ok + 1
    end
  elseif status == 303 or (status >= 200 and status < 300) then
    ok = ok + 1
  end
  if status == 303 then
    s303 = s303 + 1
  elseif status >= 200 and status < 300 then
    s2xx = s2xx + 1
  elseif status >= 300 and status < 400 then
    s3xx = s3xx + 1
  elseif status >= 400 and status < 500 then
    s4xx = s4xx + 1
  else
    s5xx = s5xx + 1
  end
end

function done(summary, latency, requests)
  local t = { s2xx = 0, s303 = 0, s3xx = 0, s4xx = 0, s5xx = 0, exhausted = 0, slice = 0, ok = 0 }
  for _, thread in ipairs(threads) do
    for k, _ in pairs(t) do
      t[k] = t[k] + (thread:get(k) or 0)
    end
  end
  local e = summary.errors
  io.write(string.format(
    "BENCH requests=%d duration_us=%d rps=%.1f p50_us=%d p99_us=%d " ..
    "ok=%d s2xx=%d s303=%d s3xx=%d s4xx=%d s5xx=%d exhausted=%d slice=%d " ..
    "err_connect=%d err_read=%d err_write=%d err_timeout=%d non2xx3xx=%d\n",
    summary.requests, summary.duration, summary.requests / (summary.duration / 1e6),
    latency:percentile(50), latency:percentile(99),
    t.ok, t.s2xx, t.s303, t.s3xx, t.s4xx, t.s5xx, t.exhausted, t.slice,
    e.connect, e.read, e.write, e.timeout, e.status))
end
