-- wrk script: send `depth` GET requests back to back in one write and keep that many in flight per
-- connection (HTTP/1.1 pipelining, RFC 9112 §9.3.2). wrk counts each response it parses.
-- Usage: wrk -t1 -c50 -d2s -s bench/lib/wrk-pipeline.lua http://127.0.0.1:PORT/ -- 100
init = function(args)
  local depth = tonumber(args[1]) or 100
  local r = {}
  for i = 1, depth do
    r[i] = wrk.format(nil, "/")
  end
  req = table.concat(r)
end

request = function()
  return req
end
