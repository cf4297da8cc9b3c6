// lookalike web UI: plain JavaScript over the REST API (/v1). No framework, no CDN.
"use strict";

const $ = (sel) => document.querySelector(sel);
const state = { key: localStorage.getItem("lookalike-key") || "", file: null, dupOffset: 0, thumbs: new Map() };

// -- helpers ------------------------------------------------------------------------------------
function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (v !== null && v !== undefined && v !== false) e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));  // text, never HTML
  }
  return e;
}

function status(text, kind = "") {
  const s = $("#status");
  s.textContent = text;
  s.className = kind;
}

async function api(path, opts = {}) {
  const headers = Object.assign({}, opts.headers || {});
  if (state.key) headers.Authorization = "Bearer " + state.key;
  const r = await fetch(path, Object.assign({}, opts, { headers }));
  if (!r.ok) {
    let detail = r.statusText;
    try { detail = (await r.json()).detail || detail; } catch (e) { /* not JSON */ }
    const err = new Error(`${r.status}: ${typeof detail === "string" ? detail : JSON.stringify(detail)}`);
    err.status = r.status;
    throw err;
  }
  return opts.raw ? r : r.json();
}

const json = (method, body) => ({ method, headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });

async function guarded(fn) {
  try { return await fn(); } catch (e) { status(e.message, "error"); }
}

// Thumbnails need the key, so they are fetched and shown as blob URLs (cached per id and size).
function thumb(id, side = 256, cls = "") {
  const img = el("img", { alt: "", class: cls, "data-id": id });
  const k = id + ":" + side;
  const set = (url) => { if (url) img.src = url; else img.replaceWith(el("span", { class: "noprev" }, "no preview")); };
  if (state.thumbs.has(k)) state.thumbs.get(k).then(set);
  else {
    const p = api(`/v1/images/${id}/thumbnail?side=${side}`, { raw: true })
      .then((r) => r.blob()).then((b) => URL.createObjectURL(b)).catch(() => null);
    state.thumbs.set(k, p);
    p.then(set);
  }
  return img;
}

// A file indexed from the server's disk is named by its full path: show the file name, the path on hover.
const nameEl = (m, extra = "") => el("div", { class: "name", title: m.name },
  (m.source !== "upload" && m.name.startsWith("/") ? m.name.split("/").pop() : m.name) + extra);
const fmtBytes = (n) => n == null ? "?" : n > 1048576 ? (n / 1048576).toFixed(1) + " MB" : Math.round(n / 1024) + " KB";
const why = (details) => Object.entries(details || {}).map(([k, v]) => `${k} ${typeof v === "number" ? +v.toFixed(3) : v}`).join(", ");

// -- key ----------------------------------------------------------------------------------------
async function useKey(key) {
  state.key = key;
  localStorage.setItem("lookalike-key", key);
  state.thumbs.clear();
  try {
    const info = await api("/v1/info");
    $("#whoami").textContent = `${info.role} · ${info.files_ok} images`;
    status("");
    return true;
  } catch (e) {
    $("#whoami").textContent = "";
    status(e.status === 401 ? "That key is not valid: create one with `lookalike keys create --role writer`." : e.message, "error");
    return false;
  }
}

// -- search -------------------------------------------------------------------------------------
function pick(file) {
  if (!file) return;
  state.file = file;
  $("#add").disabled = false;
  const url = URL.createObjectURL(file);
  $("#query").replaceChildren(el("figure", {}, el("img", { src: url, alt: "query" }), el("figcaption", {}, "query: " + file.name)));
  runSearch();
}

async function runSearch() {
  if (!state.file) return;
  const form = new FormData();
  form.append("file", state.file, state.file.name);
  const q = new URLSearchParams({ mode: $("#mode").value, k: $("#k").value, min_score: $("#minscore").value });
  status("Searching…");
  await guarded(async () => {
    const res = await api("/v1/search?" + q, { method: "POST", body: form });
    $("#results").replaceChildren(...res.results.map((m) => el("figure", { class: "result" },
      thumb(m.id),
      el("figcaption", {},
        el("div", { class: "score" }, (100 * m.score).toFixed(1) + "%", " ", el("span", { class: "method" }, m.method)),
        nameEl(m),
        el("div", { class: "why muted" }, why(m.details)),
        el("a", { href: "#inspect", onclick: () => { $("#iid").value = m.id; setTimeout(runInspect, 0); } }, "inspect")))));
    status(res.results.length ? `${res.results.length} results (${res.mode} mode)` : "Nothing alike found.");
  });
}

