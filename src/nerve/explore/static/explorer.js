// nerve explorer: vanilla JavaScript, no network (data/*.js are loaded by script tags, so file:// works).
"use strict";
(function () {
  const M = window.NERVE_MANIFEST;
  const LIVE = window.NERVE_LIVE === true;
  const cache = {};
  const st = { run: null, unit: 0, tag: 0, sort: "index", method: "", view: "unit", sentence: 0 };
  let D = null;  // the current run's payload
  const $ = (id) => document.getElementById(id);
  const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
  const finite = (v) => typeof v === "number" && Number.isFinite(v);
  const fmt = (v, d = 3) => (v === null || v === undefined || Number.isNaN(v) ? "–" : Number(v).toFixed(d));

  function fail(msg) {
    const e = $("error");
    e.textContent = msg;
    e.hidden = false;
  }
  window.addEventListener("error", (ev) => fail("explorer error: " + ev.message));

  // ------------------------------------------------------------------ colours
  function diverging(v) {  // v in [-1, 1]: blue .. white .. red
    const x = Math.max(-1, Math.min(1, v || 0));
    const k = Math.round(255 * (1 - Math.abs(x)));
    return x >= 0 ? `rgb(255,${k},${k})` : `rgb(${k},${k},255)`;
  }

  // ------------------------------------------------------------------ loading
  function loadRun(id, then) {
    if (cache[id]) { show(id, then); return; }
    const run = M.runs.find((r) => r.id === id);
    $("status").textContent = "loading " + run.name + "…";
    const s = document.createElement("script");
    s.src = run.file;
    s.onerror = () => fail("could not load " + run.file + " (is the data/ folder beside index.html?)");
    document.body.appendChild(s);
    window.nerveRunLoaded = (rid, payload) => { prepare(payload); cache[rid] = payload; show(rid, then); };
  }

  function prepare(p) {
    const raw = atob(p.act_q);
    const q = new Int8Array(raw.length);
    for (let i = 0; i < raw.length; i++) q[i] = raw.charCodeAt(i) << 24 >> 24;
    p.q = q;
    delete p.act_q;
    const n = p.n_tokens;
    p.sentOf = new Int32Array(n);
    const starts = p.sentence_starts;
    for (let s = 0; s < starts.length; s++) {
      const end = s + 1 < starts.length ? starts[s + 1] : n;
      for (let t = starts[s]; t < end; t++) p.sentOf[t] = s;
    }
    let lo = Infinity, hi = -Infinity;
    for (const row of p.sensitivity) for (const v of row) if (finite(v)) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
    p.srange = lo <= hi ? [lo, hi] : null;  // the finite sensitivities' min and max (null: none)
    p.smax = Math.max(Math.abs(lo), Math.abs(hi)) || 1;  // the heatmap's colours run from -smax (blue) to +smax (red)
    if (!Number.isFinite(p.smax)) p.smax = 1;
  }

  function act(u, t) { return D.q[t * D.units.length + u] * D.act_scale[u] / 127; }
  function sentEnd(s) { return s + 1 < D.sentence_starts.length ? D.sentence_starts[s + 1] : D.n_tokens; }

  function show(id, then) {
    D = cache[id];
    st.run = id;
    $("run-select").value = id;
    const run = M.runs.find((r) => r.id === id);
    $("run-info").textContent = `${run.variant ? run.variant + " / " : ""}${D.name}: ${D.units.length} units, ` +
      `${D.tags.length} tags, ${D.n_tokens} tokens of ${D.split || "the split"}, ${D.decoder}`;
    st.unit = Math.min(st.unit, D.units.length - 1);
    st.tag = Math.min(st.tag, D.tags.length - 1);
    fillSelects();
    renderHeatmap(); renderUnit(); renderTag(); renderSentence(); renderSeeds();
    if (then) then();
    $("status").textContent = "ready";
    document.body.dataset.ready = "1";
    document.body.dataset.run = id;
  }

  function fillSelects() {
    const sort = $("sort-select");
    sort.innerHTML = `<option value="index">unit index</option><option value="cluster">clustered profiles</option>` +
      D.tags.map((t, j) => `<option value="tag:${j}">rank for ${esc(t)}</option>`).join("");
    sort.value = st.sort.startsWith("tag:") && +st.sort.slice(4) >= D.tags.length ? "index" : st.sort;
    st.sort = sort.value;
    const ms = $("method-select");
    const names = D.methods ? D.methods.names : [];
    ms.innerHTML = `<option value="">sensitivity (analysis)</option>` +
      names.map((m, i) => `<option value="${i}">${esc(m)} (${esc(D.methods.rank_split)})</option>`).join("");
    if (st.method !== "" && +st.method >= names.length) st.method = "";
    ms.value = st.method;
    $("method-pick").hidden = names.length === 0;
    $("sentence-unit").innerHTML = D.units.map((u, i) => `<option value="${i}">${esc(u)}</option>`).join("");
    $("sentence-unit").value = st.unit;
  }

  function ranking(j) {
    return st.method === "" ? D.rankings[j] : D.methods.rankings[+st.method][j];
  }

  function unitOrder() {
    if (st.sort === "cluster") return D.cluster;
    if (st.sort.startsWith("tag:")) return ranking(+st.sort.slice(4));
    return D.units.map((_, i) => i);
  }

  // ------------------------------------------------------------------ heatmap
  function renderHeatmap() {
    const sortedTag = st.sort.startsWith("tag:") ? +st.sort.slice(4) : -1;
    const head = `<tr><th></th>${D.tags.map((t, j) =>
      `<th data-tag="${j}" class="${j === sortedTag ? "sorted" : ""}" title="rank units for ${esc(t)}">${esc(t)}</th>`).join("")}</tr>`;
    const rows = unitOrder().map((u) => {
      const cells = D.sensitivity[u].map((v, j) =>
        `<td style="background:${finite(v) ? diverging(v / D.smax) : "#ccc"}" title="${esc(D.units[u])} × ${esc(D.tags[j])}: ${fmt(v, 4)}"></td>`).join("");
      return `<tr data-unit="${u}" class="${u === st.unit ? "selected" : ""}"><td class="name">${esc(D.units[u])}</td>${cells}</tr>`;
    }).join("");
    $("heatmap").innerHTML = `<table class="heat">${head}${rows}</table>`;
    $("heatmap-scale").innerHTML = colourBar();
  }

  // The heatmap's colour scale: a vertical bar from -smax (blue) through 0 (white) to +smax (red), its ends
  // labelled with what they mean, the data's min and max marked on it, and grey for no value.
  function colourBar() {
    const m = D.smax, r = D.srange, H = 170, top = 40, L = 2, bw = 14, x = L + bw + 6, W = 150;
    const y = (v) => top + ((m - v) / (2 * m)) * H;
    const stops = [1, 0.5, 0, -0.5, -1].map((f) => `<stop offset="${(1 - f) / 2}" stop-color="${diverging(f)}"/>`).join("");
    const tick = (v, text, cls) => `<line x1="${L + bw}" x2="${L + bw + 4}" y1="${y(v)}" y2="${y(v)}" stroke="#333"/>` +
      `<text class="${cls}" x="${x}" y="${y(v) + 3.5}" data-value="${v}">${text}</text>`;
    const near = (a, b) => Math.abs(y(a) - y(b)) < 11;
    let ticks = "";
    if (r) {
      ticks += tick(r[1], `max ${fmt(r[1], 2)}`, "smax");
      if (!near(r[0], r[1])) ticks += tick(r[0], `min ${fmt(r[0], 2)}`, "smin");
      else ticks += `<text class="smin" x="${x}" y="${y(r[0]) + 14}" data-value="${r[0]}">min ${fmt(r[0], 2)}</text>`;
      if (!near(0, r[0]) && !near(0, r[1])) ticks += tick(0, "0", "zero");
    }
    return `<svg id="heatmap-colourbar" width="${W}" height="${top + H + 48}" data-min="${r ? r[0] : ""}" data-max="${r ? r[1] : ""}" ` +
      `data-scale="${m}"><defs><linearGradient id="heat-grad" x1="0" x2="0" y1="0" y2="1">${stops}</linearGradient></defs>` +
      `<text x="0" y="11" class="title">sensitivity (unit × tag)</text>` +
      `<text x="0" y="${top - 8}" class="end">+${fmt(m, 2)}: raises the tag's score</text>` +
      `<rect x="${L}" y="${top}" width="${bw}" height="${H}" fill="url(#heat-grad)" stroke="#888" stroke-width=".5"/>${ticks}` +
      `<text x="0" y="${top + H + 16}" class="end">${fmt(-m, 2)}: lowers it</text>` +
      `<rect x="${L}" y="${top + H + 28}" width="${bw}" height="10" fill="#ccc"/><text x="${x}" y="${top + H + 37}">no value</text></svg>`;
  }

  $("heatmap").addEventListener("click", (ev) => {
    const th = ev.target.closest("th[data-tag]");
    if (th) { st.sort = "tag:" + th.dataset.tag; $("sort-select").value = st.sort; selectTag(+th.dataset.tag); renderHeatmap(); return; }
    const tr = ev.target.closest("tr[data-unit]");
    if (tr) selectUnit(+tr.dataset.unit);
  });
  $("sort-select").addEventListener("change", (ev) => { st.sort = ev.target.value; renderHeatmap(); });
  $("method-select").addEventListener("change", (ev) => { st.method = ev.target.value; renderHeatmap(); renderTag(); });
  $("run-select").addEventListener("change", (ev) => loadRun(ev.target.value));

  function selectUnit(u, view) {
    st.unit = u;
    document.querySelectorAll("#heatmap tr.selected").forEach((r) => r.classList.remove("selected"));
    const row = document.querySelector(`#heatmap tr[data-unit="${u}"]`);
    if (row) row.classList.add("selected");
    $("sentence-unit").value = u;
    renderUnit(); renderSentence(); renderSeeds();
    setView(view || (st.view === "tag" ? "unit" : st.view));
  }

  function selectTag(j) { st.tag = j; renderTag(); setView("tag"); }

  // ------------------------------------------------------------------ charts (SVG strings)
  // The y range [lo, hi] (0 included) shared by every bar chart of a group: the min and max of their finite values.
  function sharedRange(groups) {
    let lo = 0, hi = 0;
    for (const vals of groups) for (const v of vals) if (finite(v)) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
    return hi > lo ? { lo, hi } : { lo: 0, hi: 1e-9 };
  }

  // A bar chart; opt.lo/opt.hi fix its y range (panels that are compared pass one shared range), else it is
  // [-m, m] (m: the largest |value|, or opt.max) when a value is negative and [0, m] when none is.
  function bars(values, labels, opt) {
    const o = Object.assign({ h: 120, bw: 28, id: "", attr: "tag", max: null, lo: null, hi: null }, opt || {});
    const w = values.length * o.bw + 40;
    const ok = values.filter(finite);
    let lo = o.lo, hi = o.hi;
    if (lo === null || hi === null) {
      const m = o.max || Math.max(1e-9, ...ok.map(Math.abs));
      hi = m; lo = ok.some((v) => v < 0) ? -m : 0;
    }
    const cmax = Math.max(Math.abs(lo), Math.abs(hi)) || 1e-9;
    const top = 8, plotH = o.h - 48, ly = top + plotH + 12;
    const y = (v) => top + ((hi - Math.max(lo, Math.min(hi, v))) / (hi - lo)) * plotH, zero = y(0);
    const items = values.map((v, i) => {
      const good = finite(v), x = 36 + i * o.bw, y0 = good ? Math.min(y(v), zero) : zero, hgt = good ? Math.abs(y(v) - zero) : 0;
      return `<rect data-${o.attr}="${i}" data-value="${good ? v : ""}" x="${x}" y="${y0}" width="${o.bw - 6}" height="${hgt}" ` +
        `fill="${good ? diverging(v / cmax) : "#ccc"}" stroke="#888" stroke-width=".5"><title>${esc(labels[i])}: ${fmt(v, 4)}</title></rect>` +
        `<text x="${x + (o.bw - 6) / 2 + 4}" y="${ly}" text-anchor="end" transform="rotate(-40 ${x + (o.bw - 6) / 2 + 4} ${ly})">${esc(labels[i])}</text>`;
    }).join("");
    const tick = (v) => `<line x1="29" x2="33" y1="${y(v)}" y2="${y(v)}" stroke="#333"/>` +
      `<text class="ytick" x="27" y="${y(v) + 3}" text-anchor="end">${fmt(v, 2)}</text>`;
    const ticks = [hi, lo, 0].filter((v, i, a) => a.indexOf(v) === i &&
      (v === hi || v === lo || (Math.abs(y(v) - y(hi)) > 10 && Math.abs(y(v) - y(lo)) > 10))).map(tick).join("");
    return `<svg ${o.id ? `id="${o.id}"` : ""} class="bars" data-ymin="${lo}" data-ymax="${hi}" width="${w}" height="${o.h + 14}" viewBox="0 -14 ${w} ${o.h + 14}">` +
      `<line x1="33" x2="33" y1="${top}" y2="${top + plotH}" stroke="#999"/>` +
      `<line x1="33" x2="${w}" y1="${zero}" y2="${zero}" stroke="#333"/>${ticks}${items}</svg>`;
  }

  function histogram(counts, edges, label) {
    const w = 120, h = 40, mx = Math.max(1, ...counts), bw = w / counts.length;
    const r = counts.map((c, i) => `<rect x="${i * bw}" y="${h - (c / mx) * h}" width="${bw - 0.5}" height="${(c / mx) * h}" fill="#5b7fa6"/>`).join("");
    return `<figure><svg width="${w}" height="${h + 12}"><line x1="0" x2="${w}" y1="${h}" y2="${h}" stroke="#999"/>${r}` +
      `<text x="0" y="${h + 11}">${fmt(edges[0], 2)}</text><text x="${w}" y="${h + 11}" text-anchor="end">${fmt(edges[edges.length - 1], 2)}</text></svg>` +
      `<figcaption>${label}</figcaption></figure>`;
  }

  function curve(c) {
    const w = 440, h = 220, L = 40, B = 28, kmax = Math.max(1, ...c.k);
    const x = (k) => L + (k / kmax) * (w - L - 10), y = (a) => 8 + (1 - a) * (h - B - 8);
    const line = (vals, col, dash) => {
      const pts = c.k.map((k, i) => (vals[i] === null ? null : `${x(k)},${y(vals[i])}`)).filter(Boolean).join(" ");
      return `<polyline points="${pts}" fill="none" stroke="${col}" stroke-width="1.8" ${dash ? 'stroke-dasharray="4 3"' : ""}/>`;
    };
    const band = c.k.map((k, i) => `${x(k)},${y(c.random_hi[i] ?? 0)}`).join(" ") + " " +
      c.k.map((k, i) => `${x(k)},${y(c.random_lo[i] ?? 0)}`).reverse().join(" ");
    const ticks = [0, 0.25, 0.5, 0.75, 1].map((a) => `<line x1="${L - 3}" x2="${w - 10}" y1="${y(a)}" y2="${y(a)}" stroke="#eee"/><text x="${L - 5}" y="${y(a) + 3}" text-anchor="end">${a}</text>`).join("");
    const kt = [0, Math.round(kmax / 2), kmax].map((k) => `<text x="${x(k)}" y="${h - B + 14}" text-anchor="middle">${k}</text>`).join("");
    return `<svg id="tag-curve" width="${w}" height="${h}">${ticks}${kt}<text x="${(w + L) / 2}" y="${h - 2}" text-anchor="middle">units zeroed (k)</text>` +
      `<polygon points="${band}" fill="#ccc" opacity=".6"/>${line(c.random_mean, "#777", true)}${line(c.bottom, "#2a8a3a")}${line(c.top, "#c62828")}` +
      `<text x="${w - 12}" y="20" text-anchor="end" fill="#c62828">top k of the ranking</text><text x="${w - 12}" y="32" text-anchor="end" fill="#2a8a3a">bottom k</text>` +
      `<text x="${w - 12}" y="44" text-anchor="end" fill="#777">random k (mean, 2.5–97.5%)</text></svg>`;
  }

  // ------------------------------------------------------------------ unit view
  function context(t, width) {
    const s = D.sentOf[t], a = D.sentence_starts[s], b = sentEnd(s);
    const left = D.words.slice(Math.max(a, t - width), t).map(esc).join(" ");
    const right = D.words.slice(t + 1, Math.min(b, t + width + 1)).map(esc).join(" ");
    return `${t - width > a ? "… " : ""}${left} <b>${esc(D.words[t])}</b> ${right}${t + width + 1 < b ? " …" : ""}`;
  }

  function tokenTable(id, idx, vals) {
    const rows = idx.map((t, i) => {
      const g = D.tags[D.gold[t]], p = D.tags[D.pred[t]];
      return `<tr class="click" data-token="${t}" data-value="${vals[i]}"><td class="num">${fmt(vals[i], 3)}</td>` +
        `<td class="ctx">${context(t, 4)}</td><td class="tag">${esc(g)}</td><td class="tag ${g === p ? "" : "wrong"}">${esc(p)}</td></tr>`;
    }).join("");
    return `<table class="list" id="${id}"><tr><th>value</th><th>token in context</th><th>gold</th><th>predicted</th></tr>${rows}</table>`;
  }

  function renderUnit() {
    const u = st.unit, name = D.units[u];
    const drops = D.single_ablation[u].map((a, j) => (a === null || D.accuracy[j] === null ? null : D.accuracy[j] - a));
    const hists = D.tags.map((t, j) => {
      const n = D.hist_counts[u][j].reduce((x, y) => x + y, 0);
      return n ? histogram(D.hist_counts[u][j], D.hist_edges[u], `${esc(t)} (${n})`) : "";
    }).join("");
    const abl = D.tags.map((t, j) => `<tr data-tag="${j}"><td class="tag">${esc(t)}</td><td class="num">${fmt(D.accuracy[j])}</td>` +
      `<td class="num">${fmt(D.single_ablation[u][j])}</td><td class="num" style="background:${diverging((drops[j] || 0) * 10)}">${fmt(drops[j])}</td></tr>`).join("");
    $("view-unit").innerHTML = `<h2 id="unit-title" data-unit="${u}">Unit ${esc(name)}</h2>` +
      `<p class="hint">mean activation ${fmt(D.mean[u], 4)} on ${esc(D.split || "the split")}; ${matchedLine(u)}</p>` +
      `<div class="row"><div><h3>Sensitivity to each tag</h3>${bars(D.sensitivity[u], D.tags, { id: "unit-profile" })}</div>` +
      `<div><h3>Removed alone (set to 0): per-tag accuracy</h3><table class="list" id="unit-ablation"><tr><th>tag</th><th>with it</th><th>without</th><th>drop</th></tr>${abl}</table></div></div>` +
      `<div class="row"><div><h3>Top-activating tokens</h3>${tokenTable("unit-top", D.top[u], D.top_values[u])}</div>` +
      `<div><h3>Most negative tokens</h3>${tokenTable("unit-bottom", D.bottom[u], D.bottom_values[u])}</div></div>` +
      `<h3>Activation histogram per ${D.bucket === "gold" ? "gold" : "predicted"} tag</h3><div class="hists" id="unit-hists">${hists}</div>`;
  }

  $("view-unit").addEventListener("click", (ev) => {
    const tr = ev.target.closest("tr[data-token]");
    if (tr) { st.sentence = D.sentOf[+tr.dataset.token]; renderSentence(+tr.dataset.token); setView("sentence"); }
    const a = ev.target.closest("a[data-view]");
    if (a) { ev.preventDefault(); setView(a.dataset.view); }
  });

  function matchedLine(u) {
    if (!M.study || !M.study.match[st.run]) return "";
    const m = M.study.match[st.run], n = Object.keys(m).length;
    return n ? `matched in ${n} other run${n > 1 ? "s" : ""}: <a href="#" data-view="seeds">compare side by side</a>` : "";
  }

  // ------------------------------------------------------------------ tag view
  function renderTag() {
    const j = st.tag, t = D.tags[j], order = ranking(j);
    const method = st.method === "" ? "sensitivity" : D.methods.names[+st.method];
    const rows = order.map((u, r) => {
      const drop = D.single_ablation[u][j] === null ? null : D.accuracy[j] - D.single_ablation[u][j];
      return `<tr class="click" data-unit="${u}"><td class="num">${r + 1}</td><td class="tag">${esc(D.units[u])}</td>` +
        `<td class="num">${fmt(D.sensitivity[u][j], 4)}</td><td class="num">${fmt(drop)}</td></tr>`;
    }).join("");
    const ov = D.overlap[j].map((v) => v / D.overlap_k);
    const c = D.curves[t];
    $("view-tag").innerHTML = `<h2 id="tag-title" data-tag="${j}">Tag ${esc(t)}</h2>` +
      `<p class="hint">accuracy ${fmt(D.accuracy[j])} on ${esc(D.split || "the split")}; units ranked by ${esc(method)}</p>` +
      `<div class="row"><div><h3>Ranked units</h3><div style="max-height:420px;overflow:auto"><table class="list" id="tag-ranking">` +
      `<tr><th>rank</th><th>unit</th><th>sensitivity</th><th>drop alone</th></tr>${rows}</table></div></div>` +
      `<div><h3>Ablation curve: accuracy of ${esc(t)}</h3>${c ? curve(c) : "<p>no ablation sweep in this analysis</p>"}` +
      `<h3>Shared units among the top ${D.overlap_k} with other tags</h3>${bars(ov, D.tags, { id: "tag-overlap", max: 1 })}</div></div>`;
  }

  $("view-tag").addEventListener("click", (ev) => {
    const tr = ev.target.closest("tr[data-unit]");
    if (tr) selectUnit(+tr.dataset.unit, "unit");
  });

  // ------------------------------------------------------------------ sentence view
  function renderSentence(mark) {
    if (!D) return;
    const u = st.unit, s = Math.max(0, Math.min(st.sentence, D.sentence_starts.length - 1));
    st.sentence = s;
    $("sentence-number").value = s + 1;
    $("sentence-number").max = D.sentence_starts.length;
    const a = D.sentence_starts[s], b = sentEnd(s), scale = D.act_scale[u];
    let html = "";
    for (let t = a; t < b; t++) {
      const v = act(u, t), g = D.tags[D.gold[t]], p = D.tags[D.pred[t]];
      html += `<span class="tok${t === mark ? " marked" : ""}"><span class="w" data-token="${t}" data-value="${v.toFixed(4)}" ` +
        `style="background:${diverging(v / scale)}${t === mark ? ";outline:2px solid #333" : ""}" title="${esc(D.units[u])} = ${v.toFixed(3)}">${esc(D.words[t])}</span>` +
        `<span class="g">${esc(g)}</span><span class="p ${g === p ? "" : "wrong"}">${esc(p)}</span></span>`;
    }
    $("sentence-view").innerHTML = `<p class="legend">Sentence ${s + 1} of ${D.sentence_starts.length}, coloured by unit ` +
      `<b>${esc(D.units[u])}</b>: <span style="background:${diverging(-1)};color:#fff">&nbsp;${fmt(-scale, 2)}&nbsp;</span> … 0 … ` +
      `<span style="background:${diverging(1)};color:#fff">&nbsp;${fmt(scale, 2)}&nbsp;</span>; under each word its gold tag, then the predicted one (red when they differ).</p>` +
      `<div class="sentence" id="sentence-tokens" data-sentence="${s}" data-unit="${u}">${html}</div>`;
  }

  function search() {
    const q = $("sentence-search").value.trim().toLowerCase();
    if (!q) { $("sentence-results").innerHTML = ""; return; }
    const hits = [];
    let last = -1;
    for (let t = 0; t < D.n_tokens && hits.length < 200; t++) {
      if (D.words[t].toLowerCase() === q && D.sentOf[t] !== last) { last = D.sentOf[t]; hits.push(t); }
    }
    $("sentence-results").innerHTML = hits.length ? `<table class="list" id="search-hits">${hits.map((t) =>
      `<tr class="click" data-token="${t}"><td class="num">${D.sentOf[t] + 1}</td><td class="ctx">${context(t, 6)}</td></tr>`).join("")}</table>` +
      (hits.length === 200 ? "<p class=hint>the first 200 sentences</p>" : "") : `<p class="hint">“${esc(q)}” is not in the split</p>`;
  }

  $("sentence-go").addEventListener("click", search);
  $("sentence-search").addEventListener("keydown", (ev) => { if (ev.key === "Enter") search(); });
  $("sentence-results").addEventListener("click", (ev) => {
    const tr = ev.target.closest("tr[data-token]");
    if (tr) { st.sentence = D.sentOf[+tr.dataset.token]; renderSentence(+tr.dataset.token); }
  });
  $("sentence-number").addEventListener("change", (ev) => { st.sentence = (+ev.target.value || 1) - 1; renderSentence(); });
  $("sentence-prev").addEventListener("click", () => { st.sentence -= 1; renderSentence(); });
  $("sentence-next").addEventListener("click", () => { st.sentence += 1; renderSentence(); });
  $("sentence-unit").addEventListener("change", (ev) => selectUnit(+ev.target.value, "sentence"));

  // ------------------------------------------------------------------ seeds view (studies)
  function renderSeeds() {
    if (!M.study) return;
    const S = M.study, u = st.unit, m = S.match[st.run] || {};
    const shown = [[st.run, u, null]].concat(Object.keys(m).filter((rid) => m[rid].unit[u] >= 0)
      .map((rid) => [rid, m[rid].unit[u], m[rid].corr[u]]));
    const range = sharedRange(shown.map(([rid, unit]) => S.profiles[rid][unit]));  // one y scale for all panels
    const fig = (rid, unit, corr) => {
      const run = M.runs.find((r) => r.id === rid);
      return `<figure class="${rid === st.run ? "self" : ""}" data-run="${rid}" data-unit="${unit}">` +
        `<figcaption><b>${esc(run.name)}</b>: unit ${esc(S.units[rid][unit])}${corr === null ? "" : ` (profile r = ${fmt(corr, 2)})`}</figcaption>` +
        `${bars(S.profiles[rid][unit], S.tags, Object.assign({ h: 150, bw: 24 }, range))}</figure>`;
    };
    $("view-seeds").innerHTML = `<h2>Unit ${esc(D.units[u])} and its match in every other run of the variant</h2>` +
      `<p class="hint">Sensitivity of each unit to each tag. Units are matched one to one by the Hungarian algorithm on their ` +
      `sensitivity profiles (nerve.analysis.matching). All panels share one y scale, ${fmt(range.lo, 2)} to ${fmt(range.hi, 2)}. ` +
      `Click a run to open it at its matched unit.</p><div class="seeds" id="seeds" data-ymin="${range.lo}" data-ymax="${range.hi}">` +
      `${shown.map((f) => fig(...f)).join("")}${shown.length > 1 ? "" : "<p>no other run in this variant</p>"}</div>`;
  }

  $("view-seeds").addEventListener("click", (ev) => {
    const f = ev.target.closest("figure[data-run]");
    if (f && f.dataset.run !== st.run) {
      const unit = +f.dataset.unit;
      st.unit = unit;
      loadRun(f.dataset.run, () => selectUnit(unit, "seeds"));
    }
  });

  // ------------------------------------------------------------------ views
  function setView(v) {
    st.view = v;
    document.querySelectorAll("#tabs button").forEach((b) => b.classList.toggle("active", b.dataset.view === v));
    document.querySelectorAll(".view").forEach((e) => { e.hidden = e.id !== "view-" + v; });
    if (v === "live") { renderLiveUnits(); $("live-top").textContent = `ablate the top 10 of ${D.tags[st.tag]}`; }
  }
  $("tabs").addEventListener("click", (ev) => { const b = ev.target.closest("button[data-view]"); if (b) setView(b.dataset.view); });

  // ------------------------------------------------------------------ live panel (nerve serve)
  const ablated = new Set();
  let liveAnswers = 0;  // answers shown so far (tests wait for the next one)
  function renderLiveUnits() {
    $("live-units").innerHTML = "units: " + D.units.map((n) =>
      `<button data-unit="${esc(n)}" class="${ablated.has(n) ? "ablated" : ""}">${esc(n)}</button>`).join("");
  }

  async function liveTag() {
    const body = { sentence: $("live-input").value, ablate: [...ablated], value: $("live-value").value };
    $("live-error").hidden = true;
    $("status").textContent = "tagging…";
    let res, data;
    try {
      res = await fetch("api/tag", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
      data = await res.json();
    } catch (err) {
      data = { error: "the server did not answer (" + err.message + "); is `nerve serve` still running?" };
    }
    $("status").textContent = "ready";
    if (!res || !res.ok || data.error) {
      $("live-error").textContent = data.error || ("the server answered " + res.status);
      $("live-error").hidden = false;
    } else {
      renderLive(data);
    }
    document.body.dataset.liveAnswers = String(++liveAnswers);
  }

  function renderLive(r) {
    const u = st.unit, names = r.units, ui = names.indexOf(D.units[u]);
    let scale = 1e-9;
    for (const row of r.activations) for (const v of row) scale = Math.max(scale, Math.abs(v));
    const toks = r.tokens.map((w, i) => {
      const v = ui < 0 ? 0 : r.activations[i][ui];
      return `<span class="tok"><span class="w" style="background:${diverging(v / (D.act_scale[u] || scale))}" title="${esc(D.units[u])} = ${fmt(v)}">${esc(w)}</span>` +
        `<span class="g">${esc(r.base_tags[i])}</span><span class="p ${r.tags[i] === r.base_tags[i] ? "" : "wrong"}">${esc(r.tags[i])}</span></span>`;
    }).join("");
    const rows = r.tokens.map((w, i) => `<tr><td>${esc(w)}</td><td class="tag tag-before" data-i="${i}">${esc(r.base_tags[i])}</td>` +
      `<td class="tag tag-after ${r.tags[i] === r.base_tags[i] ? "" : "changed"}" data-i="${i}">${esc(r.tags[i])}</td>` +
      r.activations[i].map((v, k) => `<td title="${esc(names[k])} = ${fmt(v)}" style="width:6px;padding:0;background:${diverging(v / scale)}${r.ablated.includes(names[k]) ? ";outline:1px solid #000" : ""}"></td>`).join("") + "</tr>").join("");
    $("live-result").innerHTML = `<p class="legend">${r.ablated.length ? `${r.ablated.length} unit(s) set to ${esc(r.value)}: ${r.ablated.map(esc).join(", ")}` : "no unit ablated"}; ` +
      `words coloured by unit <b>${esc(D.units[u])}</b>; under each word the model's tag, then the tag with the units ablated.</p>` +
      `<div class="sentence">${toks}</div><table class="list" id="live-tags"><tr><th>token</th><th>tag</th><th>ablated</th>` +
      `<th colspan="${names.length}">unit activations (unablated)</th></tr>${rows}</table>`;
  }

  $("live-run").addEventListener("click", liveTag);
  $("live-input").addEventListener("keydown", (ev) => { if (ev.key === "Enter") liveTag(); });
  $("live-value").addEventListener("change", liveTag);
  $("live-clear").addEventListener("click", () => { ablated.clear(); renderLiveUnits(); liveTag(); });
  $("live-top").addEventListener("click", () => {
    ranking(st.tag).slice(0, 10).forEach((u) => ablated.add(D.units[u]));
    renderLiveUnits(); liveTag();
  });
  $("live-units").addEventListener("click", (ev) => {
    const b = ev.target.closest("button[data-unit]");
    if (!b) return;
    const n = b.dataset.unit;
    if (ablated.has(n)) ablated.delete(n); else ablated.add(n);
    b.classList.toggle("ablated", ablated.has(n));
    liveTag();
  });

  // ------------------------------------------------------------------ start
  if (!M || !M.runs || !M.runs.length) { fail("no data: data/index.js is missing beside index.html"); return; }
  $("run-select").innerHTML = M.runs.map((r) => `<option value="${r.id}">${esc(r.variant ? r.variant + " / " + r.name : r.name)}</option>`).join("");
  $("run-pick").hidden = M.runs.length < 2;
  document.querySelector('#tabs button[data-view="seeds"]').hidden = !M.study;
  document.querySelector('#tabs button[data-view="live"]').hidden = !LIVE;
  loadRun(M.runs[0].id, () => { if (LIVE) { setView("live"); liveTag(); } });
  window.nerveExplorer = { state: st, selectUnit, selectTag, setView, data: () => D };
})();
