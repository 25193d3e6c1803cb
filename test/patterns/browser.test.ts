// Headless Chromium (Debian's chromium via playwright-core) against the hand-written server. One browser for
// the file, always closed with its profile removed; each step is bounded by short timeouts.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { BrowserContext } from 'playwright-core';
import { startSseServer, type SseApp } from '../../src/patterns/sse-app.ts';
import { withChromium, CHROMIUM_PATH } from '../../src/patterns/browser.ts';
import { needTool, waitFor } from '../_helpers.ts';

const test = suite('patterns/browser');

type S = { index: number; open: boolean; events: number; lastId: string };
// Functions passed to the page run inside the browser: no closures over this file's names.
type W = { state: S[]; sources: { close(): void }[]; readyStates(): number[] };

async function inBrowser(fn: (browser: BrowserContext, app: SseApp) => Promise<void>): Promise<void> {
  if (!needTool(CHROMIUM_PATH, 'headless browser interop')) return;
  const app = await startSseServer({ everyMs: 50, heartbeatMs: 0, retryMs: 200 });
  try {
    await withChromium((browser) => fn(browser, app), 8000);
  } finally {
    await app.close();
  }
}

test("a page's EventSource receives the server's events in order, and the server sees it leave", async () => {
  await inBrowser(async (browser, app) => {
    const page = await browser.newPage();
    await page.goto(`http://127.0.0.1:${app.address.port}/sources?n=1`);
    await page.waitForFunction(() => (globalThis as unknown as W).state[0]!.events >= 5, undefined, { timeout: 5000 });
    const s = (await page.evaluate(() => (globalThis as unknown as W).state))[0]!;
    assert.ok(s.open);
    assert.ok(Number(s.lastId) >= 5);
    await page.close();
    await waitFor(() => app.hub.clientCount === 0, 3000, 'the browser stream to be cleaned up');
  });
});

test('HTTP/1.1 six connections per origin: of seven EventSources the seventh waits until one closes', async () => {
  await inBrowser(async (browser, app) => {
    const page = await browser.newPage();
    await page.goto(`http://127.0.0.1:${app.address.port}/sources?n=7`);
    await page.waitForFunction(() => (globalThis as unknown as W).state.filter((s) => s.events > 0).length >= 6, undefined, { timeout: 5000 });
    await new Promise((r) => setTimeout(r, 300)); // long enough for a seventh connection, were one allowed
    const before = await page.evaluate(() => (globalThis as unknown as W).state);
    assert.equal(before.map((s) => s.open), [true, true, true, true, true, true, false]);
    assert.is(before[6]!.events, 0);
    assert.is(app.hub.clientCount, 6);
    await page.evaluate(() => (globalThis as unknown as W).sources[0]!.close());
    await page.waitForFunction(() => (globalThis as unknown as W).state[6]!.events > 0, undefined, { timeout: 5000 });
    assert.is(app.hub.clientCount, 6);
  });
});

test.run();
