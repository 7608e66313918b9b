import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TileCache } from '../../src/io/tile-cache.ts';

const tile = (bytes: number, fill = 0) => ({ width: 1, height: bytes / 3, data: Buffer.alloc(bytes, fill) });

test('LRU bounded in bytes: least recently used go first', () => {
  const cache = new TileCache(3000);
  cache.set('a', tile(1200, 1));
  cache.set('b', tile(1200, 2));
  assert.ok(cache.get('a'));           // a is now the most recent
  cache.set('c', tile(1200, 3));       // 3600 > 3000: evicts b
  assert.equal(cache.get('b'), undefined);
  assert.equal(cache.get('a')!.data[0], 1);
  assert.equal(cache.size, 2400);
  cache.set('huge', tile(3003));       // larger than the whole cache: not stored
  assert.equal(cache.get('huge'), undefined);
  cache.set('a', tile(300));           // replacing updates the byte count
  assert.equal(cache.size, 1500);
  cache.evictPrefix('c');
  assert.equal(cache.size, 300);
});

test('concurrent loads of one key decode once; failures are not cached', async () => {
  const cache = new TileCache(1 << 20);
  let loads = 0;
  const load = async () => { loads++; await new Promise((r) => setTimeout(r, 5)); return tile(30); };
  const [x, y] = await Promise.all([cache.getOrLoad('k', load), cache.getOrLoad('k', load)]);
  assert.equal(loads, 1);
  assert.equal(x, y);
  await cache.getOrLoad('k', load);
  assert.equal(loads, 1);
  await assert.rejects(cache.getOrLoad('bad', async () => { throw new Error('boom'); }), /boom/);
  assert.equal(await cache.getOrLoad('bad', async () => tile(3)).then((t) => t.data.length), 3);
  assert.deepEqual(cache.stats, { hits: 2, misses: 3, entries: 2, bytes: 33 });
});
