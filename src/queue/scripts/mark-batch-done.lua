--[[
  Records that one batch of an analysis has its output stored. Idempotent: a retried or
  duplicated batch (a stalled job taken over by another worker) counts once.

  Input:
    KEYS[1] set of done batch indices for the run   ({prefix}:analysis:{id}:run:{run}:done)
    KEYS[2] progress hash                            ({prefix}:analysis:{id}:progress)
    KEYS[3] global tiles-scored counter              ({prefix}:stats:tiles-scored)
    ARGV[1] batch index
    ARGV[2] tiles in the batch
    ARGV[3] run number the batch belongs to
    ARGV[4] milliseconds the batch took (encode time)

  Output:
     1  counted now
     0  already counted (a retry)
    -1  stale: the analysis has been re-queued under a newer run
]]
local run = redis.call('HGET', KEYS[2], 'run')
if run ~= ARGV[3] then
  return -1
end
if redis.call('SADD', KEYS[1], ARGV[1]) == 0 then
  return 0
end
redis.call('HINCRBY', KEYS[2], 'batchesDone', 1)
redis.call('HINCRBY', KEYS[2], 'tilesDone', tonumber(ARGV[2]))
redis.call('HINCRBY', KEYS[2], 'encodeMs', tonumber(ARGV[4]))
redis.call('INCRBY', KEYS[3], tonumber(ARGV[2]))
return 1