async function addToIndex() {
  if (!state.file) return;
  const form = new FormData();
  form.append("file", state.file, state.file.name);
  await guarded(async () => {
    const r = await api("/v1/images", { method: "POST", body: form });
    status(`${r.status === "added" ? "Added" : "Already indexed"}: image ${r.id} (${r.name})`);
  });
}

// -- duplicates ---------------------------------------------------------------------------------
async function loadDuplicates(message = "") {
  const limit = +$("#dlimit").value;
  const q = new URLSearchParams({ mode: $("#dmode").value, offset: state.dupOffset, limit });
  status("Scanning for duplicates…");
  await guarded(async () => {
    const res = await api("/v1/duplicates?" + q);
    $("#dcount").textContent = `${res.total_groups} groups to review`;
    const pages = Math.max(1, Math.ceil(res.total_groups / limit));
    $("#dpage").textContent = `page ${Math.floor(state.dupOffset / limit) + 1} of ${pages}`;
    $("#dprev").disabled = state.dupOffset === 0;
    $("#dnext").disabled = state.dupOffset + limit >= res.total_groups;
    $("#groups").replaceChildren(...res.groups.map(groupCard));
    status(message || (res.total_groups ? "" : "No duplicate groups left to review in this mode."));
  });
}

function groupCard(g) {
  const name = "keep-" + g.group + "-" + g.members.map((m) => m.id).join("-");
  const best = Math.max(...g.pairs.map((p) => p.score), 0);
  const card = el("article", { class: "group", "data-members": g.members.map((m) => m.id).join(","), "data-keeper": g.suggested_keeper },
    el("header", {},
      el("label", {}, el("input", { type: "checkbox", class: "select" }), ` ${g.members.length} images`),
      el("span", { class: "muted" }, ` best pair ${(100 * best).toFixed(1)}% · ${[...new Set(g.pairs.map((p) => p.method))].join(", ")}`)),
    el("div", { class: "members" }, ...g.members.map((m) => el("figure", { class: m.id === g.suggested_keeper ? "keeper" : "" },
      thumb(m.id),
      el("figcaption", {},
        el("label", {}, el("input", { type: "radio", name, value: m.id, checked: m.id === g.suggested_keeper }), " keep this"),
        m.id === g.suggested_keeper ? el("span", { class: "badge" }, "suggested keeper") : null,
        nameEl(m),
        el("div", { class: m.differs.includes("resolution") ? "diff" : "" }, `${m.width}×${m.height}`),
        el("div", { class: m.differs.includes("bytes") || m.differs.includes("format") ? "diff" : "" }, `${fmtBytes(m.bytes)} ${m.format || ""}`),
        el("div", { class: m.differs.includes("date") ? "diff" : "" }, (m.date || "").replace("T", " ").replace("+00:00", " UTC")))))),
    el("footer", {},
      el("button", { type: "button", onclick: () => decide(card, "keep_all") }, "Keep all"),
      el("button", { type: "button", onclick: () => decide(card, "keep_one") }, "Keep one (the chosen)"),
      el("button", { type: "button", onclick: () => decide(card, "not_duplicates") }, "Not duplicates")));
  return card;
}

function members(card) { return card.dataset.members.split(",").map(Number); }

async function decide(card, verdict) {
  const chosen = card.querySelector("input[type=radio]:checked");
  const body = { members: members(card), verdict, keeper: verdict === "keep_one" && chosen ? +chosen.value : null };
  await guarded(async () => {
    const r = await api("/v1/duplicates/decisions", json("POST", body));
    card.remove();
    await loadDuplicates(`Decision ${r.id} saved: ${verdict.replace("_", " ")}. This group will not come back.`);
  });
}

async function bulkAccept() {
  const cards = [...document.querySelectorAll("#groups .group")].filter((c) => c.querySelector(".select").checked);
  if (!cards.length) { status("Select groups first (the checkbox at the top of each group).", "error"); return; }
  const decisions = cards.map((c) => ({ members: members(c), verdict: "keep_one", keeper: +c.dataset.keeper }));
  await guarded(async () => {
    const r = await api("/v1/duplicates/decisions/bulk", json("POST", { decisions }));
    await loadDuplicates(`${r.ids.length} groups resolved with their suggested keeper.`);
  });
}

