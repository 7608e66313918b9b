import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

const COMPOSE = ['/usr/bin/docker-compose', '/usr/local/bin/docker-compose'].find(existsSync);

test('docker-compose.yml is accepted by docker-compose config and has its four services', { skip: !COMPOSE && 'docker-compose not installed (apt-get install docker-compose)' }, () => {
  const services = spawnSync(COMPOSE!, ['-f', 'docker-compose.yml', '--profile', 'gpu', 'config', '--services'], { encoding: 'utf8' });
  assert.equal(services.status, 0, services.stderr);
  assert.deepEqual(services.stdout.trim().split('\n').sort(), ['api', 'redis', 'worker-cpu', 'worker-gpu']);
  const full = spawnSync(COMPOSE!, ['-f', 'docker-compose.yml', '--profile', 'gpu', 'config'], { encoding: 'utf8' });
  assert.equal(full.status, 0, full.stderr);
  assert.match(full.stdout, /--appendonly\n\s+- "?yes"?/);
  assert.match(full.stdout, /driver: nvidia/);
  assert.match(full.stdout, /NVIDIA_DRIVER_CAPABILITIES: compute,utility,graphics/);
  assert.match(full.stdout, /VK_DRIVER_FILES: /);
});
