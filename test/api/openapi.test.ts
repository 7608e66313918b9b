import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startService } from '../queue/service-harness.ts';

test('every operation in /api/openapi.json is routed; health, readiness, metrics and the dashboard answer', { timeout: 60_000 }, async () => {
  const svc = await startService();
  try {
    const base = svc.api.url;
    const doc = await (await fetch(`${base}/api/openapi.json`)).json();
    assert.equal(doc.openapi, '3.1.0');
    const ops = Object.entries(doc.paths as Record<string, Record<string, any>>).flatMap(([path, methods]) => Object.keys(methods).map((m) => [m, path] as const));
    assert.ok(ops.length >= 20, `${ops.length} operations`);
    for (const [method, path] of ops) {
      const url = path.replace('{id}', 'aaaaaaaaaaaaaaaaaaaaaaaa').replace('{level}', '1').replace('{tile}', '0_0.jpeg').replace('{file}', 'result.json');
      const r = await fetch(`${base}${url}`, { method: method.toUpperCase(), headers: { 'content-type': 'application/json' }, body: method === 'get' ? undefined : '{}' });
      const body = r.headers.get('content-type')?.includes('json') ? await r.json() : null;
      assert.ok(!(r.status === 404 && /no route for/.test(body?.error?.message ?? '')), `${method} ${path} is documented but not routed`);
      if (r.status >= 400) assert.ok(body?.error?.code && body.error.message, `${method} ${path}: JSON error with a reason`);
    }
    const unknown = await fetch(`${base}/api/nothing-here`);
    assert.equal(unknown.status, 404);
    assert.match((await unknown.json()).error.message, /no route for GET \/api\/nothing-here/);

    assert.deepEqual(await (await fetch(`${base}/healthz`)).json(), { ok: true, version: doc.info.version });
    assert.equal((await fetch(`${base}/readyz`)).status, 200);
    const metrics = await (await fetch(`${base}/metrics`)).text();
    assert.match(metrics, /lamina_queue_jobs\{queue="lamina-batch",state="waiting"\} 0/);
    assert.match(metrics, /lamina_http_request_duration_seconds_count\{method="GET",route="\/readyz",status="200"\} 2/);
    assert.match(metrics, /lamina_tiles_per_second/);
    assert.equal((await fetch(`${base}/admin/queues`)).status, 200);
    assert.equal((await fetch(`${base}/vendor/openseadragon/openseadragon.min.js`)).status, 200);
    assert.equal((await fetch(`${base}/`)).status, 200);

    const bad = await fetch(`${base}/api/slides/aaaaaaaaaaaaaaaaaaaaaaaa/analyses`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"tileSize": 1.5}' });
    assert.equal(bad.status, 400);
    const broken = await fetch(`${base}/api/batches`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{not json' });
    assert.equal(broken.status, 400);
    assert.equal((await broken.json()).error.code, 'invalid_body');
  } finally {
    await svc.stop();
  }
});
