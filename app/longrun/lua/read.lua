-- Read a task: {task hash fields, pending input requests}. Empty when the task is gone.
-- KEYS[1] task hash, KEYS[2] its pending input requests (hash key -> request JSON)
return {redis.call('HGETALL', KEYS[1]), redis.call('HGETALL', KEYS[2])}
