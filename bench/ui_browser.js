// Times pages in headless Chromium (Debian's, through playwright-core): for each
// `name|url|selector[|chart]` argument, the median time from navigation to the selector being visible,
// over TURNS loads in fresh pages. With a fourth field `chart`, the time is the page's own clock
// from navigation to the chart painted (figure[data-shown-at]), and the chart's draw time is read
// too (figure[data-draw-ms]). Prints one JSON object. Run by bench/ui.py.
const { chromium } = require('playwright-core');

const TURNS = Number(process.env.TURNS || 5);
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };

(async () => {
  const browser = await chromium.launch({
    executablePath: process.env.MLSHIP_CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run', '--disable-background-networking'],
  });
  const out = {};
  for (const arg of process.argv.slice(2)) {
    const [name, url, selector, extra] = arg.split('|');
    const times = [];
    const draws = [];
    for (let i = 0; i < TURNS; i++) {
      const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
      const t0 = Date.now();
      try {
        await page.goto(url);
        await page.locator(selector).first().waitFor({ state: 'visible', timeout: 120_000 });
        times.push(Date.now() - t0);
        if (extra === 'chart') {
          const fig = page.locator('figure[data-draw-ms]').first();
          await fig.waitFor({ state: 'attached', timeout: 60_000 });
          draws.push(Number(await fig.getAttribute('data-draw-ms')));
          // The page's own clock from navigation to the chart painted replaces the poll's.
          times[times.length - 1] = Number(await fig.getAttribute('data-shown-at'));
        }
      } catch (e) {
        out[name] = { error: e.message.split('\n')[0] };
        const shot = `${require('node:os').tmpdir()}/mlship-bench-ui-${name}.png`;
        await page.screenshot({ path: shot }).catch(() => {});
        console.error(`${name}: ${e.message.split('\n')[0]} (screenshot: ${shot})`);
        await page.close();
        break;
      }
      await page.close();
    }
    if (!out[name]) out[name] = { ms: median(times), turns: times, draw_ms: draws.length ? median(draws) : undefined };
  }
  await browser.close();
  console.log(JSON.stringify(out));
})();