// -- clusters -----------------------------------------------------------------------------------
async function loadClusters() {
  const by = $("#cby").value;
  await guarded(async () => {
    const res = await api(`/v1/clusters?by=${by}&limit=100`);
    $("#ccount").textContent = `${res.total} clusters with 2 or more members`;
    $("#clusters").replaceChildren(...res.clusters.map((c) => {
      const input = el("input", { type: "text", value: c.name || "", placeholder: `cluster ${c.id}` });
      const pick = el("input", { type: "checkbox", class: "cpick", "data-id": c.id, title: "select for merging" });
      return el("article", { class: "cluster" },
        el("header", {}, pick, input,
          el("button", { type: "button", onclick: () => renameCluster(by, c.id, input.value) }, "Rename"),
          el("button", { type: "button", onclick: (ev) => splitCluster(by, c.id, ev.target.closest("article")) },
            "Split selected into a new cluster"),
          el("span", { class: "muted" }, ` ${c.size} members (#${c.id})`)),
        el("div", { class: "members" }, ...c.members.slice(0, 24).map((m) => el("figure", {}, thumb(m.id, 160),
          el("figcaption", {},
            el("input", { type: "checkbox", class: "mpick", "data-id": m.id, "data-face": m.face, title: "select for splitting" }),
            nameEl(m, by === "face" ? ` (face ${m.face})` : ""))))));
    }));
    if (!res.total) status(`No ${by} clusters stored yet: "Re-cluster" runs a job.`);
  });
}

async function renameCluster(by, id, name) {
  await guarded(async () => {
    await api(`/v1/clusters/${by}/${id}`, json("PATCH", { name }));
    status(`Cluster ${id} renamed.`);
  });
}

async function mergeClusters() {
  const by = $("#cby").value;
  const ids = [...document.querySelectorAll("#clusters .cpick:checked")].map((b) => +b.dataset.id);
  if (ids.length < 2) return status("Select two or more clusters to merge.", "error");
  await guarded(async () => {
    const r = await api("/v1/clusters/merge", json("POST", { by, ids }));
    await loadClusters();
    status(`Merged ${ids.length} clusters into cluster ${r.id}.`);
  });
}

async function splitCluster(by, id, article) {
  const members = [...article.querySelectorAll(".mpick:checked")].map((b) => ({ id: +b.dataset.id, face: +b.dataset.face }));
  if (!members.length) return status("Select the members to move into a new cluster.", "error");
  await guarded(async () => {
    const r = await api(`/v1/clusters/${id}/split`, json("POST", { by, members }));
    await loadClusters();
    status(`Moved ${members.length} members of cluster ${id} into new cluster ${r.id}.`);
  });
}

async function recluster() {
  const by = $("#cby").value;
  await guarded(async () => {
    let job = await api("/v1/jobs", json("POST", { kind: "cluster", by }));
    while (job.status === "queued" || job.status === "running") {
      status(`Clustering by ${by}: ${job.progress.stage || job.status} ${job.progress.total ? job.progress.done + "/" + job.progress.total : ""}`);
      await new Promise((r) => setTimeout(r, 1000));
      job = await api(`/v1/jobs/${job.id}`);
    }
    status(job.status === "done" ? `Clustered: ${job.result.with_2_or_more} clusters of 2+` : `Job failed: ${job.error}`, job.status === "done" ? "" : "error");
    loadClusters();
  });
}

// -- risk ---------------------------------------------------------------------------------------
async function loadQueue() {
  await guarded(async () => {
    const res = await api("/v1/cases");
    $("#queue tbody").replaceChildren(...res.cases.map((c) => el("tr", { class: "case-row", onclick: () => openCase(c.case) },
      el("td", { class: "score" }, c.max_risk != null ? (100 * c.max_risk).toFixed(0) + "%" : ""),
      el("td", {}, String(c.case)),
      el("td", {}, `${c.size} applications, ${c.applicants} applicants`),
      el("td", { class: "muted" }, `${c.first} – ${c.last} (${c.span_days} days)`))));
    status(res.cases.length ? `${res.cases.length} cases, highest risk first` : "No cases yet.");
  });
}

