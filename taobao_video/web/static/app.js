// The catalog page: reads /api/stats and /api/videos, plays /videos/<num_iid>.mp4. No framework, no build step.
"use strict";

const PAGE_SIZE = 60;
const $ = (id) => document.getElementById(id);
const state = { offset: 0, total: 0, request: 0 };

// ---- formatting

function clock(seconds) {
  if (seconds == null) return "?";
  const whole = Math.round(seconds);
  const h = Math.floor(whole / 3600), m = Math.floor((whole % 3600) / 60), s = whole % 60;
  const mm = h ? String(m).padStart(2, "0") : String(m);
  return (h ? h + ":" : "") + mm + ":" + String(s).padStart(2, "0");
}

function bytes(n) {
  const units = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) { n /= 1000; i += 1; }
  return (i === 0 ? n : n.toFixed(n < 10 ? 1 : 0)) + " " + units[i];
}

function hours(seconds) {
  if (seconds < 3600) return Math.round(seconds / 60) + " min";
  return (seconds / 3600).toFixed(1) + " h";
}

const dateOnly = new Intl.DateTimeFormat(undefined, { dateStyle: "medium" });
const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
const count = new Intl.NumberFormat();

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value == null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key in node && typeof value !== "string") node[key] = value;
    else node.setAttribute(key, value === true ? "" : value);
  }
  node.append(...children.filter((c) => c != null));
  return node;
}

const videoUrl = (id) => `/videos/${id}.mp4`;

// ---- filters <-> URL

function readFilters() {
  const params = new URLSearchParams();
  const q = $("q").value.trim();
  if (q) params.set("q", q);
  for (const name of ["min_duration", "max_duration"]) {
    const value = $(name).value.trim();
    if (value) params.set(name, value);
  }
  params.set("sort", $("sort").value);
  if ($("desc").checked) params.set("desc", "1");
  if ($("missing").checked) params.set("missing", "1");
  return params;
}

function restoreFilters() {
  const params = new URLSearchParams(location.search);
  if (!params.has("sort")) return;  // first visit: keep the form's defaults
  $("q").value = params.get("q") || "";
  $("min_duration").value = params.get("min_duration") || "";
  $("max_duration").value = params.get("max_duration") || "";
  $("sort").value = params.get("sort") || "downloaded_at";
  $("desc").checked = params.get("desc") === "1";
  $("missing").checked = params.get("missing") === "1";
  state.offset = Math.max(0, parseInt(params.get("offset") || "0", 10) || 0);
}

// ---- loading

async function getJson(url) {
  const response = await fetch(url, { headers: { Accept: "application/json" } });
  const body = await response.json().catch(() => ({ error: `${response.status} ${response.statusText}` }));
  if (!response.ok) throw new Error(body.error || `${response.status} ${response.statusText}`);
  return body;
}

function showMessage(text, kind) {
  const box = $("message");
  box.hidden = !text;
  box.textContent = text || "";
  box.className = "message " + (kind || "");
}

async function loadStats() {
  try {
    const stats = await getJson("/api/stats");
    $("summary").textContent = stats.videos
      ? `${count.format(stats.videos)} videos · ${bytes(stats.bytes)} · ${hours(stats.seconds)} of video`
      : "No videos yet";
  } catch (error) {
    $("summary").textContent = "";
  }
}

async function load() {
  const params = readFilters();
  const shown = new URLSearchParams(params);
  if (state.offset) shown.set("offset", state.offset);
  history.replaceState(null, "", "?" + shown.toString());
  params.set("limit", PAGE_SIZE);
  params.set("offset", state.offset);
  const mine = ++state.request;
  document.body.classList.add("loading");
  try {
    const page = await getJson("/api/videos?" + params.toString());
    if (mine !== state.request) return;  // a newer request is on its way
    state.total = page.total;
    render(page);
    showMessage("");
  } catch (error) {
    if (mine !== state.request) return;
    showMessage(error.message, "error");
  } finally {
    if (mine === state.request) document.body.classList.remove("loading");
  }
}

// ---- the grid

const thumbnails = new IntersectionObserver((entries) => {
  for (const entry of entries) {
    if (!entry.isIntersecting) continue;
    thumbnails.unobserve(entry.target);
    fillThumbnail(entry.target);
  }
}, { rootMargin: "200px" });

// The cover on disk, from this server (cover_src): the page never asks the CDN (its policy allows no other host);
// when there is none, or it fails, a frame of the local file stands in.
function fillThumbnail(box) {
  const { id, cover } = box.dataset;
  if (cover) {
    const img = el("img", { alt: "", referrerPolicy: "no-referrer", decoding: "async" });
    img.addEventListener("error", () => { img.remove(); frameThumbnail(box, id); }, { once: true });
    img.src = cover;
    box.prepend(img);
  } else {
    frameThumbnail(box, id);
  }
}

function frameThumbnail(box, id) {
  const video = el("video", { muted: true, preload: "metadata", playsInline: true, tabIndex: -1 });
  video.addEventListener("error", () => {
    video.remove();
    box.classList.add("missing");
    box.prepend(el("span", { class: "placeholder" }, "file missing"));
  }, { once: true });
  video.src = videoUrl(id) + "#t=0.5";
  box.prepend(video);
}

