// The web UI in a real browser (Debian's Chromium through Playwright), over runs logged by the
// stock mlflow client (seed.py): filter, sort and compare runs, read a chart's points, preview
// artifacts, move an alias and roll it back through the page (then find both moves with
// `mlship models history`), and score the "try it" form (then compare with `mlship predict`).
// axe-core checks every page for serious and critical violations; screenshots go to MLSHIP_SHOTS.
const { test, expect } = require('@playwright/test');
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const URL_ = process.env.MLSHIP_URL;
const SERVE_URL = process.env.MLSHIP_SERVE_URL;
const SHOTS = process.env.MLSHIP_SHOTS;
const ids = JSON.parse(fs.readFileSync(process.env.MLSHIP_IDS, 'utf8'));
const AXE = require.resolve('axe-core/axe.min.js');

test.describe.configure({ mode: 'serial' });

function mlship(...args) {
  return execFileSync(process.env.MLSHIP_BIN, args, { env: { ...process.env }, encoding: 'utf8' });
}

// No serious or critical accessibility violation on the page as it is now.
async function accessible(page, what) {
  await page.addScriptTag({ path: AXE });
  const found = await page.evaluate(async () => {
    const r = await window.axe.run(document, { resultTypes: ['violations'] });
    return r.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical')
      .map((v) => `${v.id} (${v.impact}): ${v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join(' | ')}`);
  });
  expect(found, `axe on ${what}`).toEqual([]);
}

async function shot(page, name) {
  if (SHOTS) await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
}

// Page errors fail the test that caused them.
test.beforeEach(async ({ page }) => {
  page.on('pageerror', (e) => { throw e; });
});

test('experiments list their runs', async ({ page }) => {
  await page.goto(`${URL_}/`);
  const row = page.locator('tr', { has: page.getByRole('link', { name: 'ui-demo' }) });
  await expect(row).toContainText('8');
  await accessible(page, 'experiments');
  await shot(page, 'experiments');
});

test('runs: filter, sort, nesting, escaping, a parse error at its token', async ({ page }) => {
  await page.goto(`${URL_}/#/experiments/${ids.experiment_id}`);
  const runs = page.locator('#runs tbody tr');
  await expect(runs).toHaveCount(8);
  // Children follow their parent, indented.
  const names = await runs.locator('td:nth-child(2)').allInnerTexts();
  const parent = names.findIndex((n) => n.trim() === 'sweep');
  expect(names[parent + 1]).toContain('sweep-child');
  expect(names[parent + 2]).toContain('sweep-child');
  // HTML in a run's name is text.
  await expect(page.getByRole('link', { name: '<img src=x onerror=alert(1)><script>window.pwned=1</script>' })).toBeVisible();
  expect(await page.evaluate(() => window.pwned)).toBeUndefined();
  await shot(page, 'runs-all');

  await page.getByLabel('Filter').fill('metrics.rmse < 0.45');
  await page.getByRole('button', { name: 'Search' }).click();
  await expect(runs).toHaveCount(2);
  expect(page.url()).toContain('filter=metrics.rmse');
  // Sort by rmse, ascending then descending.
  if (!(await page.getByRole('button', { name: /^metrics\.rmse/ }).count())) {
    await page.getByText(/^Columns/).click();
    await page.getByLabel('metrics.rmse', { exact: true }).check();
  }
  await page.getByRole('button', { name: /^metrics\.rmse/ }).click();
  await expect(page).toHaveURL(/order=metrics\.rmse(\+|%20)DESC/);
  await expect(runs.first()).toContainText('sweep-child-1');
  await page.getByRole('button', { name: /^metrics\.rmse/ }).click();
  await expect(page).toHaveURL(/order=metrics\.rmse(\+|%20)ASC/);
  await expect(runs.first()).toContainText('long-training');
  await accessible(page, 'runs');
  await shot(page, 'runs');

  // The view is a link: opening the URL again shows the same rows in the same order.
  const shared = page.url();
  await page.goto(`${URL_}/`);
  await page.goto(shared);
  await expect(runs.first()).toContainText('long-training');
  await expect(runs).toHaveCount(2);

  await page.getByLabel('Filter').fill('metrics.rmse < and');
  await page.getByRole('button', { name: 'Search' }).click();
  await expect(page.getByRole('alert')).toContainText('at character 15');
  await expect(page.locator('.error mark')).toHaveText('and');
  await accessible(page, 'a filter error');
});

