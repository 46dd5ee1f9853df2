/**
 * The report in a real headless browser (Debian's chromium through
 * playwright-core): nothing is fetched, the chart's lines are drawn, and a
 * screenshot of the chart shows them.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import { chromium } from 'playwright-core';
import { describe, expect, it } from 'vitest';

const root = new URL('../..', import.meta.url).pathname;
const CHROMIUM = process.env.PINLEDGER_CHROMIUM ?? '/usr/bin/chromium';

function cli(cwd: string, ...args: string[]) {
  return spawnSync(process.execPath, [join(root, 'bin/pinledger.js'), ...args], { cwd, encoding: 'utf8' });
}

describe('pinledger report in chromium', () => {
  it('draws the locked-memory timeline of every design and process, fetching nothing', async () => {
    expect(existsSync(CHROMIUM), `${CHROMIUM} is needed: apt-get install chromium (.ci/run does)`).toBe(true);
    const dir = mkdtempSync(join(tmpdir(), 'pinledger-report-'));
    const samples = join(root, 'traces/samples');
    const files = readdirSync(samples).filter((f) => f.endsWith('.jsonl') && !f.startsWith('invalid')).map((f) => join(samples, f));
    expect(cli(dir, 'ingest', ...files).status).toBe(0);
    const out = join(dir, 'mixed.html');
    expect(cli(dir, 'report', '--trace', 'host42/vgpu-mixed', '--out', out).status).toBe(0);

    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    try {
      const page = await browser.newPage({ viewport: { width: 1000, height: 800 } });
      const requests: string[] = [];
      page.on('request', (r) => requests.push(r.url()));
      await page.goto('file://' + out);
      expect(requests).toEqual(['file://' + out]);

      const series = await page.$$eval('.timeline path.series', (ps) =>
        ps.map((p) => ({ backend: p.getAttribute('data-backend'), pid: p.getAttribute('data-pid'), length: (p as unknown as { getTotalLength(): number }).getTotalLength(), stroke: p.getAttribute('stroke') })),
      );
      expect(series.map((s) => `${s.backend}/${s.pid}`)).toEqual(['iommufd-compat/4242', 'rfc-v5/4242', 'upstream/4242']);
      for (const s of series) expect(s.length).toBeGreaterThan(500);
      expect(await page.textContent('#memlock')).toContain('1075855360');
      expect(await page.textContent('#findings')).toContain('ACCT_DOUBLE_CHARGE');
      expect(await page.textContent('#divergences')).toContain('first disagree');

      // The screenshot: each design's chart shows its line, in quantity.
      for (const s of series) {
        const shot = PNG.sync.read(await page.locator(`#timeline-${s.backend} svg`).screenshot());
        expect(countColour(shot, s.stroke!)).toBeGreaterThan(800);
        expect(countColour(shot, '#ffffff')).toBeGreaterThan(shot.width * shot.height * 0.5);
      }
    } finally {
      await browser.close();
    }
  }, 60000);
});

function countColour(shot: PNG, hex: string): number {
  const [r, g, b] = [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));
  let n = 0;
  for (let i = 0; i < shot.data.length; i += 4) {
    if (Math.abs(shot.data[i]! - r!) < 40 && Math.abs(shot.data[i + 1]! - g!) < 40 && Math.abs(shot.data[i + 2]! - b!) < 40) n++;
  }
  return n;
}
