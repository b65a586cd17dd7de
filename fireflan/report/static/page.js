// fireflan report page: draws window.FIREFLAN_DATA; steps/NNNN.js arrive when a question is opened.
"use strict";
(function () {
  const D = window.FIREFLAN_DATA;
  const Q = D.questions;  // [id, question, gold, task, type, outcome, [[right, turns, answer, why] or null per run]]
  const ROW = 30;  // px per row of the question list (it is drawn only where it is visible)
  const byId = new Map(Q.map((q, i) => [q[0], i]));
  const chunks = [], loading = new Set();
  const state = {view: "overview", task: "", type: "", outcome: "", why: "", text: "", q: ""};
  const page = window.FIREFLAN_PAGE = {filterMs: null, shown: []};
  let lowered = null;  // question texts in lower case, made at the first text search

  // ---- elements: text always goes in as text nodes
  function h(tag, props, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(props || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") e.className = v;
      else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? "" : v);
    }
    for (const kid of kids.flat(Infinity)) {
      if (kid !== null && kid !== undefined && kid !== false) e.append(kid instanceof Node ? kid : String(kid));
    }
    return e;
  }
  const $ = (id) => document.getElementById(id);
  const pct = (v) => (100 * v).toFixed(1) + "%";
  function table(head, rows) {
    return h("table", {}, h("tr", {}, head.map((x) => h("th", {}, x))),
      rows.map((r) => h("tr", {}, r.map((x, i) => h("td", {class: i && /^-?[\d.]+$/.test(x) ? "num" : null}, x)))));
  }
  function setting(key) { return (D.settings.rows.find((r) => r[0] === key) || []).slice(1); }

  // ---- the state is the URL hash: #view=questions&outcome=...&q=...
  function readHash() {
    const p = new URLSearchParams(location.hash.slice(1));
    for (const k of Object.keys(state)) state[k] = p.get(k) || "";
    if (!["overview", "questions", "training"].includes(state.view)) state.view = state.q ? "questions" : "overview";
  }
  function writeHash() {
    const p = new URLSearchParams();
    for (const [k, v] of Object.entries(state)) if (v && !(k === "view" && v === "overview")) p.set(k, v);
    history.replaceState(null, "", "#" + p.toString());
  }
  function go(changes) { Object.assign(state, changes); writeHash(); render(); }

  // ---- overview: comparison table, outcomes, plots, settings
  function overview() {
    const w = D.written;
    return [
      h("h2", {}, "Comparison"), table(D.table.head, D.table.rows),
      D.notes.map((n) => h("p", {class: "note"}, n)),
      h("h2", {}, "Outcomes per question"),
      h("ul", {}, D.outcomes.map((o) => h("li", {},
        h("a", {href: "#view=questions&outcome=" + encodeURIComponent(o.id)}, o.label), ": " + o.count))),
      D.why_counts ? [h("h2", {}, "Why the episodes ended as they did"),
        table(["", ...D.runs], D.why.map((label, k) => [label, ...D.why_counts.map((c) => String(c[k]))]))] : null,
      h("h2", {}, "Plots"),
      D.plots.length ? h("div", {class: "plots"}, D.plots.map((p) => h("figure", {},
        h("img", {src: p.file, alt: p.title}), h("figcaption", {}, p.title)))) : h("p", {class: "hint"}, "no plots"),
      h("h2", {}, "Run settings"), table(D.settings.head, D.settings.rows),
      h("p", {class: "hint"}, `Report written ${w.date} on ${w.platform} (${w.machine}, ${w.cpus} CPUs, ` +
        `Python ${w.python}).`),
    ];
  }

  // ---- training curve and corpus statistics
  function mixTable(mix) {
    const keys = [...new Set([...Object.keys(mix.asked), ...Object.keys(mix.realised)])];
    const asked = Object.keys(mix.asked).length > 0;
    const cell = (v, cls) => h("td", {}, v === undefined ? "" : [h("span", {class: "bar " + cls,
      style: `width:${Math.round(120 * v)}px`}), pct(v)]);
    return h("table", {}, h("tr", {}, h("th", {}, ""), asked ? h("th", {}, "asked") : null, h("th", {}, "realised")),
      keys.map((k) => h("tr", {}, h("td", {}, k), asked ? cell(mix.asked[k], "asked") : null,
        cell(mix.realised[k], ""))));
  }
  function training() {
    const t = D.training, c = D.corpus, left = [h("h2", {}, "Training")], right = [h("h2", {}, "Corpus")];
    if (!t) left.push(h("p", {class: "hint"}, "No training folder beside the runs (PARENT/model); pass --model DIR."));
    else {
      left.push(h("p", {class: "hint"}, t.folder));
      if (t.plot) left.push(h("figure", {}, h("img", {src: t.plot, alt: "training loss"}),
        h("figcaption", {}, "training loss per step")));
      if (t.loss) left.push(h("p", {}, `loss over ${t.loss.steps} logged steps: first ${t.loss.first}, ` +
        `last ${t.loss.last}, lowest ${t.loss.min}`));
      if (t.summary) left.push(table(["", "value"], t.summary));
    }
    if (!c) right.push(h("p", {class: "hint"}, "No corpus folder beside the runs (PARENT/corpus); pass --corpus DIR."));
    else {
      right.push(h("p", {class: "hint"}, c.folder), table(["", "value"], c.sizes));
      const size = (m) => Object.keys(m.asked).length + Object.keys(m.realised).length;
      const mixes = Object.entries(c.mixes).filter(([, m]) => size(m));
      right.push(h("div", {class: "mixes"}, mixes.map(([name, mix]) => h("div", {}, h("h3", {}, "mix by " + name),
        mixTable(mix)))));
    }
    return [h("div", {}, left), h("div", {}, right)];
  }

  // ---- the question browser
  let list, spacer, detail, count, selects = {};
  function buildQuestions() {
    const typeNames = D.types.map((t) => t || "(none)");
    const select = (key, label, options) => {
      const change = () => { list.scrollTop = 0; go({[key]: s.value}); };
      const s = h("select", {"aria-label": label, id: "filter-" + key, onchange: change},
        h("option", {value: ""}, "any " + label), options.map(([v, text]) => h("option", {value: v}, text)));
      selects[key] = s;
      return s;
    };
    let timer = null;
    const search = h("input", {type: "search", placeholder: "search questions", id: "filter-text",
      oninput: () => { clearTimeout(timer); timer = setTimeout(() => go({text: search.value}), 120); }});
    selects.text = search;
    list = h("div", {class: "list", id: "list", onscroll: () => requestAnimationFrame(drawList)});
    spacer = h("div", {});
    list.append(spacer);
    count = h("div", {class: "count", id: "count"});
    detail = h("div", {class: "detail", id: "detail"});
    $("questions").append(h("div", {},
      h("div", {class: "filters"},
        D.tasks.length > 1 ? select("task", "task", D.tasks.map((t) => [t, t])) : null,
        typeNames.length > 1 || typeNames[0] !== "(none)" ? select("type", "type", typeNames.map((t) => [t, t])) : null,
        select("outcome", "outcome", D.outcomes.map((o) => [o.id, `${o.label} (${o.count})`])),
        D.why_counts ? select("why", "reason", D.why_counts.flatMap((c, r) => D.why.map((label, k) =>
          [`${r}:${k}`, `${D.runs[r]}: ${label} (${c[k]})`]).filter((_, k) => c[k]))) : null, search),
      count, h("div", {class: "count"}, "✓ / ✗ per run: " + D.runs.join(", ")), list), detail);
    document.addEventListener("keydown", (e) => {
      if (state.view !== "questions" || e.target.tagName === "INPUT" || e.target.tagName === "SELECT") return;
      const at = page.shown.indexOf(byId.get(state.q));
      const step = {ArrowDown: 1, j: 1, ArrowUp: -1, k: -1}[e.key], next = at + step;
      if (!step || next < 0 || next >= page.shown.length) return;
      e.preventDefault();
      go({q: Q[page.shown[next]][0]});
    });
  }
  function filter() {
    const started = performance.now();
    const t = D.tasks.indexOf(state.task), ty = D.types.indexOf(state.type === "(none)" ? "" : state.type);
    const o = D.outcomes.findIndex((x) => x.id === state.outcome), text = state.text.toLowerCase();
    const [wr, wk] = state.why ? state.why.split(":").map(Number) : [-1, -1];
    if (text && !lowered) lowered = Q.map((q) => (q[0] + " " + q[1] + " " + q[2]).toLowerCase());
    const shown = [];
    for (let i = 0; i < Q.length; i++) {
      const q = Q[i];
      if ((state.task && q[3] !== t) || (state.type && q[4] !== ty) || (state.outcome && q[5] !== o)) continue;
      if (wr >= 0 && !(q[6][wr] && q[6][wr][3] === wk)) continue;
      if (text && !lowered[i].includes(text)) continue;
      shown.push(i);
    }
    page.shown = shown;
    page.filterMs = performance.now() - started;
    count.textContent = `${shown.length} of ${Q.length} questions`;
    spacer.style.height = shown.length * ROW + "px";
  }
  function drawList() {
    const shown = page.shown, first = Math.max(0, Math.floor(list.scrollTop / ROW) - 10);
    const last = Math.min(shown.length, first + Math.ceil((list.clientHeight || 600) / ROW) + 20);
    const rows = [];
    for (let k = first; k < last; k++) {
      const q = Q[shown[k]];
      rows.push(h("div", {class: "row" + (q[0] === state.q ? " open" : ""), style: `top:${k * ROW}px`, "data-id": q[0],
        title: q[0], onclick: () => go({q: q[0]})},
        h("span", {class: "marks"}, q[6].map((r, j) => h("span", {class: r === null ? "" : r[0] ? "ok" : "bad",
          title: D.runs[j]}, r === null ? "·" : r[0] ? "✓" : "✗"))),
        h("span", {class: "qtext"}, q[1])));
    }
    spacer.replaceChildren(...rows);
  }
  function loadChunk(n) {
    if (loading.has(n)) return;
    loading.add(n);
    const s = h("script", {src: "steps/" + String(n).padStart(4, "0") + ".js"});
    s.onerror = () => {
      loading.delete(n);
      detail.replaceChildren(h("p", {class: "note"}, "could not load " + s.src));
    };
    document.head.append(s);
  }
  window.FIREFLAN_chunk = function (n, data) {
    chunks[n] = data;
    if (state.view === "questions" && Math.floor(byId.get(state.q) / D.chunk) === n) drawDetail();
  };
  function drawDetail() {
    const i = byId.get(state.q);
    detail.removeAttribute("data-shown");
    const say = (cls, text) => detail.replaceChildren(h("p", {class: cls}, text));
    if (!state.q) return say("hint", "Pick a question on the left (↑/↓ to move).");
    if (i === undefined) return say("note", `No question ${state.q} in these runs.`);
    const n = Math.floor(i / D.chunk);
    if (!chunks[n]) { detail.replaceChildren(h("p", {class: "hint"}, "loading…")); return loadChunk(n); }
    detail.replaceChildren(question(i, chunks[n]));
    detail.setAttribute("data-shown", state.q);
  }

  // one question: the runs side by side, step by step; gold answer and supporting facts highlighted
  function highlight(text, facts, gold) {
    const marks = new Uint8Array(text.length);
    for (const f of facts) {
      for (let at = f ? text.indexOf(f) : -1; at >= 0; at = text.indexOf(f, at + f.length)) {
        for (let j = at; j < at + f.length; j++) marks[j] |= 1;
      }
    }
    const low = text.toLowerCase(), g = (gold || "").toLowerCase();
    const word = (c) => c === undefined || !/[\p{L}\p{N}]/u.test(c);  // a word ends here
    for (let at = g ? low.indexOf(g) : -1; at >= 0; at = low.indexOf(g, at + 1)) {
      if (word(low[at - 1]) && word(low[at + g.length])) for (let j = at; j < at + g.length; j++) marks[j] |= 2;
    }
    const out = [];
    for (let start = 0, j = 1; start < text.length; j++) {
      if (j < text.length && marks[j] === marks[start]) continue;
      const piece = text.slice(start, j), m = marks[start];
      out.push(m ? h("mark", {class: [m & 1 ? "fact" : "", m & 2 ? "gold" : ""].join(" ").trim()}, piece) : piece);
      start = j;
    }
    return out;
  }
  function stepCell(traj, k, facts, gold, strings) {
    if (!traj || k >= traj.steps.length) return h("div", {class: "step empty"});
    const [thought, action, argument, obs, flags, raw] = traj.steps[k];
    const repeat = action !== null && traj.steps.slice(0, k).some((s) => s[1] === action && s[2] === argument);
    return h("div", {class: "step"},
      h("div", {class: "stephead"}, `step ${k + 1}`,
        flags & 1 ? h("span", {class: "badge warn"}, "format error") : null,
        flags & 2 ? h("span", {class: "badge warn"}, "invented observation") : null,
        flags & 4 ? h("span", {class: "badge"}, "told it was wrong") : null,
        repeat ? h("span", {class: "badge repeat"}, "repeats an earlier action") : null),
      action === null ? h("div", {}, h("b", {}, "Output "), thought || h("i", {}, "(empty)"))
        : [thought ? h("div", {}, h("b", {}, "Thought "), thought) : null,
          h("div", {}, h("b", {}, "Action "), h("code", {}, `${action}[${argument}]`))],
      h("div", {class: "obs"}, h("b", {}, "Observation "), highlight(strings[obs], facts, gold)),
      raw ? h("details", {}, h("summary", {}, "what the model wrote"), h("pre", {}, raw)) : null);
  }
  function question(i, chunk) {
    const q = Q[i], [factIds, trajs] = chunk.questions[i % D.chunk];
    const facts = factIds.map((k) => chunk.strings[k]), models = setting("model (as named)");
    const methods = setting("method");
    const steps = Math.max(0, ...trajs.map((t) => (t ? t.steps.length : 0)));
    const cells = trajs.map((t, r) => {
      if (!t) return h("div", {class: "runhead"}, h("div", {class: "runname"}, D.runs[r]), "not in this run");
      const ok = q[6][r][0], reason = q[6][r][3];
      return h("div", {class: "runhead " + (ok ? "ok" : "bad")}, h("div", {class: "runname"}, D.runs[r]),
        h("div", {class: "hint"}, [models[r], methods[r], t.prompt].filter(Boolean).join(" · ")),
        h("div", {}, h("span", {class: ok ? "ok" : "bad"}, ok ? "✓ right" : "✗ wrong"), " · answer: ",
          t.answer === null ? h("i", {}, "none (never finished)") : t.answer),
        h("div", {class: "hint"}, `EM ${t.em} · F1 ${t.f1} · ${t.steps.length} steps` +
          (t.discarded ? ` · ${t.discarded} taken back` : "")),
        !ok && reason >= 0 ? h("div", {class: "hint why"}, "why: " + D.why[reason]) : null);
    });
    for (let k = 0; k < steps; k++) trajs.forEach((t) => cells.push(stepCell(t, k, facts, q[2], chunk.strings)));
    const type = D.types[q[4]];
    return h("div", {},
      h("h2", {}, q[1]),
      h("div", {class: "meta"}, h("span", {}, q[0]), h("span", {}, D.tasks[q[3]]), type ? h("span", {}, type) : null,
        h("span", {}, D.outcomes[q[5]].label)),
      h("div", {}, "Gold answer: ", h("mark", {class: "gold"}, q[2])),
      facts.length ? [h("div", {}, "Supporting facts:"), h("ul", {class: "facts"}, facts.map((f) =>
        h("li", {}, h("mark", {class: "fact"}, f))))] : null,
      h("div", {class: "sides", style: `grid-template-columns: repeat(${trajs.length}, minmax(0, 1fr))`}, cells));
  }

  // ---- the page
  function render() {
    for (const v of ["overview", "questions", "training"]) $(v).hidden = v !== state.view;
    for (const b of $("tabs").children) b.className = b.dataset.view === state.view ? "active" : "";
    if (state.view === "overview") $("overview").replaceChildren(...overview().flat());
    if (state.view === "training") $("training").replaceChildren(...training().flat());
    if (state.view === "questions") {
      if (!list) buildQuestions();
      for (const [k, s] of Object.entries(selects)) if (s.value !== state[k]) s.value = state[k];
      filter();
      const at = page.shown.indexOf(byId.get(state.q));
      if (at >= 0 && (at * ROW < list.scrollTop || (at + 1) * ROW > list.scrollTop + list.clientHeight)) {
        list.scrollTop = Math.max(0, at * ROW - list.clientHeight / 2);
      }
      drawList();
      drawDetail();
    }
    document.body.setAttribute("data-view", state.view);
  }
  document.title = "fireflan report: " + D.title;
  $("subtitle").textContent = D.title;
  for (const [view, label] of [["overview", "Overview"], ["questions", `Questions (${Q.length})`],
    ["training", "Training & corpus"]]) {
    $("tabs").append(h("button", {"data-view": view, onclick: () => go({view})}, label));
  }
  window.addEventListener("hashchange", () => { readHash(); render(); });
  readHash();
  render();
})();
