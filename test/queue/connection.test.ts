import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseRedisUrl } from '../../src/queue/connection.ts';
import { analysisOfJob, jobIds } from '../../src/queue/names.ts';

test('REDIS_URL forms: plain, TLS, Sentinel and Cluster', () => {
  assert.deepEqual(parseRedisUrl('redis://:pw@h:6380/2'), { kind: 'single', url: 'redis://:pw@h:6380/2' });
  assert.deepEqual(parseRedisUrl('rediss://h'), { kind: 'single', url: 'rediss://h' });
  assert.deepEqual(parseRedisUrl('redis-sentinel://:s3cret@s1:26379,s2/mymaster/3'), {
    kind: 'sentinel', sentinels: [{ host: 's1', port: 26379 }, { host: 's2', port: 26379 }], name: 'mymaster', password: 's3cret', db: 3, tls: false,
  });
  assert.deepEqual(parseRedisUrl('redis-cluster+tls://n1:7000,n2:7001'), {
    kind: 'cluster', nodes: [{ host: 'n1', port: 7000 }, { host: 'n2', port: 7001 }], password: undefined, tls: true,
  });
  assert.throws(() => parseRedisUrl('http://h'), /Expected redis:\/\/, rediss:\/\/, redis-sentinel:\/\/ or redis-cluster:\/\/ URL for REDIS_URL/);
  assert.throws(() => parseRedisUrl('redis-sentinel://s1:26379'), /masterName/);
});

test('job ids name their analysis, run and batch', () => {
  assert.equal(jobIds.batch('abc123def456', 2, 7), 'batch-abc123def456-2-7');
  assert.equal(analysisOfJob(jobIds.batch('abc123def456', 2, 7)), 'abc123def456');
  assert.equal(analysisOfJob(jobIds.aggregate('abc123def456', 1)), 'abc123def456');
  assert.equal(analysisOfJob('repeat:foo'), null);
});
