/**
 * The report in a real headless browser (Debian's chromium through
 * playwright-core): nothing is fetched, the chart's lines are drawn, and a
 * screenshot of the chart shows them.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
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

const LAUNCH = {
  executablePath: CHROMIUM,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
};

/** A database with the samples the tests look at, and a report of one trace. */
function reportOf(sample: string, trace: string): string {
  expect(existsSync(CHROMIUM), `${CHROMIUM} is needed: apt-get install chromium (.ci/run does)`).toBe(true);
  const dir = mkdtempSync(join(tmpdir(), 'pinledger-report-'));
  const r = cli(dir, 'ingest', join(root, 'traces/samples', sample));
  expect(r.status, r.stderr).toBe(0);
  const out = join(dir, 'report.html');
  const rep = cli(dir, 'report', '--trace', trace, '--out', out);
  expect(rep.status, rep.stderr).toBe(0);
  return out;
}

describe('pinledger report in chromium', () => {
  it('draws the locked-memory timeline of every design and process, fetching nothing', async () => {
    const out = reportOf('mixed-direct-mdev.jsonl', 'host42/vgpu-mixed');
    const browser = await chromium.launch(LAUNCH);
    try {
      const page = await browser.newPage({ viewport: { width: 1000, height: 800 } });
      const requests: string[] = [];
      page.on('request', (r) => requests.push(r.url()));
      await page.goto('file://' + out);
      expect(requests).toEqual(['file://' + out]);

      const series = await page.$$eval('.timeline path.series', (ps) =>
        ps.map((p) => ({ backend: p.getAttribute('data-backend'), pid: p.getAttribute('data-pid'), length: (p as unknown as { getTotalLength(): number }).getTotalLength(), stroke: p.getAttribute('stroke') })),
      );
      // The captured design first, then the comparisons.
      expect(series.map((s) => `${s.backend}/${s.pid}`)).toEqual(['upstream/4242', 'rfc-v5/4242', 'iommufd-compat/4242']);
      for (const s of series) expect(s.length).toBeGreaterThan(500);
      expect(await page.$$eval('#memlock tr[data-backend]', (rs) => rs.map((r) => r.getAttribute('data-backend')))).toEqual(['upstream', 'rfc-v5', 'iommufd-compat']);
      expect(await page.getAttribute('#memlock tr[data-backend="rfc-v5"] td.answer', 'data-bytes')).toBe('1075855360');
      expect(await page.textContent('#memlock')).toContain('1,050,640 KiB');
      // Two double charges of one cause are one row with a count.
      expect(await page.$$eval('#findings tr[data-code="ACCT_DOUBLE_CHARGE"]', (rs) => rs.map((r) => r.getAttribute('data-count')))).toEqual(['2']);
      expect(await page.textContent('#divergences')).toContain('first disagree');
      expect(await page.textContent('#answer li.comparison')).toMatch(/^rfc-v5 \(comparison\): pid 4242 needs RLIMIT_MEMLOCK >= 1,050,640 KiB/);

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

  it('answers first: the memlock sentence under the title, and the limit in force and the need drawn on the chart', async () => {
    const out = reportOf('limit-overrun.jsonl', 'host42/vm-memlock');
    const browser = await chromium.launch(LAUNCH);
    try {
      const page = await browser.newPage({ viewport: { width: 1000, height: 800 } });
      await page.goto('file://' + out);

      // The first text block of the body after the title is the answer.
      const first = await page.$eval('body', (body) => {
        const h1 = body.firstElementChild!;
        const next = h1.nextElementSibling!;
        return { title: h1.tagName + ' ' + h1.textContent, id: next.id, text: next.firstElementChild!.textContent, top: next.getBoundingClientRect().top };
      });
      expect(first.title).toBe('H1 pinledger report: host42/vm-memlock');
      expect(first.id).toBe('answer');
      expect(first.text).toMatch(/^pid 4242 needs RLIMIT_MEMLOCK >= 2,096,768 KiB \(2,147,090,432 bytes, 2\.0 GiB\); the limit in force was 65,536 KiB, short by 2,031,232 KiB; VFIO_IOMMU_MAP_DMA at seq 7 failed because of it/);
      expect(first.top).toBeLessThan(120);
      // The limit was short: the answer is drawn as a failure (red border).
      expect(await page.getAttribute('#answer', 'class')).toBe('short');
      expect(await page.$eval('#answer', (e) => (globalThis as unknown as { getComputedStyle(x: unknown): { borderTopColor: string } }).getComputedStyle(e).borderTopColor)).toBe('rgb(214, 39, 40)');

      // The two lines, with their byte values and labels, the need above the limit and inside the plot.
      const svg = '#timeline-upstream svg';
      const line = (cls: string) =>
        page.$eval(`${svg} line.${cls}`, (l) => ({ bytes: l.getAttribute('data-bytes'), y: Number(l.getAttribute('y1')), stroke: l.getAttribute('stroke'), dash: l.getAttribute('stroke-dasharray') }));
      const limit = await line('limit');
      const needed = await line('needed');
      expect(limit.bytes).toBe('67108864');
      expect(needed.bytes).toBe('2147090432');
      expect(limit.dash).toBeTruthy();
      expect(needed.dash).toBeTruthy();
      expect(await page.textContent(`${svg} text.limit-label`)).toBe('RLIMIT_MEMLOCK in force: 65,536 KiB');
      expect(await page.textContent(`${svg} text.needed-label`)).toBe('needed: 2,096,768 KiB');
      const axis = await page.$$eval(`${svg} text.ytick`, (ts) => ts.map((t) => ({ label: t.textContent, y: Number(t.getAttribute('y')) })));
      expect(axis.map((t) => t.label)).toEqual(['0', '512 MiB', '1 GiB', '1.5 GiB', '2 GiB', '2.5 GiB']);
      // The scale reaches the need although locked_vm never passed 160 pages.
      expect(needed.y).toBeLessThan(limit.y);
      expect(needed.y).toBeGreaterThan(axis.at(-1)!.y);
      expect(await page.getAttribute(`${svg} line.refusal`, 'data-seq')).toBe('7');

      const shot = PNG.sync.read(await page.locator(svg).screenshot());
      expect(countColour(shot, needed.stroke!)).toBeGreaterThan(600);
      expect(countColour(shot, limit.stroke!)).toBeGreaterThan(600);
      // The needed line's pixels are where its y says (the screenshot is the svg at 1:1).
      let onRow = 0;
      const row = Math.round(needed.y);
      for (let x = 0; x < shot.width; x++) for (const yy of [row - 1, row, row + 1]) if (isColour(shot, x, yy, needed.stroke!)) onRow++;
      expect(onRow).toBeGreaterThan(400);
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

function isColour(shot: PNG, x: number, y: number, hex: string): boolean {
  const [r, g, b] = [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));
  const i = (y * shot.width + x) * 4;
  return Math.abs(shot.data[i]! - r!) < 40 && Math.abs(shot.data[i + 1]! - g!) < 40 && Math.abs(shot.data[i + 2]! - b!) < 40;
}