async function openCase(id) {
  await guarded(async () => {
    const [c, page] = await Promise.all([api(`/v1/cases/${id}`),
      api(`/v1/cases/${id}/view`, { raw: true }).then((r) => r.text())]);
    // the engine's case page is shown in a sandboxed frame: no script in it can run
    const frame = el("iframe", { sandbox: "", title: "case " + id });
    frame.srcdoc = page;
    const rows = c.members.map((m) => el("tr", {},
      el("td", { class: "score" }, m.risk != null ? (100 * m.risk).toFixed(0) + "%" : ""),
      el("td", {}, m.application_id, el("div", { class: "muted" }, m.submitted_at)),
      el("td", { class: "muted" }, m.reasons || ""),
      el("td", {}, el("button", { type: "button", onclick: () => verdict(m.application_id, "fraud") }, "Fraud"), " ",
        el("button", { type: "button", onclick: () => verdict(m.application_id, "not_fraud") }, "Not fraud"))));
    $("#case").replaceChildren(el("h2", {}, `Case ${id}: ${c.size} applications over ${c.span_days} days`),
      el("table", { class: "members-table" }, el("tbody", {}, ...rows)), frame);
  });
}

async function verdict(app, v) {
  await guarded(async () => {
    await api(`/v1/applications/${encodeURIComponent(app)}/decision`, json("POST", { verdict: v }));
    status(`${app}: ${v.replace("_", " ")} (stored for risk training)`);
  });
}

// -- inspect ------------------------------------------------------------------------------------
async function runInspect() {
  const id = +$("#iid").value;
  if (!id) return;
  status("Inspecting…");
  await guarded(async () => {
    const [numbers, png] = await Promise.all([api(`/v1/images/${id}/inspect`),
      api(`/v1/images/${id}/inspect.png`, { raw: true }).then((r) => r.blob())]);
    $("#inspection").replaceChildren(
      el("img", { src: URL.createObjectURL(png), alt: "inspection", class: "inspect" }),
      el("dl", {}, ...["person_share", "kept_share", "scene", "keypoints", "comparable"].flatMap((k) =>
        [el("dt", {}, k.replace("_", " ")), el("dd", {}, String(numbers[k]))])),
      el("p", { class: numbers.comparable ? "" : "diff" }, numbers.comparable ? "verdict: comparable" : numbers.reasons.join("; ")));
    status("");
  });
}

// -- pages --------------------------------------------------------------------------------------
const loaders = { duplicates: loadDuplicates, clusters: loadClusters, risk: loadQueue, search: () => {}, inspect: () => {} };

function show() {
  const page = (location.hash || "#search").slice(1);
  if (!loaders[page]) return;
  document.querySelectorAll(".page").forEach((p) => p.classList.toggle("active", p.id === "page-" + page));
  document.querySelectorAll("nav a").forEach((a) => a.classList.toggle("active", a.dataset.page === page));
  if (state.key) loaders[page]();
}

function init() {
  $("#key").value = state.key;
  $("#keyform").addEventListener("submit", async (e) => { e.preventDefault(); if (await useKey($("#key").value.trim())) show(); });
  const drop = $("#drop");
  ["dragenter", "dragover"].forEach((t) => drop.addEventListener(t, (e) => { e.preventDefault(); drop.classList.add("over"); }));
  ["dragleave", "drop"].forEach((t) => drop.addEventListener(t, () => drop.classList.remove("over")));
  drop.addEventListener("drop", (e) => { e.preventDefault(); pick(e.dataTransfer.files[0]); });
  $("#file").addEventListener("change", (e) => pick(e.target.files[0]));
  ["#mode", "#k", "#minscore"].forEach((s) => $(s).addEventListener("change", runSearch));
  $("#add").addEventListener("click", addToIndex);
  $("#dreload").addEventListener("click", () => { state.dupOffset = 0; loadDuplicates(); });
  $("#dmode").addEventListener("change", () => { state.dupOffset = 0; loadDuplicates(); });
  $("#dlimit").addEventListener("change", () => { state.dupOffset = 0; loadDuplicates(); });
  $("#dprev").addEventListener("click", () => { state.dupOffset = Math.max(0, state.dupOffset - +$("#dlimit").value); loadDuplicates(); });
  $("#dnext").addEventListener("click", () => { state.dupOffset += +$("#dlimit").value; loadDuplicates(); });
  $("#bulk").addEventListener("click", bulkAccept);
  $("#creload").addEventListener("click", loadClusters);
  $("#cby").addEventListener("change", loadClusters);
  $("#crun").addEventListener("click", recluster);
  $("#cmerge").addEventListener("click", mergeClusters);
  $("#rreload").addEventListener("click", loadQueue);
  $("#igo").addEventListener("click", runInspect);
  window.addEventListener("hashchange", show);
  if (state.key) useKey(state.key).then(show); else { show(); status("Enter an API key to start."); }
}

init();
