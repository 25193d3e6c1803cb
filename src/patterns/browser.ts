// A real browser against our server: Debian's chromium, driven over CDP by playwright-core, headless, with a
// fresh profile directory each run and everything that would reach the network switched off. Always closed
// and its profile removed, whatever happens.
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';

export const CHROMIUM_PATH = process.env.WIRELAB_CHROMIUM ?? '/usr/bin/chromium';

export const CHROMIUM_FLAGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

export function chromiumAvailable(): boolean {
  return existsSync(CHROMIUM_PATH);
}

/** Starts Chromium with a fresh --user-data-dir, runs fn, then closes the browser and deletes the profile. */
export async function withChromium<T>(fn: (context: BrowserContext) => Promise<T>, timeoutMs = 15_000): Promise<T> {
  const profile = mkdtempSync(join(tmpdir(), 'wirelab-chromium-'));
  let context: BrowserContext | null = null;
  try {
    // launchPersistentContext passes the profile as --user-data-dir (playwright refuses it inside args).
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM_PATH, headless: true, args: CHROMIUM_FLAGS, timeout: timeoutMs,
    });
    context.setDefaultTimeout(timeoutMs);
    return await fn(context);
  } finally {
    await context?.close().catch(() => {});
    rmSync(profile, { recursive: true, force: true });
  }
}

/**
 * The page for the six-connections demo: opens N EventSources to the same origin and records, for each,
 * when it opened and how many events it got. HTTP/1.1 browsers allow six connections per origin, and an
 * EventSource holds its connection for good, so the seventh stays CONNECTING until another one closes.
 */
export function eventSourcesPage(n: number): string {
  return `<!doctype html><meta charset="utf-8"><title>${n} EventSources</title><pre id="log"></pre>
<script>
const state = [];
window.sources = [];
for (let i = 0; i < ${n}; i++) {
  const s = { index: i + 1, open: false, events: 0, lastId: '' };
  state.push(s);
  const es = new EventSource('/events?client=' + (i + 1));
  window.sources.push(es);
  es.onopen = () => { s.open = true; };
  es.addEventListener('tick', (e) => { s.events++; s.lastId = e.lastEventId; });
  es.onmessage = (e) => { s.events++; s.lastId = e.lastEventId; };
}
window.state = state;
window.readyStates = () => window.sources.map((es) => es.readyState);
</script>`;
}