test('compare two runs: differences marked, charts overlaid, a scatter', async ({ page }) => {
  await page.goto(`${URL_}/#/experiments/${ids.experiment_id}`);
  await page.getByLabel('Select sweep-child-0').check();
  await page.getByLabel('Select sweep-child-1').check();
  expect(page.url()).toContain('sel=');
  await page.getByRole('link', { name: 'Compare 2 selected' }).click();
  await expect(page.getByRole('heading', { name: 'Compare 2 runs' })).toBeVisible();
  await expect(page.locator('#compare-params tr', { hasText: 'alpha' })).toHaveClass(/diff/);
  await expect(page.locator('#compare-metrics tr', { hasText: 'rmse' })).toHaveClass(/diff/);
  await expect(page.locator('figure.chart').first()).toHaveAttribute('data-points', '20,20');
  await expect(page.locator('figure.chart canvas').first()).toBeVisible();
  await expect(page.locator('figure.chart canvas')).toHaveCount(2);
  await accessible(page, 'compare');
  await shot(page, 'compare');
});

test('a run: its chart holds every logged point; artifacts preview', async ({ page }) => {
  await page.goto(`${URL_}/#/runs/${ids.long}`);
  const chart = page.locator('figure[data-metric="loss"]');
  await expect(chart).toHaveAttribute('data-points', String(ids.loss_points));
  expect(Math.abs(Number(await chart.getAttribute('data-sum')) - ids.loss_sum)).toBeLessThan(1e-6);
  await expect(chart.locator('canvas')).toBeVisible();
  // Log scale and wall time redraw with the same points.
  await page.getByLabel('Log scale').check();
  await page.getByLabel('X axis').selectOption('wall');
  await expect(page.locator('figure[data-metric="loss"]')).toHaveAttribute('data-points', String(ids.loss_points));
  await page.getByText('config/').click();
  await page.getByRole('button', { name: 'model.json' }).click();
  await expect(page.locator('.preview pre')).toContainText('"dropout": 0.1');
  await page.getByText('metrics/').click();
  await page.getByRole('button', { name: 'curve.csv' }).click();
  await expect(page.locator('.preview table tbody tr')).toHaveCount(3);
  await page.getByText('plots/').click();
  await page.getByRole('button', { name: 'plot.png' }).click();
  await expect(page.locator('.preview img')).toBeVisible();
  await page.getByText('logs/').click();
  await page.getByRole('button', { name: 'big.log' }).click();
  await expect(page.locator('.preview')).toContainText('too large to preview');
  await accessible(page, 'run');
  await shot(page, 'run');
  // The run logged by the MLflow client's printed link opens too.
  await page.goto(`${URL_}/#/experiments/${ids.experiment_id}/runs/${ids.html}`);
  await expect(page.getByRole('heading', { level: 1 })).toHaveText('<img src=x onerror=alert(1)><script>window.pwned=1</script>');
  await expect(page.getByRole('cell', { name: '<b>bold?</b><script>window.pwned=2</script>' })).toBeVisible();
  expect(await page.evaluate(() => window.pwned)).toBeUndefined();
});

test('a running run refreshes by itself', async ({ page, request }) => {
  await page.goto(`${URL_}/#/runs/${ids.running}`);
  await expect(page.locator('dl.facts')).toContainText('RUNNING');
  await expect(page.getByRole('cell', { name: 'progress', exact: true })).toBeVisible();
  const r = await request.post(`${URL_}/api/2.0/mlflow/runs/log-metric`, {
    data: { run_id: ids.running, key: 'arrived_later', value: 3, timestamp: Date.now(), step: 1 },
  });
  expect(r.ok()).toBe(true);
  // No reload: the page polls while the run is running.
  await expect(page.getByRole('cell', { name: 'arrived_later', exact: true })).toBeVisible({ timeout: 15_000 });
});

test('models: move an alias and roll it back through the page', async ({ page }) => {
  await page.goto(`${URL_}/#/models`);
  await page.getByRole('link', { name: ids.model, exact: true }).click();
  const production = page.locator('#aliases tr[data-alias="production"]');
  await expect(production).toContainText('v1');
  await page.getByLabel('Version for @production').selectOption('2');
  await production.getByRole('button', { name: 'Move' }).click();
  const dialog = page.getByRole('dialog');
  await dialog.getByLabel(/Reason/).fill('ui test: promote v2');
  await dialog.getByRole('button', { name: 'Confirm' }).click();
  await expect(page.locator('#aliases tr[data-alias="production"]')).toContainText('v2');
  await expect(page.locator('#versions tr[data-version="2"]')).toContainText('@production');
  await page.locator('#aliases tr[data-alias="production"]').getByRole('button', { name: 'Roll back' }).click();
  await dialog.getByLabel(/Reason/).fill('ui test: roll back');
  await dialog.getByRole('button', { name: 'Confirm' }).click();
  await expect(page.locator('#aliases tr[data-alias="production"]')).toContainText('v1');
  await expect(page.locator('#alias-history li').first()).toContainText('ui test: roll back');
  await accessible(page, 'model');
  await shot(page, 'model');
  const history = JSON.parse(mlship('models', 'history', ids.model, '--output', 'json'));
  const text = JSON.stringify(history);
  expect(text).toContain('ui test: promote v2');
  expect(text).toContain('ui test: roll back');
  expect(text).toContain('web UI');
  // A cancelled move changes nothing.
  await page.getByLabel('Version for @production').selectOption('2');
  await page.locator('#aliases tr[data-alias="production"]').getByRole('button', { name: 'Move' }).click();
  await dialog.getByRole('button', { name: 'Cancel' }).click();
  await expect(page.locator('#aliases tr[data-alias="production"]')).toContainText('v1');
});

