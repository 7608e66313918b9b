--[[
  Initialises the progress of one run of an analysis, once. A plan job that stalled and runs a
  second time (its lock expired while the first attempt was still busy) must not zero counters
  that batches of the same run have already advanced.

  Input:
    KEYS[1] progress hash ({prefix}:analysis:{id}:progress)
    ARGV[1] run number
    ARGV[2] batches in the run (0 while only queued)
    ARGV[3] tiles in the run
    ARGV[4] time to live in seconds

  Output:
    1  initialised (or totals filled in for a run queued with zero totals)
    0  already initialised for this run: left alone
]]
if redis.call('HGET', KEYS[1], 'run') == ARGV[1] then
  local total = redis.call('HGET', KEYS[1], 'batchesTotal')
  if total and total ~= '0' then
    return 0
  end
  redis.call('HSET', KEYS[1], 'batchesTotal', ARGV[2], 'tilesTotal', ARGV[3])
  return 1
end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'run', ARGV[1], 'batchesTotal', ARGV[2], 'tilesTotal', ARGV[3], 'batchesDone', 0, 'tilesDone', 0, 'encodeMs', 0)
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[4]))
return 1
