// mlship's web UI: a few pages over the servers' own REST API (MLflow's routes and mlship's
// /api/2.0/mlship/ ones), with no framework. Every piece of user text goes into the page through
// text nodes, never as HTML.
'use strict';
(() => {
  const MODE = document.body.dataset.mode;
  const PAGE = 50;
  const PREVIEW_LIMIT = 2 << 20;
  let timers = [];
  const charts = [];

  // ---- DOM --------------------------------------------------------------------------------
  function h(tag, attrs, ...kids) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v == null || v === false) continue;
      if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
      else if (k === 'class') el.className = v;
      else if (k === 'value') el.value = v;
      else if (k === 'checked') el.checked = !!v;
      else if (k === 'dataset') Object.assign(el.dataset, v);
      else el.setAttribute(k, v === true ? '' : String(v));
    }
    add(el, kids);
    return el;
  }
  function add(el, kids) {
    for (const k of kids) {
      if (k == null || k === false) continue;
      if (Array.isArray(k)) add(el, k);
      else if (k instanceof Node) el.appendChild(k);
      else el.appendChild(document.createTextNode(String(k)));
    }
  }
  // Replaces an element's children (lists and nulls as `h` takes them).
  function fill(el, ...kids) {
    el.replaceChildren();
    add(el, kids);
  }
  let uid = 0;
  const id = (p) => `${p}-${++uid}`;
  // A control with its label.
  function field(text, control) {
    control.id = control.id || id('f');
    return [h('label', { for: control.id }, text), control];
  }
  function table(head, rows, attrs) {
    return h('table', attrs || {},
      h('thead', {}, h('tr', {}, head.map((c) => (c instanceof Node ? c : h('th', { scope: 'col' }, c))))),
      h('tbody', {}, rows));
  }
  const errorBox = (msg) => h('p', { class: 'error', role: 'alert' }, msg);
  const when = (ms) => (ms ? new Date(Number(ms)).toLocaleString() : '');
  function duration(a, b) {
    if (!a || !b) return '';
    let s = Math.round((Number(b) - Number(a)) / 1000);
    if (s < 60) return `${s}s`;
    const m = Math.floor(s / 60); s %= 60;
    if (m < 60) return `${m}m ${s}s`;
    return `${Math.floor(m / 60)}h ${m % 60}m`;
  }
  const num = (v) => (typeof v === 'string' ? Number(v) : v);
  function fmt(v) {
    if (v == null || v === '') return '';
    const x = num(v);
    if (typeof x !== 'number' || !Number.isFinite(x)) return String(v);
    return Math.abs(x) >= 1e5 || (x !== 0 && Math.abs(x) < 1e-4) ? x.toExponential(4) : String(+x.toPrecision(6));
  }

  // ---- API --------------------------------------------------------------------------------
  const token = () => localStorage.getItem('mlship.token') || '';
  async function call(method, path, params) {
    let url = path;
    const init = { method, headers: { Accept: 'application/json', 'X-MLship-Client': 'web-ui' } };
    if (token()) init.headers.Authorization = `Bearer ${token()}`;
    if (method === 'GET' && params) {
      const q = new URLSearchParams();
      for (const [k, v] of Object.entries(params)) {
        if (v == null) continue;
        for (const x of Array.isArray(v) ? v : [v]) q.append(k, x);
      }
      url += `?${q}`;
    } else if (params !== undefined) {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(params);
    }
    const r = await fetch(url, init);
    const text = await r.text();
    let body = {};
    try { body = text ? JSON.parse(text) : {}; } catch { body = { message: text }; }
    if (!r.ok) {
      const msg = body.message || (body.error && (body.error.message || body.error)) || r.statusText;
      const e = new Error(typeof msg === 'string' ? msg : JSON.stringify(msg));
      e.status = r.status;
      throw e;
    }
    return body;
  }
  const mlflow = (m, p, params) => call(m, `/ajax-api/2.0/mlflow/${p}`, params);
  const mine = (m, p, params) => call(m, `/ajax-api/2.0/mlship/${p}`, params);
  async function fetchBlob(url) {
    const r = await fetch(url, { headers: token() ? { Authorization: `Bearer ${token()}` } : {} });
    if (!r.ok) throw new Error(`${r.status} ${r.statusText}`);
    return r.blob();
  }

  // ---- routing ----------------------------------------------------------------------------
  function parseHash() {
    const raw = location.hash.replace(/^#/, '') || '/';
    const i = raw.indexOf('?');
    const path = i < 0 ? raw : raw.slice(0, i);
    return {
      parts: path.split('/').filter(Boolean).map(decodeURIComponent),
      q: new URLSearchParams(i < 0 ? '' : raw.slice(i + 1)),
    };
  }
  function href(parts, q) {
    const s = q && [...q.keys()].length ? `?${q}` : '';
    return `#/${parts.map(encodeURIComponent).join('/')}${s}`;
  }
  const a = (parts, text, q) => h('a', { href: href(parts, q) }, text);

  const NAV = MODE === 'serving'
    ? [['Models', []], ['API docs', null, '/docs']]
    : [['Experiments', ['experiments']], ['Models', ['models']], ['API', null, '/openapi.json']];
  function nav(current) {
    const ul = h('ul', {});
    for (const [text, parts, url] of NAV) {
      const link = h('a', { href: url || href(parts) }, text);
      if (parts && (parts[0] || '') === (current || '')) link.setAttribute('aria-current', 'page');
      ul.appendChild(h('li', {}, link));
    }
    fill(document.getElementById('nav'), ul);
  }

  let first = true;
  // Shows the page the address names; `refresh` (a running run's timer) keeps the focus where it is.
  async function route(refresh) {
    timers.forEach(clearTimeout);
    timers = [];
    charts.splice(0).forEach((c) => c.destroy());
    const { parts, q } = parseHash();
    const main = document.getElementById('main');
    const pages = MODE === 'serving'
      ? { '': servedPage, try: tryServedPage }
      : { '': experimentsPage, experiments: parts[2] === 'runs' && parts[3] ? (m, p) => runPage(m, ['runs', p[3]]) : parts.length > 1 ? runsPage : experimentsPage, runs: runPage, compare: comparePage, models: parts.length > 1 ? (parts[2] === 'versions' ? tryVersionPage : modelPage) : modelsPage };
    const page = pages[parts[0] || ''];
    nav(MODE === 'serving' ? '' : (parts[0] === 'runs' || parts[0] === 'compare' ? 'experiments' : parts[0] || 'experiments'));
    try {
      if (!page) throw new Error(`no page at ${location.hash}`);
      await page(main, parts, q);
    } catch (e) {
      const hint = e.status === 401 || e.status === 403 ? ' Set an API token with the "API token" button.' : '';
      show(main, 'Something went wrong', errorBox(`${e.message}${hint}`), h('p', {}, a([], 'Back to the start')));
    }
    if (!first && refresh !== true) main.focus();
    first = false;
  }
  const again = (ms, f) => timers.push(setTimeout(f, ms));
  function show(main, title, ...kids) {
    document.title = `${title} · mlship`;
    fill(main, h('h1', {}, title));
    add(main, kids);
  }

  // ---- charts -----------------------------------------------------------------------------
  const css = (name) => getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  const PALETTE = ['#2f6fd0', '#d9480f', '#2b8a3e', '#9c36b5', '#c2255c', '#0c8599', '#e67700', '#5c7cfa'];
  // A uPlot chart in `box`: `data` is [xs, ys...], `names` the series' names.
  function chart(box, data, names, opts) {
    const width = Math.max(320, box.clientWidth - 16 || 480);
    const points = !!opts.points;
    const few = data[0].length < 60;
    const series = [{ label: opts.xLabel || 'x' }].concat(names.map((n, i) => ({
      label: n,
      stroke: PALETTE[i % PALETTE.length],
      width: 1.5,
      spanGaps: true,
      paths: points ? () => null : undefined,
      points: { show: points || few, size: points ? 7 : 5, fill: PALETTE[i % PALETTE.length] },
    })));
    const grid = { stroke: css('--line'), width: 1 };
    const axis = { stroke: css('--muted'), grid, ticks: grid };
    const u = new uPlot({
      width,
      height: opts.height || 260,
      scales: { x: { time: !!opts.time }, y: { distr: opts.log ? 3 : 1 } },
      axes: [axis, axis],
      series,
      legend: { show: true },
      cursor: { drag: { x: true, y: false } },
    }, data, box);
    charts.push(u);
    return u;
  }
  function smooth(ys, w) {
    if (!w) return ys;
    const out = new Array(ys.length);
    let last = null;
    for (let i = 0; i < ys.length; i++) {
      const y = ys[i];
      if (y == null || !Number.isFinite(y)) { out[i] = y; continue; }
      last = last == null ? y : last * w + y * (1 - w);
      out[i] = last;
    }
    return out;
  }

  // ---- experiments ------------------------------------------------------------------------
  async function experimentsPage(main, parts, q) {
    const search = q.get('q') || '';
    const filter = search ? `name LIKE '%${search.replace(/'/g, "''")}%'` : undefined;
    const [res, act] = await Promise.all([
      mlflow('POST', 'experiments/search', { max_results: 1000, filter, order_by: ['last_update_time DESC'] }),
      mine('GET', 'experiments/activity'),
    ]);
    const counts = new Map((act.experiments || []).map((e) => [e.experiment_id, e]));
    const box = h('input', { type: 'search', value: search, name: 'q', placeholder: 'part of a name' });
    const form = h('form', { class: 'bar', role: 'search', onsubmit: (ev) => {
      ev.preventDefault();
      location.hash = href(['experiments'], new URLSearchParams(box.value ? { q: box.value } : {}));
    } }, field('Search experiments', box), h('button', { type: 'submit' }, 'Search'));
    const rows = (res.experiments || []).map((e) => {
      const c = counts.get(e.experiment_id) || { runs: 0 };
      return h('tr', {},
        h('td', {}, a(['experiments', e.experiment_id], e.name)),
        h('td', { class: 'num' }, e.experiment_id),
        h('td', { class: 'num' }, c.runs),
        h('td', {}, when(c.last_run_start || e.last_update_time)));
    });
    show(main, 'Experiments', form,
      rows.length ? table(['Name', 'ID', 'Runs', 'Last activity'], rows) : h('p', {}, search ? 'No experiment matches.' : 'No experiments yet: log a run with the mlflow client.'));
  }

  // ---- runs of an experiment --------------------------------------------------------------
  const tokens = new Map();
  async function runsPage(main, parts, q) {
    const expId = parts[1];
    const filter = q.get('filter') || '';
    const order = q.get('order') || 'attributes.start_time DESC';
    const page = Number(q.get('page') || 0);
    const sel = new Set((q.get('sel') || '').split(',').filter(Boolean));
    const key = `${expId}|${filter}|${order}`;
    const pageTokens = tokens.get(key) || [undefined];
    tokens.set(key, pageTokens);
    const exp = (await mlflow('GET', 'experiments/get', { experiment_id: expId })).experiment;
    // From the address as it is now, not as this page was drawn: a second change made before the
    // page is drawn again (two quick ticks) must not undo the first.
    const setQ = (changes) => {
      const n = new URLSearchParams(parseHash().q);
      for (const [k, v] of Object.entries(changes)) { if (v == null || v === '') n.delete(k); else n.set(k, v); }
      location.hash = href(['experiments', expId], n);
    };
    const box = h('input', { class: 'filter', type: 'search', value: filter, name: 'filter', placeholder: "metrics.rmse < 1 and params.alpha = '0.5'", spellcheck: 'false' });
    const form = h('form', { class: 'bar', role: 'search', onsubmit: (ev) => { ev.preventDefault(); setQ({ filter: box.value.trim(), page: null }); } },
      field('Filter', box), h('button', { type: 'submit' }, 'Search'),
      filter ? h('button', { type: 'button', onclick: () => setQ({ filter: null, page: null }) }, 'Clear') : null);
    let res;
    const head = [form];
    try {
      res = await mlflow('POST', 'runs/search', { experiment_ids: [expId], filter: filter || undefined, order_by: [order], max_results: PAGE, page_token: pageTokens[page] });
    } catch (e) {
      if (e.status !== 400) throw e;
      show(main, exp.name, ...head, filterError(e.message, filter));
      return;
    }
    if (res.next_page_token) pageTokens[page + 1] = res.next_page_token;
    const runs = res.runs || [];
    const keys = { metrics: new Set(), params: new Set(), tags: new Set() };
    for (const r of runs) {
      for (const m of r.data.metrics || []) keys.metrics.add(m.key);
      for (const p of r.data.params || []) keys.params.add(p.key);
      for (const t of r.data.tags || []) if (!t.key.startsWith('mlflow.')) keys.tags.add(t.key);
    }
    let cols = q.has('cols') ? q.get('cols').split(',').filter(Boolean) : null;
    if (!cols) cols = [...[...keys.metrics].slice(0, 4).map((k) => `metrics.${k}`), ...[...keys.params].slice(0, 4).map((k) => `params.${k}`)];
    const chooser = h('details', {}, h('summary', {}, `Columns (${cols.length})`),
      h('div', { class: 'grid' }, ['metrics', 'params', 'tags'].flatMap((kind) => [...keys[kind]].sort().map((k) => {
        const name = `${kind}.${k}`;
        const box2 = h('input', { type: 'checkbox', checked: cols.includes(name), onchange: () => {
          const next = box2.checked ? cols.concat([name]) : cols.filter((c) => c !== name);
          setQ({ cols: next.join(',') || ',' });
        } });
        return h('div', {}, ...field(name, box2).reverse());
      }))));
    const [orderKey, orderDir] = order.split(/\s+(?=(?:ASC|DESC)$)/i);
    const sortHead = (label, keyName) => {
      const active = orderKey === keyName;
      const dir = active ? (orderDir || 'ASC').toUpperCase() : null;
      return h('th', { scope: 'col', 'aria-sort': active ? (dir === 'DESC' ? 'descending' : 'ascending') : null },
        h('button', { type: 'button', class: 'sort', onclick: () => setQ({ order: `${keyName} ${dir === 'DESC' ? 'ASC' : 'DESC'}`, page: null }) },
          label, active ? (dir === 'DESC' ? ' ▼' : ' ▲') : ''));
    };
    const quote = (c) => { const [kind, ...rest] = c.split('.'); const k = rest.join('.'); return /^[\w]+$/.test(k) ? c : `${kind}.\`${k}\``; };
    const value = (r, c) => {
      const [kind, ...rest] = c.split('.');
      const k = rest.join('.');
      const e = (r.data[kind] || []).find((x) => x.key === k);
      return e ? e.value : '';
    };
    // Children follow their parents on the page.
    const byId = new Map(runs.map((r) => [r.info.run_id, r]));
    const parentOf = (r) => { const t = (r.data.tags || []).find((x) => x.key === 'mlflow.parentRunId'); return t && t.value; };
    const ordered = [];
    const kids = new Map();
    for (const r of runs) { const p = parentOf(r); if (p && byId.has(p)) { if (!kids.has(p)) kids.set(p, []); kids.get(p).push(r); } }
    const place = (r, depth) => { ordered.push([r, depth]); for (const c of kids.get(r.info.run_id) || []) place(c, depth + 1); };
    for (const r of runs) { const p = parentOf(r); if (!(p && byId.has(p))) place(r, 0); }
    const toggle = (rid, on) => {
      const s2 = new Set((parseHash().q.get('sel') || '').split(',').filter(Boolean));
      if (on) s2.add(rid); else s2.delete(rid);
      setQ({ sel: [...s2].join(',') });
    };
    const rows = ordered.map(([r, depth]) => {
      const name = r.info.run_name || r.info.run_id;
      const check = h('input', { type: 'checkbox', checked: sel.has(r.info.run_id), 'aria-label': `Select ${name}`, onchange: (ev) => toggle(r.info.run_id, ev.target.checked) });
      const p = parentOf(r);
      return h('tr', { class: depth ? 'child' : null, dataset: { run: r.info.run_id } },
        h('td', {}, check),
        h('td', { class: 'name', title: name, style: depth ? `padding-left:${0.6 + depth * 1.4}em` : null }, depth ? '↳ ' : '', a(['runs', r.info.run_id], name),
          p && !byId.has(p) ? h('span', { class: 'muted' }, ' (child of ', a(['runs', p], p.slice(0, 8)), ')') : null),
        h('td', {}, r.info.status),
        h('td', {}, when(r.info.start_time)),
        h('td', {}, duration(r.info.start_time, r.info.end_time)),
        cols.map((c) => h('td', { class: c.startsWith('metrics.') ? 'num' : null }, c.startsWith('metrics.') ? fmt(value(r, c)) : value(r, c))));
    });
    const compare = h('a', { class: 'button primary', href: href(['compare'], new URLSearchParams({ runs: [...sel].join(','), exp: expId })), 'aria-disabled': sel.size < 2 ? 'true' : null,
      onclick: (ev) => { if (sel.size < 2) ev.preventDefault(); } }, `Compare ${sel.size} selected`);
    const pager = h('div', { class: 'bar' },
      h('button', { type: 'button', disabled: page === 0, onclick: () => setQ({ page: page - 1 || null }) }, 'Previous page'),
      h('span', {}, `Page ${page + 1}`),
      h('button', { type: 'button', disabled: !res.next_page_token, onclick: () => setQ({ page: page + 1 }) }, 'Next page'));
    show(main, exp.name, ...head,
      h('div', { class: 'bar' }, chooser, compare, sel.size ? h('button', { type: 'button', onclick: () => setQ({ sel: null }) }, 'Clear selection') : null),
      runs.length ? h('div', { class: 'table-wrap' }, table([h('th', { scope: 'col' }, h('span', { class: 'visually-hidden' }, 'Select')), sortHead('Run', 'attributes.run_name'), 'Status', sortHead('Started', 'attributes.start_time'), 'Duration',
        ...cols.map((c) => sortHead(c, quote(c)))], rows, { id: 'runs' }))
        : h('p', {}, filter ? 'No run matches the filter.' : 'No runs in this experiment yet.'),
      pager);
  }
  // The server's filter error, with the character it points at marked.
  function filterError(message, filter) {
    const m = /at character (\d+)/.exec(message);
    const box = errorBox(message);
    if (m) {
      const at = Math.min(Number(m[1]), filter.length);
      const end = Math.max(at + 1, (filter.slice(at).match(/^\S+/) || [''])[0].length + at);
      box.appendChild(h('span', { class: 'filter-echo' }, '\n', filter.slice(0, at), h('mark', {}, filter.slice(at, end) || ' '), filter.slice(end)));
    }
    return box;
  }

  // ---- one run ----------------------------------------------------------------------------
  async function history(runId, key) {
    let points = [];
    let page_token;
    do {
      const r = await mlflow('GET', 'metrics/get-history', { run_id: runId, metric_key: key, max_results: 100000, page_token });
      points = points.concat(r.metrics || []);
      page_token = r.next_page_token;
    } while (page_token);
    return points;
  }
  const chartState = { x: 'step', log: false, smooth: 0 };
  function chartControls(redraw) {
    const xSel = h('select', { onchange: () => { chartState.x = xSel.value; redraw(); } },
      [['step', 'Step'], ['wall', 'Wall time'], ['relative', 'Relative time (s)']].map(([v, t]) => h('option', { value: v, selected: chartState.x === v }, t)));
    const log = h('input', { type: 'checkbox', checked: chartState.log, onchange: () => { chartState.log = log.checked; redraw(); } });
    const sm = h('input', { type: 'range', min: 0, max: 0.99, step: 0.01, value: chartState.smooth, onchange: () => { chartState.smooth = Number(sm.value); redraw(); } });
    return h('div', { class: 'bar' }, field('X axis', xSel), ...field('Log scale', log).reverse(), field('Smoothing', sm));
  }
  // [xs, ys] of a history, sorted by x as chosen.
  function xy(points, t0) {
    const x = (p) => (chartState.x === 'step' ? Number(p.step || 0) : chartState.x === 'wall' ? Number(p.timestamp) / 1000 : (Number(p.timestamp) - t0) / 1000);
    const s = points.map((p) => [x(p), num(p.value)]);
    // Histories come ordered by step; sort only when the chosen axis is not.
    let sorted = true;
    for (let i = 1; i < s.length && sorted; i++) sorted = s[i - 1][0] <= s[i][0];
    if (!sorted) s.sort((u, v) => u[0] - v[0]);
    return [s.map((p) => p[0]), s.map((p) => (chartState.log && p[1] <= 0 ? null : p[1]))];
  }
  async function runPage(main, parts) {
    const runId = parts[1];
    const run = (await mlflow('GET', 'runs/get', { run_id: runId })).run;
    const info = run.info;
    const exp = await mlflow('GET', 'experiments/get', { experiment_id: info.experiment_id }).then((e) => e.experiment, () => null);
    const tags = Object.fromEntries((run.data.tags || []).map((t) => [t.key, t.value]));
    const metrics = run.data.metrics || [];
    const facts = h('dl', { class: 'facts' }, [
      ['Status', info.status], ['Run ID', info.run_id], ['Experiment', a(['experiments', info.experiment_id], exp ? exp.name : info.experiment_id)],
      ['Started', when(info.start_time)], ['Duration', duration(info.start_time, info.end_time || (info.status === 'RUNNING' ? Date.now() : null))],
      ['User', info.user_id || tags['mlflow.user']], ['Source', tags['mlflow.source.name']], ['Git commit', tags['mlflow.source.git.commit']],
      ['Parent run', tags['mlflow.parentRunId'] ? a(['runs', tags['mlflow.parentRunId']], tags['mlflow.parentRunId']) : null],
    ].filter(([, v]) => v).flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]));
    const histories = await Promise.all(metrics.map((m) => history(runId, m.key)));
    const chartsBox = h('div', { class: 'charts' });
    const t0 = Number(info.start_time);
    const redraw = () => {
      charts.splice(0).forEach((c) => c.destroy());
      fill(chartsBox);
      metrics.forEach((m, i) => {
        const box = h('figure', { class: 'chart', dataset: { metric: m.key }, 'aria-label': `Chart of ${m.key}: ${histories[i].length} points` }, h('figcaption', {}, m.key));
        chartsBox.appendChild(box);
        const [xs, ys] = xy(histories[i], t0);
        const data = chartState.smooth ? [xs, ys, smooth(ys, chartState.smooth)] : [xs, ys];
        const drawStart = performance.now();
        const u = chart(box, data, chartState.smooth ? [m.key, `${m.key} (smoothed)`] : [m.key], { time: chartState.x === 'wall', log: chartState.log, xLabel: chartState.x });
        // The time to draw, until the frame after the chart's has been painted, and the time since the
        // page's navigation then (read by bench/ui.sh).
        requestAnimationFrame(() => requestAnimationFrame(() => {
          box.dataset.drawMs = (performance.now() - drawStart).toFixed(1);
          box.dataset.shownAt = performance.now().toFixed(1);
        }));
        // What the chart holds, for a test to read: the points drawn and their sum.
        box.dataset.points = u.data[0].length;
        box.dataset.sum = u.data[1].reduce((t, y) => t + (y || 0), 0);
      });
    };
    const metricRows = metrics.map((m, i) => {
      // A loop, not Math.min(...values): a spread of 100,000 arguments can overflow the stack.
      let lo = Infinity, hi = -Infinity;
      for (const p of histories[i]) { const v = num(p.value); if (Number.isFinite(v)) { if (v < lo) lo = v; if (v > hi) hi = v; } }
      const any = lo <= hi;
      return h('tr', {}, h('td', {}, m.key), h('td', { class: 'num' }, fmt(m.value)), h('td', { class: 'num' }, any ? fmt(lo) : ''),
        h('td', { class: 'num' }, any ? fmt(hi) : ''), h('td', { class: 'num' }, histories[i].length));
    });
    const kv = (list) => table(['Key', 'Value'], list.map(([k, v]) => h('tr', {}, h('td', {}, k), h('td', {}, v))));
    const datasets = (run.inputs && run.inputs.dataset_inputs) || [];
    const models = (run.outputs && run.outputs.model_outputs) || [];
    show(main, info.run_name || info.run_id, facts,
      h('h2', {}, 'Parameters'), (run.data.params || []).length ? kv(run.data.params.map((p) => [p.key, p.value])) : h('p', { class: 'muted' }, 'None.'),
      h('h2', {}, 'Metrics'), metrics.length ? [table(['Metric', 'Latest', 'Min', 'Max', 'Points'], metricRows), chartControls(redraw), chartsBox] : h('p', { class: 'muted' }, 'None.'),
      h('h2', {}, 'Tags'), Object.keys(tags).length ? kv(Object.entries(tags)) : h('p', { class: 'muted' }, 'None.'),
      datasets.length ? [h('h2', {}, 'Datasets'), table(['Name', 'Digest', 'Source', 'Context'], datasets.map((d) => h('tr', {},
        h('td', {}, d.dataset.name), h('td', {}, d.dataset.digest), h('td', {}, d.dataset.source_type || ''), h('td', {}, (d.tags || []).map((t) => `${t.key}=${t.value}`).join(', ')))))] : null,
      models.length ? [h('h2', {}, 'Logged models'), h('ul', {}, models.map((m) => h('li', {}, `${m.model_id} (step ${m.step || 0})`)))] : null,
      h('h2', {}, 'Artifacts'), await artifactBrowser(info));
    redraw();
    if (info.status === 'RUNNING') again(5000, () => route(true));
  }

  async function artifactBrowser(info) {
    const base = (info.artifact_uri || '').replace(/^mlflow-artifacts:\/*/, '');
    const preview = h('div', { class: 'preview', 'aria-live': 'polite' }, h('p', { class: 'muted' }, 'Choose a file to preview it.'));
    async function listing(path) {
      const r = await mlflow('GET', 'artifacts/list', { run_id: info.run_id, path: path || undefined });
      const ul = h('ul', {});
      for (const f of r.files || []) {
        const name = f.path.split('/').pop();
        if (f.is_dir) {
          const d = h('details', {}, h('summary', {}, `${name}/`));
          d.addEventListener('toggle', async () => { if (d.open && d.children.length === 1) d.appendChild(await listing(f.path)); }, { once: false });
          ul.appendChild(h('li', {}, d));
        } else {
          ul.appendChild(h('li', {}, h('button', { type: 'button', onclick: () => show1(f) }, name), h('span', { class: 'muted' }, ` ${size(f.file_size)}`)));
        }
      }
      return ul;
    }
    async function show1(f) {
      const url = `/ajax-api/2.0/mlflow-artifacts/artifacts/${base}/${f.path.split('/').map(encodeURIComponent).join('/')}`;
      const title = h('h3', {}, f.path);
      if (Number(f.file_size) > PREVIEW_LIMIT) {
        fill(preview, title, h('p', {}, `This file is ${size(f.file_size)}, too large to preview here.`), download(url, f.path));
        return;
      }
      fill(preview, title, h('p', {}, 'Loading…'));
      try {
        const blob = await fetchBlob(url);
        const ext = (f.path.split('.').pop() || '').toLowerCase();
        let body;
        if (['png', 'jpg', 'jpeg', 'gif', 'webp', 'svg'].includes(ext)) {
          const typed = ext === 'svg' ? new Blob([blob], { type: 'image/svg+xml' }) : blob;
          body = h('img', { src: URL.createObjectURL(typed), alt: f.path, style: 'max-width:100%' });
        } else {
          const text = await blob.text();
          if (ext === 'csv') body = csvTable(text);
          else if (ext === 'json') { let t = text; try { t = JSON.stringify(JSON.parse(text), null, 2); } catch { /* shown as it is */ } body = h('pre', {}, t); }
          else if (/\0/.test(text.slice(0, 1024))) body = h('p', {}, 'A binary file: download it to open it.');
          else if (f.path.split('/').pop() === 'MLmodel') body = mlmodel(text);
          else body = h('pre', {}, text);
        }
        fill(preview, title, body, download(url, f.path));
      } catch (e) {
        fill(preview, title, errorBox(`Cannot read ${f.path}: ${e.message}`));
      }
    }
    const tree = await listing('');
    return h('div', { class: 'split' }, h('div', { class: 'tree' }, tree.children.length ? tree : h('p', { class: 'muted' }, 'None.')), preview);
  }
  function size(n) {
    n = Number(n || 0);
    return n < 1024 ? `${n} B` : n < 1 << 20 ? `${(n / 1024).toFixed(1)} KiB` : `${(n / (1 << 20)).toFixed(1)} MiB`;
  }
  function download(url, path) {
    return h('button', { type: 'button', onclick: async () => {
      const b = await fetchBlob(url);
      const link = h('a', { href: URL.createObjectURL(b), download: path.split('/').pop() });
      document.body.appendChild(link); link.click(); link.remove();
    } }, 'Download');
  }
  function mlmodel(text) {
    const sig = /^signature:\n((?:[ \t].*\n?)*)/m.exec(text);
    return [sig ? [h('h4', {}, 'Signature'), h('pre', {}, sig[1])] : null, h('h4', {}, 'MLmodel'), h('pre', {}, text)];
  }
  function parseCsv(text, limit) {
    const rows = [];
    let row = [], cell = '', quoted = false;
    for (let i = 0; i < text.length && rows.length < limit; i++) {
      const c = text[i];
      if (quoted) {
        if (c === '"' && text[i + 1] === '"') { cell += '"'; i++; } else if (c === '"') quoted = false; else cell += c;
      } else if (c === '"') quoted = true;
      else if (c === ',') { row.push(cell); cell = ''; }
      else if (c === '\n' || c === '\r') { if (c === '\r' && text[i + 1] === '\n') i++; row.push(cell); rows.push(row); row = []; cell = ''; }
      else cell += c;
    }
    if ((cell || row.length) && rows.length < limit) { row.push(cell); rows.push(row); }
    return rows;
  }
  function csvTable(text) {
    const rows = parseCsv(text, 201);
    if (!rows.length) return h('p', {}, 'An empty file.');
    return [table(rows[0], rows.slice(1, 201).map((r) => h('tr', {}, r.map((c) => h('td', {}, c))))),
      rows.length > 200 ? h('p', { class: 'muted' }, 'The first 200 rows.') : null];
  }

  // ---- compare ----------------------------------------------------------------------------
  async function comparePage(main, parts, q) {
    const ids = (q.get('runs') || '').split(',').filter(Boolean);
    if (ids.length < 2) throw new Error('choose at least two runs to compare');
    const runs = (await Promise.all(ids.map((r) => mlflow('GET', 'runs/get', { run_id: r })))).map((x) => x.run);
    const names = runs.map((r) => r.info.run_name || r.info.run_id.slice(0, 8));
    const grid = (kind) => {
      const keys = [...new Set(runs.flatMap((r) => (r.data[kind] || []).map((x) => x.key)))].sort();
      return keys.map((k) => {
        const vals = runs.map((r) => { const e = (r.data[kind] || []).find((x) => x.key === k); return e ? String(e.value) : ''; });
        const differs = new Set(vals).size > 1;
        return h('tr', { class: differs ? 'diff' : null }, h('th', { scope: 'row' }, k, differs ? h('span', { class: 'visually-hidden' }, ' (differs)') : null),
          vals.map((v) => h('td', { class: kind === 'metrics' ? 'num' : null }, kind === 'metrics' ? fmt(v) : v)));
      });
    };
    const head = ['', ...runs.map((r, i) => a(['runs', r.info.run_id], names[i]))].map((x) => h('th', { scope: 'col' }, x));
    const metricKeys = [...new Set(runs.flatMap((r) => (r.data.metrics || []).map((m) => m.key)))].sort();
    const overlayBox = h('figure', { class: 'chart' });
    const metricSel = h('select', {}, metricKeys.map((k) => h('option', { value: k }, k)));
    const drawOverlay = async () => {
      charts.splice(0).forEach((c) => c.destroy());
      fill(overlayBox, h('figcaption', {}, `${metricSel.value} by step`));
      const hs = await Promise.all(runs.map((r) => history(r.info.run_id, metricSel.value)));
      const steps = [...new Set(hs.flat().map((p) => Number(p.step || 0)))].sort((u, v) => u - v);
      const ys = hs.map((pts) => { const m = new Map(pts.map((p) => [Number(p.step || 0), num(p.value)])); return steps.map((s) => (m.has(s) ? m.get(s) : null)); });
      overlayBox.dataset.points = hs.map((x) => x.length).join(',');
      chart(overlayBox, [steps, ...ys], names, { xLabel: 'step' });
      drawScatter();
    };
    metricSel.addEventListener('change', drawOverlay);
    const axes = [...new Set(runs.flatMap((r) => [...(r.data.params || []).map((p) => `params.${p.key}`), ...(r.data.metrics || []).map((m) => `metrics.${m.key}`)]))].sort();
    const pick = (r, c) => { const [kind, ...rest] = c.split('.'); const e = (r.data[kind] || []).find((x) => x.key === rest.join('.')); return e ? num(e.value) : NaN; };
    const xSel = h('select', {}, axes.map((k) => h('option', { value: k }, k)));
    const ySel = h('select', {}, axes.map((k, i) => h('option', { value: k, selected: i === Math.min(1, axes.length - 1) }, k)));
    const scatterBox = h('figure', { class: 'chart' });
    const drawScatter = () => {
      const pts = runs.map((r, i) => [pick(r, xSel.value), pick(r, ySel.value), names[i]]).filter((p) => Number.isFinite(p[0]) && Number.isFinite(p[1])).sort((u, v) => u[0] - v[0]);
      fill(scatterBox, h('figcaption', {}, `${ySel.value} against ${xSel.value}`));
      if (!pts.length) scatterBox.appendChild(h('p', { class: 'muted' }, 'No run has numbers for both.'));
      if (charts.length > 1) charts.splice(1).forEach((c) => c.destroy());
      if (pts.length) chart(scatterBox, [pts.map((p) => p[0]), pts.map((p) => p[1])], [ySel.value], { points: true, xLabel: xSel.value, height: 240 });
      scatterBox.appendChild(h('details', {}, h('summary', {}, 'Points as a table'), table([xSel.value, ySel.value, 'Run'], pts.map((p) => h('tr', {}, h('td', {}, fmt(p[0])), h('td', {}, fmt(p[1])), h('td', {}, p[2]))))));
    };
    xSel.addEventListener('change', drawScatter);
    ySel.addEventListener('change', drawScatter);
    const back = q.get('exp') ? h('p', {}, a(['experiments', q.get('exp')], 'Back to the runs')) : null;
    show(main, `Compare ${runs.length} runs`, back,
      h('h2', {}, 'Parameters'), h('table', { id: 'compare-params' }, h('thead', {}, h('tr', {}, head)), h('tbody', {}, grid('params'))),
      h('h2', {}, 'Metrics'), h('table', { id: 'compare-metrics' }, h('thead', {}, h('tr', {}, head.map((x) => x.cloneNode(true)))), h('tbody', {}, grid('metrics'))),
      metricKeys.length ? [h('h2', {}, 'Metric by step'), h('div', { class: 'bar' }, field('Metric', metricSel)), overlayBox] : null,
      axes.length ? [h('h2', {}, 'Scatter'), h('div', { class: 'bar' }, field('X', xSel), field('Y', ySel)), scatterBox] : null);
    if (metricKeys.length) await drawOverlay(); else if (axes.length) drawScatter();
  }

  // ---- the registry -----------------------------------------------------------------------
  async function modelsPage(main, parts, q) {
    const search = q.get('q') || '';
    const res = await mlflow('GET', 'registered-models/search', { max_results: 1000, filter: search ? `name LIKE '%${search.replace(/'/g, "''")}%'` : undefined });
    const box = h('input', { type: 'search', value: search, placeholder: 'part of a name' });
    const form = h('form', { class: 'bar', role: 'search', onsubmit: (ev) => { ev.preventDefault(); location.hash = href(['models'], new URLSearchParams(box.value ? { q: box.value } : {})); } },
      field('Search models', box), h('button', { type: 'submit' }, 'Search'));
    const rows = (res.registered_models || []).map((m) => {
      const latest = Math.max(0, ...(m.latest_versions || []).map((v) => Number(v.version)));
      return h('tr', {}, h('td', {}, a(['models', m.name], m.name)),
        h('td', {}, (m.aliases || []).map((x) => h('span', { class: 'badge' }, `@${x.alias} → v${x.version}`))),
        h('td', { class: 'num' }, latest ? `v${latest}` : ''), h('td', {}, m.description || ''), h('td', {}, when(m.last_updated_timestamp)));
    });
    show(main, 'Models', form, rows.length ? table(['Name', 'Aliases', 'Latest', 'Description', 'Updated'], rows) : h('p', {}, search ? 'No model matches.' : 'No registered models yet.'));
  }

  // A confirmation dialog with a required reason; resolves to the reason, or null if cancelled.
  function confirmWithReason(title, text) {
    const dlg = document.getElementById('dialog');
    return new Promise((resolve) => {
      const reason = h('input', { type: 'text', required: true, size: 40, name: 'reason' });
      const done = (v) => { dlg.close(); resolve(v); };
      const form = h('form', { method: 'dialog', onsubmit: (ev) => { ev.preventDefault(); if (reason.value.trim()) done(reason.value.trim()); else reason.focus(); } },
        h('h2', { id: 'dialog-title' }, title), h('p', {}, text), h('p', {}, ...field('Reason (kept in the alias history)', reason)),
        h('div', { class: 'bar' }, h('button', { type: 'submit', class: 'primary' }, 'Confirm'), h('button', { type: 'button', onclick: () => done(null) }, 'Cancel')));
      fill(dlg, form);
      dlg.addEventListener('cancel', () => resolve(null), { once: true });
      dlg.showModal();
      reason.focus();
    });
  }

  async function modelPage(main, parts) {
    const name = parts[1];
    const [m, vs, hist] = await Promise.all([
      mlflow('GET', 'registered-models/get', { name }),
      mlflow('GET', 'model-versions/search', { filter: `name='${name.replace(/'/g, "''")}'`, max_results: 1000, order_by: ['version_number DESC'] }),
      mine('GET', 'registered-models/alias-history', { name }),
    ]);
    const model = m.registered_model;
    const versions = (vs.model_versions || []).sort((u, v) => Number(v.version) - Number(u.version));
    const details = await Promise.all(versions.slice(0, 25).map((v) => mine('GET', 'model-versions/get', { name, version: v.version }).catch(() => null)));
    const aliases = model.aliases || [];
    const status = h('div', { 'aria-live': 'polite' });
    const act = async (f) => {
      try { await f(); await route(); } catch (e) { fill(status, errorBox(e.message)); }
    };
    const moveTo = (alias, version) => act(async () => {
      const why = await confirmWithReason(`Move @${alias} to version ${version}?`, `Every server following models:/${name}@${alias} will serve version ${version}.`);
      if (why == null) return;
      await mlflow('POST', 'registered-models/alias', { name, alias, version: String(version), reason: why });
    });
    const rollBack = (alias) => act(async () => {
      const why = await confirmWithReason(`Roll back @${alias}?`, `@${alias} goes back to the version it held before its last move.`);
      if (why == null) return;
      await mine('POST', 'registered-models/rollback', { name, alias, reason: why });
    });
    const sigText = (d) => {
      if (!d || !d.signature || !d.signature.inputs) return '';
      return d.signature.inputs.map((f) => `${f.name}: ${f.type}`).join(', ');
    };
    const rows = versions.map((v, i) => {
      const d = details[i];
      const servable = (v.tags || []).find((t) => t.key === 'mlship.servable');
      const ok = !servable || servable.value === 'true';
      return h('tr', { dataset: { version: v.version } },
        h('td', {}, `v${v.version}`),
        h('td', {}, aliases.filter((x) => x.version === v.version).map((x) => h('span', { class: 'badge' }, `@${x.alias}`))),
        h('td', {}, when(v.creation_timestamp)), h('td', {}, v.user_id || ''),
        h('td', {}, v.run_id ? a(['runs', v.run_id], v.run_id.slice(0, 8)) : (d && d.git_commit ? `git ${d.git_commit.slice(0, 8)}` : '')),
        h('td', {}, d ? `${d.format}${d.estimator ? ` · ${d.estimator}` : ''}` : ''),
        h('td', {}, sigText(d)),
        h('td', {}, ok ? h('span', { class: 'badge' }, 'servable') : [h('span', { class: 'badge off' }, 'not servable'), ' ', v.status_message || '']),
        h('td', { class: 'nowrap' }, ok ? a(['models', name, 'versions', v.version], 'Try it') : ''));
    });
    const aliasRows = aliases.map((x) => {
      const sel = h('select', {}, versions.map((v) => h('option', { value: v.version, selected: v.version === x.version }, `v${v.version}`)));
      return h('tr', { dataset: { alias: x.alias } }, h('td', {}, h('span', { class: 'badge' }, `@${x.alias}`)), h('td', {}, `v${x.version}`),
        h('td', {}, h('div', { class: 'bar' }, field(`Version for @${x.alias}`, sel), h('button', { type: 'button', onclick: () => moveTo(x.alias, sel.value) }, 'Move'),
          h('button', { type: 'button', onclick: () => rollBack(x.alias) }, 'Roll back'))));
    });
    const newAlias = h('input', { type: 'text', size: 14, pattern: '[A-Za-z0-9_\\-]+' });
    const newVer = h('select', {}, versions.map((v) => h('option', { value: v.version }, `v${v.version}`)));
    const addForm = h('form', { class: 'bar', onsubmit: (ev) => { ev.preventDefault(); if (newAlias.value) moveTo(newAlias.value, newVer.value); } },
      field('New alias', newAlias), field('on version', newVer), h('button', { type: 'submit' }, 'Set alias'));
    const events = (hist.events || []).slice().reverse();
    const timeline = h('ol', { class: 'timeline', id: 'alias-history' }, events.map((e) => h('li', {},
      h('strong', {}, `@${e.alias}`), ' ', e.from_version ? `v${e.from_version}` : '(new)', ' → ', e.to_version ? `v${e.to_version}` : '(removed)',
      h('div', { class: 'muted' }, `${when(e.timestamp)} · by ${e.by}`), e.reason ? h('div', {}, e.reason) : null)));
    show(main, model.name, model.description ? h('p', {}, model.description) : null, status,
      h('h2', {}, 'Aliases'), aliasRows.length ? table(['Alias', 'Version', 'Move or roll back'], aliasRows, { id: 'aliases' }) : h('p', { class: 'muted' }, 'No aliases yet.'),
      versions.length ? addForm : null,
      h('h2', {}, 'Versions'), table(['Version', 'Aliases', 'Created', 'By', 'Source', 'Format', 'Signature', 'Servable', ''], rows, { id: 'versions' }),
      h('h2', {}, 'Alias history'), events.length ? timeline : h('p', { class: 'muted' }, 'No alias has moved yet.'));
  }

  // ---- try it -----------------------------------------------------------------------------
  function inputFor(f) {
    const ex = f.example;
    if (f.categories && f.categories.length) {
      return h('select', { name: f.name, dataset: { type: f.type } }, f.nullable ? h('option', { value: '' }, '(missing)') : null,
        f.categories.map((c) => h('option', { value: c, selected: ex != null && String(ex) === c }, c)));
    }
    if (f.type === 'boolean') {
      return h('select', { name: f.name, dataset: { type: f.type } }, ['true', 'false'].map((v) => h('option', { value: v, selected: String(ex) === v }, v)));
    }
    const numeric = f.type === 'float' || f.type === 'integer';
    return h('input', { name: f.name, dataset: { type: f.type }, type: numeric ? 'number' : 'text', step: f.type === 'integer' ? '1' : 'any', value: ex == null ? '' : String(ex), required: !f.nullable });
  }
  function readRow(form, fields) {
    const row = {};
    for (const f of fields) {
      const el = form.elements.namedItem(f.name);
      const v = el.value;
      if (v === '') row[f.name] = null;
      else if (f.type === 'float') row[f.name] = Number(v);
      else if (f.type === 'integer') row[f.name] = f.categories ? Number(v) : parseInt(v, 10);
      else if (f.type === 'boolean') row[f.name] = v === 'true';
      else row[f.name] = v;
    }
    return row;
  }
  function curlOf(url, body) {
    const q = JSON.stringify(body).replace(/'/g, "'\\''");
    const auth = token() ? " \\\n  -H 'Authorization: Bearer $MLSHIP_TOKEN'" : '';
    return `curl -X POST '${url}' \\\n  -H 'Content-Type: application/json'${auth} \\\n  -d '${q}'`;
  }
  function postman(model, row) {
    const base = '{{baseUrl}}';
    const req = (nm, path, body) => ({ name: nm, request: { method: 'POST', header: [{ key: 'Content-Type', value: 'application/json' }], url: { raw: `${base}${path}`, host: [base], path: path.split('/').filter(Boolean) }, body: { mode: 'raw', raw: JSON.stringify(body, null, 2) } } });
    const names = Object.keys(row);
    return {
      info: { name: `mlship: ${model}`, schema: 'https://schema.getpostman.com/json/collection/v2.1.0/collection.json' },
      variable: [{ key: 'baseUrl', value: 'http://localhost:8080' }],
      item: [
        req('MLflow invocations', `/models/${model}/invocations`, { dataframe_records: [row] }),
        req('KServe V1 predict', `/v1/models/${model}:predict`, { instances: [row] }),
        req('Open Inference Protocol infer', `/v2/models/${model}/infer`, { inputs: names.map((n) => ({ name: n, shape: [1], datatype: typeof row[n] === 'string' ? 'BYTES' : typeof row[n] === 'boolean' ? 'BOOL' : 'FP64', data: [row[n]] })) }),
      ],
    };
  }
  function tryForm(main, title, form0, score, curlUrl, model, lead) {
    const fields = form0.fields || [];
    const out = h('div', { id: 'result', 'aria-live': 'polite' });
    const form = h('form', { id: 'try', onsubmit: async (ev) => {
      ev.preventDefault();
      const row = readRow(form, fields);
      const body = { dataframe_records: [row] };
      fill(out, h('p', {}, 'Scoring…'));
      try {
        const r = await score(body);
        const pred = (r.predictions || [])[0];
        const probs = r.probabilities && r.probabilities[0];
        fill(out, h('h2', {}, 'Prediction'), h('p', { id: 'prediction', class: 'stat' }, h('b', {}, typeof pred === 'object' ? JSON.stringify(pred) : String(pred))),
          probs && r.classes ? [h('h3', {}, 'Probabilities'), h('div', { class: 'probs', id: 'probabilities' }, r.classes.flatMap((c, i) => [
            h('span', {}, String(c)), h('div', { class: 'track', role: 'img', 'aria-label': `${c}: ${(probs[i] * 100).toFixed(1)}%` }, h('div', { class: 'fill', style: `width:${Math.max(0, Math.min(1, probs[i])) * 100}%` })),
            h('span', { class: 'num' }, fmt(probs[i]))]))] : null,
          h('h3', {}, 'The same request with curl'), h('pre', { id: 'curl' }, curlOf(curlUrl, body)));
      } catch (e) {
        fill(out, errorBox(e.message));
      }
      const dl = h('button', { type: 'button', onclick: () => {
        const blob = new Blob([JSON.stringify(postman(model, row), null, 2)], { type: 'application/json' });
        const link = h('a', { href: URL.createObjectURL(blob), download: `${model}.postman_collection.json` });
        document.body.appendChild(link); link.click(); link.remove();
      } }, 'Download a Postman collection');
      out.appendChild(dl);
    } }, h('div', { class: 'form-grid' }, fields.map((f) => field(`${f.name} (${f.type})`, inputFor(f)))),
    h('p', {}, h('button', { type: 'submit', class: 'primary' }, 'Predict')));
    show(main, title, lead, h('p', { class: 'muted' }, `${form0.task}${form0.estimator ? ` · ${form0.estimator}` : ''}${form0.format ? ` · ${form0.format}` : ''}`), form, out);
  }
  async function tryVersionPage(main, parts) {
    const [name, , version] = parts.slice(1);
    const form0 = await mine('GET', 'model-versions/form', { name, version });
    tryForm(main, `Try ${name} v${version}`, form0,
      (body) => mine('POST', 'model-versions/predict', { name, version, ...body }),
      `${location.origin}/api/2.0/mlship/model-versions/predict`, name,
      h('p', {}, a(['models', name], `Back to ${name}`), '. Scored here by mlship; served by ', h('code', {}, `mlship serve ${name}=models:/${name}/${version}`), ' it answers the same.'));
  }

  // ---- mlship serve -----------------------------------------------------------------------
  function parseProm(text) {
    const out = [];
    for (const line of text.split('\n')) {
      if (!line || line[0] === '#') continue;
      const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
      if (!m) continue;
      const labels = {};
      for (const l of (m[2] || '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2];
      out.push({ name: m[1], labels, value: Number(m[3]) });
    }
    return out;
  }
  function quantile(buckets, q) {
    const total = buckets.length ? buckets[buckets.length - 1][1] : 0;
    if (!total) return null;
    const want = total * q;
    let prev = [0, 0];
    for (const [le, c] of buckets) {
      if (c >= want) {
        if (!Number.isFinite(le)) return prev[0];
        return prev[0] + (le - prev[0]) * ((want - prev[1]) / Math.max(1e-9, c - prev[1]));
      }
      prev = [le, c];
    }
    return null;
  }
  async function servedPage(main) {
    const list = await call('GET', '/v1/models');
    const names = list.models || [];
    const traffic = h('div', { id: 'traffic', 'aria-live': 'polite' });
    const rows = names.map((n) => h('tr', {}, h('td', {}, n),
      h('td', {}, h('code', {}, `POST /models/${n}/invocations`), h('br'), h('code', {}, `POST /v1/models/${n}:predict`), h('br'), h('code', {}, `POST /v2/models/${n}/infer`)),
      h('td', {}, a(['try', n], 'Try it'))));
    show(main, 'Served models', h('p', {}, 'The same models answer MLflow, KServe V1 and Open Inference Protocol requests on this port; ', h('a', { href: '/docs' }, 'the API docs'), ' describe each.'),
      rows.length ? table(['Model', 'Endpoints', ''], rows, { id: 'served' }) : h('p', {}, 'No model is served.'), h('h2', {}, 'Live traffic'), traffic);
    let last = null;
    const tick = async () => {
      try {
        const r = await fetch('/metrics', { headers: token() ? { Authorization: `Bearer ${token()}` } : {} });
        const samples = parseProm(await r.text());
        const now = Date.now();
        const per = new Map();
        const keyOf = (l) => `${l.model || ''} v${l.version || ''}`;
        for (const s of samples) {
          if (!s.labels.model) continue;
          const k = keyOf(s.labels);
          if (!per.has(k)) per.set(k, { rows: 0, errors: 0, buckets: [] });
          const p = per.get(k);
          if (s.name === 'mlship_predictions_total') p.rows = s.value;
          else if (s.name === 'mlship_prediction_errors_total') p.errors = s.value;
          else if (s.name === 'mlship_scoring_duration_seconds_bucket') p.buckets.push([s.labels.le === '+Inf' ? Infinity : Number(s.labels.le), s.value]);
          else if (s.name === 'mlship_scoring_duration_seconds_count') p.calls = s.value;
        }
        const trs = [...per.entries()].map(([k, p]) => {
          const prev = last && last.per.get(k);
          const dt = last ? (now - last.at) / 1000 : 0;
          const rate = prev && dt ? ((p.calls || 0) - (prev.calls || 0)) / dt : 0;
          p.buckets.sort((u, v) => u[0] - v[0]);
          const ms = (x) => (x == null ? '' : `${(x * 1000).toFixed(2)} ms`);
          return h('tr', {}, h('td', {}, k), h('td', { class: 'num' }, rate.toFixed(1)), h('td', { class: 'num' }, ms(quantile(p.buckets, 0.5))),
            h('td', { class: 'num' }, ms(quantile(p.buckets, 0.99))), h('td', { class: 'num' }, p.rows), h('td', { class: 'num' }, p.errors));
        });
        last = { at: now, per };
        // Deployments: each version's share of traffic now, and whether the candidate was rolled back.
        const deps = new Map();
        for (const x of samples) {
          const d = x.labels.deployment;
          if (!d) continue;
          if (!deps.has(d)) deps.set(d, { routes: [], rolledBack: false });
          if (x.name === 'mlship_deployment_weight') deps.get(d).routes.push(`v${x.labels.version} (${x.labels.role}) ${Math.round(x.value * 100)}%`);
          else if (x.name === 'mlship_deployment_rolled_back') deps.get(d).rolledBack = x.value === 1;
        }
        const depRows = [...deps.entries()].map(([d, x]) => h('tr', {}, h('td', {}, d), h('td', {}, x.routes.join(', ')),
          h('td', {}, x.rolledBack ? h('span', { class: 'badge off' }, 'rolled back') : 'no')));
        fill(traffic, trs.length ? table(['Model and version', 'Calls/s', 'p50', 'p99', 'Rows', 'Errors'], trs) : h('p', { class: 'muted' }, 'No requests yet.'),
          depRows.length ? [h('h3', {}, 'Deployments'), table(['Deployment', 'Traffic now', 'Automatic rollback'], depRows, { id: 'deployments' })] : null);
      } catch (e) {
        fill(traffic, errorBox(`Cannot read /metrics: ${e.message}`));
      }
      again(2000, tick);
    };
    await tick();
  }
  async function tryServedPage(main, parts) {
    const name = parts[1];
    const form0 = await call('GET', `/models/${encodeURIComponent(name)}/form`);
    const url = `/models/${encodeURIComponent(name)}/invocations?probabilities=true`;
    tryForm(main, `Try ${name}`, form0, (body) => call('POST', url, body), `${location.origin}${url}`, name, h('p', {}, a([], 'Back to the served models')));
  }

  // ---- theme and token --------------------------------------------------------------------
  function applyTheme(t) {
    document.documentElement.dataset.theme = t;
    const b = document.getElementById('theme');
    b.setAttribute('aria-pressed', String(t === 'dark'));
  }
  const saved = localStorage.getItem('mlship.theme');
  applyTheme(saved || (matchMedia('(prefers-color-scheme: dark)').matches ? 'dark' : 'light'));
  document.getElementById('theme').addEventListener('click', () => {
    const t = document.documentElement.dataset.theme === 'dark' ? 'light' : 'dark';
    localStorage.setItem('mlship.theme', t);
    applyTheme(t);
    route();
  });
  document.getElementById('token-button').addEventListener('click', () => {
    const dlg = document.getElementById('dialog');
    const input = h('input', { type: 'password', size: 40, value: token(), autocomplete: 'off' });
    const close = () => dlg.close();
    fill(dlg, h('form', { method: 'dialog', onsubmit: (ev) => { ev.preventDefault(); if (input.value) localStorage.setItem('mlship.token', input.value); else localStorage.removeItem('mlship.token'); close(); route(); } },
      h('h2', { id: 'dialog-title' }, 'API token'), h('p', {}, 'With authentication on, the pages call the API with this token (kept in this browser only). Create one with mlship tokens create.'),
      h('p', {}, ...field('Token', input)), h('div', { class: 'bar' }, h('button', { type: 'submit', class: 'primary' }, 'Save'), h('button', { type: 'button', onclick: close }, 'Cancel'))));
    dlg.showModal();
  });
  // The skip link moves focus; it must not change the hash, which is the page's address.
  document.querySelector('.skip').addEventListener('click', (ev) => {
    ev.preventDefault();
    document.getElementById('main').focus();
  });
  window.addEventListener('hashchange', () => route());
  route();
})();
