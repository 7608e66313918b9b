import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

const COMPOSE = ['/usr/bin/docker-compose', '/usr/local/bin/docker-compose'].find(existsSync);

test('docker-compose.yml is accepted by docker-compose config and has its services, with one GPU worker per device in the multi-gpu profile', { skip: !COMPOSE && 'docker-compose not installed (apt-get install docker-compose)' }, () => {
  const services = spawnSync(COMPOSE!, ['-f', 'docker-compose.yml', '--profile', 'gpu', 'config', '--services'], { encoding: 'utf8' });
  assert.equal(services.status, 0, services.stderr);
  // docker-compose 1.29 lists services of every profile here
  assert.deepEqual(services.stdout.trim().split('\n').sort(), ['api', 'redis', 'worker-cpu', 'worker-gpu', 'worker-gpu0', 'worker-gpu1']);
  const full = spawnSync(COMPOSE!, ['-f', 'docker-compose.yml', '--profile', 'gpu', 'config'], { encoding: 'utf8' });
  assert.equal(full.status, 0, full.stderr);
  assert.match(full.stdout, /--appendonly\n\s+- "?yes"?/);
  assert.match(full.stdout, /driver: nvidia/);
  assert.match(full.stdout, /NVIDIA_DRIVER_CAPABILITIES: compute,utility,graphics/);
  assert.match(full.stdout, /VK_DRIVER_FILES: /);
  const multi = spawnSync(COMPOSE!, ['-f', 'docker-compose.yml', '--profile', 'multi-gpu', 'config'], { encoding: 'utf8' });
  assert.equal(multi.status, 0, multi.stderr);
  // each per-device worker sees only its own card, so inside it the adapter index is always 0
  assert.deepEqual([...multi.stdout.matchAll(/NVIDIA_VISIBLE_DEVICES: '(\d+)'/g)].map((m) => m[1]), ['0', '1']);
  assert.equal([...multi.stdout.matchAll(/LAMINA_GPU: '0'/g)].length, 2);
});
