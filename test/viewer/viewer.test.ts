import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { chromium, type Page } from 'playwright-core';
import sharp from 'sharp';
import { COLOUR_LUT } from '../../src/api/colormap.ts';
import { TEST_PARAMS, startService } from '../queue/service-harness.ts';

const CHROMIUM = '/usr/bin/chromium';

async function pixels(page: Page): Promise<{ data: Buffer; n: number }> {
  const png = await page.locator('#osd').screenshot();
  const { data, info } = await sharp(png).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return { data, n: info.width * info.height };
}

/**
 * Waits until the world holds exactly the slide and one heatmap layer, each with every visible tile
 * drawn. A stray third layer (one the page lost track of) never satisfies this, so the timeout
 * message lists the layers and what the image loader still has in flight.
 */
async function settled(page: Page) {
  try {
    await page.waitForFunction(() => {
      const l = (window as any).lamina;
      const w = l?.viewer?.world;
      return l?.heatmap && w.getItemCount() === 2 && w.getItemAt(0).getFullyLoaded() && l.heatmap.getFullyLoaded() && l.viewer.viewport.getZoom(false) === l.viewer.viewport.getZoom(true);
    }, undefined, { timeout: 30_000 });
  } catch (err) {
    const state = await page.evaluate(() => {
      const l = (window as any).lamina;
      const w = l.viewer.world;
      const items = Array.from({ length: w.getItemCount() }, (_, i) => w.getItemAt(i)).map((it: any) =>
        `${it === l.heatmap ? '*' : ''}${it.source.getTileUrl(0, 0, 0)} fullyLoaded=${it.getFullyLoaded()}`);
      return { items, tileJobs: l.viewer.imageLoader.jobsInProgress, queuedTileJobs: l.viewer.imageLoader.jobQueue.length };
    }).catch((e) => String(e));
    throw new Error(`viewer not settled: ${JSON.stringify(state)}`, { cause: err });
  }
  await page.waitForTimeout(400);
}

/** Waits for OpenSeadragon to draw a frame after a change (a fixed sleep alone flakes on a loaded CI machine). */
async function redrawn(page: Page) {
  await page.evaluate(() => new Promise((resolve) => {
    const v = (window as any).lamina.viewer;
    const timer = setTimeout(resolve, 5_000);
    v.addOnceHandler('update-viewport', () => requestAnimationFrame(() => { clearTimeout(timer); resolve(null); }));
    v.forceRedraw();
  }));
  await page.waitForTimeout(400);
}

test('the viewer draws the slide and the heatmap, the opacity slider works, a region click zooms there', { timeout: 240_000, skip: !existsSync(CHROMIUM) && `${CHROMIUM} not installed` }, async () => {
  const svc = await startService();
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-dev-shm-usage', '--disable-extensions'],
  });
  try {
    svc.startWorker(['--no-sandbox']);
    const slide = await svc.upload();
    // A low threshold so the untrained encoder's scores surely form regions to click.
    const a = await svc.submit(slide.id, { ...TEST_PARAMS, threshold: 0.2, minRegionTiles: 1 });
    const done = await svc.waitFor(a.id);
    assert.equal(done.state, 'completed');

    const page = await browser.newPage({ viewport: { width: 1100, height: 760 } });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    // The slide's descriptor is answered only after the result has been shown, as on a loaded CI
    // machine where it lost that race: OpenSeadragon then adds no layer until the descriptor is
    // in, so every heatmap layer the page asked for meanwhile arrives at once.
    await page.route(/\/api\/slides\/[^/]+\/dzi$/, async (route) => {
      await page.waitForFunction(() => document.getElementById('score')?.textContent !== '', undefined, { timeout: 30_000 }).catch(() => undefined);
      await route.continue();
    });
    await page.goto(`${svc.api.url}/slides/${slide.id}?analysis=${a.id}`);
    await settled(page);
    assert.equal(await page.locator('#state').textContent(), 'completed');
    assert.match((await page.locator('#score').textContent()) ?? '', /^\d\.\d{3}$/);
    // The encoder is named beside the score, with its note: here the UNTRAINED warning.
    assert.equal(await page.locator('#model-name').textContent(), 'untrained-test-tiny (UNTRAINED)');
    assert.match((await page.locator('#model-note').textContent()) ?? '', /untrained ViT with fixed-seed random weights/);

    await page.locator('#opacity').fill('0');
    assert.equal(await page.evaluate(() => (window as any).lamina.heatmap.getOpacity()), 0);
    await redrawn(page);
    const plain = await pixels(page);
    // Slide tiles drawn: the H&E tissue is far from the white background in many pixels.
    let tissue = 0;
    for (let i = 0; i < plain.data.length; i += 3) if (plain.data[i]! + plain.data[i + 1]! + plain.data[i + 2]! < 600) tissue++;
    assert.ok(tissue / plain.n > 0.05, `tissue pixels ${(tissue / plain.n * 100).toFixed(1)}%`);

    /** Fraction of pixels that changed from the plain slide and now carry colours of the scale. */
    const colouredFraction = async () => {
      const heat = await pixels(page);
      let coloured = 0;
      for (let i = 0; i < heat.data.length; i += 3) {
        if (Math.abs(heat.data[i]! - plain.data[i]!) + Math.abs(heat.data[i + 1]! - plain.data[i + 1]!) + Math.abs(heat.data[i + 2]! - plain.data[i + 2]!) < 30) continue;
        const [r, g, b] = [heat.data[i]!, heat.data[i + 1]!, heat.data[i + 2]!];
        if (COLOUR_LUT.some(([lr, lg, lb]) => Math.abs(lr - r) + Math.abs(lg - g) + Math.abs(lb - b) < 24)) coloured++;
      }
      return coloured / heat.n;
    };
    await page.locator('#opacity').fill('1');
    assert.equal(await page.evaluate(() => (window as any).lamina.heatmap.getOpacity()), 1);
    await redrawn(page);
    const atThreshold = await colouredFraction();
    assert.ok(atThreshold > 0.005, `heatmap pixels at the analysis threshold ${(atThreshold * 100).toFixed(1)}%`);
    // Threshold 0: every scored tile is painted, a larger share of the slide. The slider passes
    // 0.5 on the way within one task, so the 0.5 layer is superseded before OpenSeadragon adds it
    // and must not stay behind under the threshold-0 one.
    await page.evaluate(() => {
      const t = document.getElementById('threshold') as HTMLInputElement;
      for (const v of ['0.5', '0']) { t.value = v; t.dispatchEvent(new Event('change')); }
    });
    await settled(page);
    assert.match(await page.evaluate(() => (window as any).lamina.heatmap.source.getTileUrl(0, 0, 0)), /[?&]threshold=0&/);
    await redrawn(page);
    const all = await colouredFraction();
    assert.ok(all > 0.05 && all > atThreshold * 1.5, `heatmap pixels at threshold 0: ${(all * 100).toFixed(1)}%, at the analysis threshold ${(atThreshold * 100).toFixed(1)}%`);

    const regions = page.locator('#regions li');
    assert.ok((await regions.count()) > 0, 'regions listed');
    const before = await page.evaluate(() => (window as any).lamina.viewer.viewport.getZoom(true));
    await regions.first().click();
    await page.waitForFunction((z) => (window as any).lamina.viewer.viewport.getZoom(true) > z * 1.3, before, { timeout: 10_000 });
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
    await svc.stop();
  }
});