function card(row) {
  const when = row.downloaded_at ? new Date(row.downloaded_at) : null;
  const thumb = el("button", {
    class: "thumb", type: "button", "aria-label": `Play ${row.num_iid}`,
    "data-id": row.num_iid, "data-cover": row.cover_src || "",
  }, el("span", { class: "badge" }, clock(row.duration)));
  thumb.addEventListener("click", () => openPlayer(row));
  thumbnails.observe(thumb);
  return el("article", { class: "card", "data-id": row.num_iid },
    thumb,
    el("div", { class: "meta" },
      el("span", { class: "id" }, String(row.num_iid)),
      row.title ? el("span", { class: "title", title: row.title }, row.title) : null,
      el("span", { class: "sub media" }, mediaLine(row)),
      el("span", { class: "sub" },
        bytes(row.size_bytes),
        when ? el("time", { datetime: row.downloaded_at, title: dateTime.format(when) }, dateOnly.format(when)) : null)));
}

// "h264 · 1.0 fps · 155 kbit/s · sound": what an ad platform asks about, from the media probe.
function mediaLine(row) {
  if (!row.codec) return "not probed";
  const parts = [row.codec];
  if (row.height) parts.push(`${row.height}p`);
  if (row.fps != null) parts.push(`${row.fps.toFixed(1)} fps`);
  if (row.bitrate != null) parts.push(`${Math.round(row.bitrate / 1000)} kbit/s`);
  parts.push(row.has_audio ? "sound" : "no sound");
  return parts.join(" · ");
}

function render(page) {
  const grid = $("grid");
  grid.replaceChildren(...page.videos.map(card));
  if (!page.videos.length) {
    const filtered = [...readFilters().keys()].some((k) => k !== "sort" && k !== "desc");
    grid.append(el("p", { class: "empty" }, filtered
      ? "No videos match these filters."
      : "The catalog has no videos yet: run `taobao-video harvest` or `taobao-video daily`."));
  }
  const first = page.total ? page.offset + 1 : 0;
  const last = page.offset + page.videos.length;
  $("range").textContent = `${count.format(first)}–${count.format(last)} of ${count.format(page.total)}`;
  $("prev").disabled = page.offset <= 0;
  $("next").disabled = last >= page.total;
}

// ---- the player

function openPlayer(row) {
  const video = $("video");
  $("player-title").textContent = String(row.num_iid);
  const when = row.downloaded_at ? dateTime.format(new Date(row.downloaded_at)) : "?";
  const facts = [
    ["Duration", clock(row.duration) + (row.duration != null ? ` (${row.duration.toFixed(2)} s)` : "")],
    ["Size", `${bytes(row.size_bytes)} (${count.format(row.size_bytes)} bytes)`],
    ["Resolution", row.width && row.height ? `${row.width} × ${row.height}` : "?"],
    ["Media", mediaLine(row) + (row.container ? ` (${row.container})` : "")],
    ["Title", row.title || "?"],
    ["Seller", row.nick || "?"],
    ["Video id", row.video_id || "?"],
    ["Downloaded", when],
    ["Found with", row.api_method],
    ["Links", el("span", { class: "links" },
      el("a", { href: videoUrl(row.num_iid), download: `${row.num_iid}.mp4` }, "Download"),
      el("a", { href: `https://item.taobao.com/item.htm?id=${row.num_iid}`, target: "_blank", rel: "noreferrer noopener" },
        "Item page ↗"))],
    ["File", row.video_path],
    ["SHA-256", el("code", {}, row.sha256)],
  ];
  const wide = new Set(["File", "SHA-256"]);  // long values take a whole row
  $("details").replaceChildren(...facts.flatMap(([term, value]) =>
    [el("dt", {}, term), el("dd", { class: wide.has(term) ? "wide" : null }, value)]));
  video.src = videoUrl(row.num_iid);
  $("player").showModal();
  // A click is a user gesture, so sound is allowed; where it is not (some embedded browsers), play muted.
  video.play().catch(() => { video.muted = true; return video.play(); }).catch(() => {});
}

function closePlayer() {
  const video = $("video");
  video.pause();
  video.removeAttribute("src");
  video.load();  // drops the connection streaming the file
}

// ---- wiring

function debounce(fn, ms) {
  let timer;
  return () => { clearTimeout(timer); timer = setTimeout(fn, ms); };
}

function filtersChanged() {
  state.offset = 0;
  load();
}

document.addEventListener("DOMContentLoaded", () => {
  restoreFilters();
  const typed = debounce(filtersChanged, 250);
  for (const id of ["q", "min_duration", "max_duration"]) $(id).addEventListener("input", typed);
  for (const id of ["sort", "desc", "missing"]) $(id).addEventListener("change", filtersChanged);
  $("filters").addEventListener("submit", (event) => { event.preventDefault(); filtersChanged(); });
  $("filters").addEventListener("reset", () => setTimeout(filtersChanged, 0));
  $("prev").addEventListener("click", () => { state.offset = Math.max(0, state.offset - PAGE_SIZE); load(); });
  $("next").addEventListener("click", () => { state.offset += PAGE_SIZE; load(); });
  const dialog = $("player");
  $("close").addEventListener("click", () => dialog.close());
  dialog.addEventListener("close", closePlayer);
  dialog.addEventListener("click", (event) => { if (event.target === dialog) dialog.close(); });  // the backdrop
  loadStats();
  load();
});