async function tryIt(page, expectedFile) {
  await page.getByLabel('city (string)').selectOption('Oslo');
  await page.getByLabel('income (float)').fill('61.5');
  await page.getByLabel('age (float)').fill('33');
  await page.getByRole('button', { name: 'Predict' }).click();
  await expect(page.locator('#prediction')).toBeVisible();
  const got = (await page.locator('#prediction').innerText()).trim();
  fs.writeFileSync(expectedFile, JSON.stringify({ dataframe_records: [{ age: 33, income: 61.5, city: 'Oslo' }] }));
  const cli = JSON.parse(mlship('predict', `models:/${ids.model}/1`, '--input', expectedFile));
  expect(got).toBe(String(cli.predictions[0]));
  await expect(page.locator('#probabilities')).toBeVisible();
  await expect(page.locator('#curl')).toContainText('curl -X POST');
  await expect(page.locator('#curl')).toContainText('"city":"Oslo"');
}

test('try it: the form knows the categories and answers as mlship predict', async ({ page }) => {
  await page.goto(`${URL_}/#/models/${ids.model}/versions/1`);
  const city = page.getByLabel('city (string)');
  await expect(city.locator('option')).toHaveText(['(missing)', 'Lisbon', 'Oslo', 'Paris']);
  await expect(page.getByLabel('age (float)')).not.toHaveValue('');
  await tryIt(page, path.join(process.env.MLSHIP_UI_OUT, 'row-server.json'));
  const download = page.waitForEvent('download');
  await page.getByRole('button', { name: 'Download a Postman collection' }).click();
  const collection = JSON.parse(fs.readFileSync(await (await download).path(), 'utf8'));
  expect(collection.item.map((i) => i.request.url.raw)).toContain(`{{baseUrl}}/v2/models/${ids.model}/infer`);
  await accessible(page, 'try it');
  await shot(page, 'try-it');
  // A version that does not exist is a message on the page.
  await page.goto(`${URL_}/#/models/${ids.model}/versions/99`);
  await expect(page.getByRole('alert')).toContainText('not found');
});

test('mlship serve: served models, try it, live traffic, a deployment\'s split', async ({ page }) => {
  await page.goto(`${SERVE_URL}/`);
  await expect(page.locator('#served')).toContainText(ids.model);
  await page.locator('#served tbody tr').filter({ has: page.getByRole('cell', { name: ids.model, exact: true }) })
    .getByRole('link', { name: 'Try it' }).click();
  await tryIt(page, path.join(process.env.MLSHIP_UI_OUT, 'row-serve.json'));
  await page.goto(`${SERVE_URL}/`);
  await expect(page.locator('#traffic table').first()).toContainText(ids.model);
  await expect(page.locator('#deployments')).toContainText('credit-canary');
  await expect(page.locator('#deployments')).toContainText('v1 (production) 80%, v2 (candidate) 20%');
  await accessible(page, 'serve');
  await shot(page, 'serve');
});

test('the dark theme passes the same checks', async ({ page }) => {
  await page.goto(`${URL_}/#/experiments/${ids.experiment_id}`);
  await page.getByRole('button', { name: 'Dark theme' }).click();
  await expect(page.locator('html')).toHaveAttribute('data-theme', 'dark');
  await expect(page.locator('#runs')).toBeVisible();
  await accessible(page, 'runs, dark');
  await page.goto(`${URL_}/#/runs/${ids.long}`);
  await expect(page.locator('figure[data-metric="loss"] canvas')).toBeVisible();
  await accessible(page, 'run, dark');
  await shot(page, 'run-dark');
  // Keyboard: the skip link is the first stop and leads to the content, on the same page.
  await page.reload();
  await expect(page.locator('figure[data-metric="loss"] canvas')).toBeVisible();
  const here = page.url();
  await page.keyboard.press('Tab');
  await expect(page.getByRole('link', { name: 'Skip to content' })).toBeFocused();
  await page.keyboard.press('Enter');
  await expect(page.locator('main')).toBeFocused();
  expect(page.url()).toBe(here);
  // Tab reaches the first control of the page.
  await page.keyboard.press('Tab');
  expect(await page.evaluate(() => document.activeElement.closest('main') !== null)).toBe(true);
});
