// The results page: pick an image, a model and a task, POST it to /detect, draw the answer.
// No framework and no build step; the server compiles this file in (server/web_assets.cpp.in).
// Paths are relative so the page also works behind a proxy that serves it under a prefix.
"use strict";

const SVG_NS = "http://www.w3.org/2000/svg";
// Bright colours that black text reads well on and that photographs seldom contain.
const PALETTE = ["#ff00ff", "#00e5ff", "#ffea00", "#00e676", "#ff9100", "#ff4081", "#c6ff00", "#40c4ff"];

const $ = (id) => document.getElementById(id);
const page = {
  models: new Map(),  // name -> the /v1/models entry
  photoUrl: null,
  lastRecord: null,
};

class ServerError extends Error {
  constructor(status, code, message, requestId) {
    super(message);
    this.status = status;
    this.code = code;
    this.requestId = requestId;
  }
}

function setState(state) {
  document.body.dataset.state = state;
}

// Every call goes through here, so that a 401 anywhere shows the API key field and every error,
// whoever produced it, is read from the server's one error shape.
async function api(path, options = {}) {
  const headers = new Headers(options.headers || {});
  const key = $("api-key").value.trim();
  if (key) headers.set("Authorization", "Bearer " + key);
  let response;
  try {
    response = await fetch(path, { ...options, headers, cache: "no-store" });
  } catch (error) {
    throw new ServerError(0, "network", "the server did not answer (" + error.message + ")", null);
  }
  const text = await response.text();
  let body = null;
  try {
    body = JSON.parse(text);
  } catch {
    body = null;
  }
  if (!response.ok) {
    if (response.status === 401) showApiKey();
    const shape = body && typeof body.error === "object" ? body.error : null;
    throw new ServerError(response.status, shape ? shape.code : "http_" + response.status,
                          shape ? shape.message : text.slice(0, 300) || response.statusText,
                          shape ? shape.request_id : response.headers.get("X-Request-Id"));
  }
  if (body === null) throw new ServerError(response.status, "bad_response", "the answer is not JSON", null);
  return body;
}

function showError(error) {
  const box = $("error");
  box.textContent = "";
  const title = document.createElement("strong");
  title.textContent = error.status ? `${error.status} ${error.code}` : error.code;
  box.append(title, ": " + error.message);
  if (error.requestId) box.append(` (request ${error.requestId})`);
  box.dataset.code = error.code;
  box.hidden = false;
  setState("error");
}

function clearError() {
  $("error").hidden = true;
  $("error").textContent = "";
}

function showApiKey() {
  const row = $("api-key-row");
  if (row.hidden) {
    row.hidden = false;
    $("api-key").focus();
  }
}

async function loadHealth() {
  try {
    const health = await api("health");
    $("server-status").textContent = "Server: " + health.status;
  } catch (error) {
    $("server-status").textContent = "Server: " + error.message;
  }
}

async function loadModels() {
  const select = $("model");
  try {
    const list = await api("v1/models");
    const previous = select.value;
    page.models.clear();
    select.textContent = "";
    for (const entry of list.data) {
      const name = entry.id ?? entry.name;
      page.models.set(name, entry);
      const option = new Option(name + (entry.family ? ` (${entry.family})` : ""), name);
      option.disabled = entry.status !== undefined && entry.status !== "ready";
      if (option.disabled) option.text += `, ${entry.status}`;
      select.add(option);
      if (entry.default && !option.disabled) select.value = name;
    }
    const kept = [...select.options].find((option) => option.value === previous && !option.disabled);
    if (kept) select.value = previous;
    clearError();
    updateTasks();
    setState("ready");
    // A server still loading lists its models before they can run: look again until they can.
    if (list.data.some((entry) => entry.status === "loading")) setTimeout(loadModels, 2000);
  } catch (error) {
    showError(error);
  }
  updateSend();
}

function updateTasks() {
  const entry = page.models.get($("model").value);
  // Only Florence-2 takes a `task`; YOLO lists its one task ("detect") and refuses the parameter.
  const tasks = entry && entry.family === "florence2" && Array.isArray(entry.tasks) ? entry.tasks : [];
  const select = $("task");
  const previous = select.value;
  select.textContent = "";
  for (const task of tasks) select.add(new Option(task, task));
  if (tasks.includes(previous)) select.value = previous;
  else if (tasks.includes("<OD>")) select.value = "<OD>";
  $("task-row").hidden = tasks.length === 0;
  updateText();
}

function updateText() {
  const entry = page.models.get($("model").value);
  const textTasks = entry && Array.isArray(entry.text_tasks) ? entry.text_tasks : [];
  const needsText = !$("task-row").hidden && textTasks.includes($("task").value);
  $("text-row").hidden = !needsText;
  $("text").required = needsText;
}

function updateSend() {
  const model = $("model").value;
  $("send").disabled = !model || !$("image").files.length;
}

function showPhoto(file) {
  if (page.photoUrl) URL.revokeObjectURL(page.photoUrl);
  page.photoUrl = URL.createObjectURL(file);
  $("photo").src = page.photoUrl;
  $("photo").alt = "The image sent: " + file.name;
  page.lastRecord = null;
  clearResult();
  $("result").hidden = false;
}

function clearResult() {
  const overlay = $("overlay");
  for (const node of [...overlay.childNodes]) {
    if (node.nodeName !== "title") node.remove();
  }
  $("detections").hidden = true;
  $("detections").tBodies[0].textContent = "";
  $("answer-text").hidden = true;
  $("summary").textContent = "";
  $("timings").textContent = "";
}

function colourFor(label) {
  let hash = 0;
  for (const ch of label) hash = (hash * 31 + ch.codePointAt(0)) >>> 0;
  return PALETTE[hash % PALETTE.length];
}

// Every shape of a record: YOLO and Florence-2 boxes from `detections`; Florence-2 polygons and OCR
// quad boxes from `result`, where transformers' post-processing puts them.
function shapesOf(record) {
  const shapes = [];
  const scored = record.scores !== null;  // Florence-2 records say `"scores": null` when there are none
  for (const d of record.detections || []) {
    shapes.push({ kind: "box", label: d.label, score: scored ? d.score : null, points: d.box });
  }
  const result = record.result;
  if (result && typeof result === "object") {
    const polygonLabels = result.polygons_labels ?? result.labels ?? [];
    (result.polygons || []).forEach((parts, i) => {
      for (const points of parts) {
        shapes.push({ kind: "polygon", label: polygonLabels[i] ?? "", score: null, points });
      }
    });
    (result.quad_boxes || []).forEach((points, i) => {
      shapes.push({ kind: "quad", label: (result.labels || [])[i] ?? "", score: null, points });
    });
  }
  return shapes;
}

function svg(name, attributes) {
  const node = document.createElementNS(SVG_NS, name);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, String(value));
  return node;
}

function tagText(shape) {
  const score = shape.score === null ? "" : " " + shape.score.toFixed(2);
  return (shape.label || shape.kind) + score;
}

// Tags are sized in screen pixels: the viewBox is the image's pixel grid, shown scaled.
function drawShapes(record, shapes) {
  const overlay = $("overlay");
  overlay.setAttribute("viewBox", `0 0 ${record.width} ${record.height}`);
  overlay.setAttribute("preserveAspectRatio", "none");
  const unit = record.width / Math.max(1, $("photo").clientWidth);
  const fontSize = 14 * unit;
  shapes.forEach((shape, index) => {
    const colour = colourFor(shape.label || shape.kind);
    const p = shape.points.map(Number);
    const common = { class: "shape", stroke: colour, "data-index": index, "data-kind": shape.kind,
                     "data-label": shape.label };
    let left = Infinity;
    let top = Infinity;
    let element;
    if (shape.kind === "box") {
      left = Math.min(p[0], p[2]);
      top = Math.min(p[1], p[3]);
      element = svg("rect", { ...common, x: left, y: top, width: Math.abs(p[2] - p[0]),
                              height: Math.abs(p[3] - p[1]) });
    } else {
      const pairs = [];
      for (let k = 0; k + 1 < p.length; k += 2) {
        pairs.push(`${p[k]},${p[k + 1]}`);
        left = Math.min(left, p[k]);
        top = Math.min(top, p[k + 1]);
      }
      element = svg("polygon", { ...common, points: pairs.join(" ") });
    }
    if (shape.score !== null) element.setAttribute("data-score", shape.score);
    overlay.append(element);
    if (!Number.isFinite(left)) return;
    const text = tagText(shape);
    const height = fontSize * 1.3;
    const width = fontSize * 0.62 * text.length + fontSize * 0.6;
    // Above the shape when there is room, so the tag never hides the shape's own top edge.
    const y = top - height - 2 * unit >= 0 ? top - height - 2 * unit : top + 2 * unit;
    const group = svg("g", { class: "tag", "data-index": index });
    group.append(svg("rect", { x: left, y, width, height, fill: colour }));
    const label = svg("text", { x: left + fontSize * 0.3, y: y + fontSize * 1.0, "font-size": fontSize, fill: "#000" });
    label.textContent = text;
    group.append(label);
    overlay.append(group);
  });
}

function formatPoints(points) {
  return points.map((v) => Number(v).toFixed(1)).join(", ");
}

function render(record) {
  clearResult();
  const shapes = shapesOf(record);
  drawShapes(record, shapes);
  const body = $("detections").tBodies[0];
  shapes.forEach((shape, index) => {
    const row = body.insertRow();
    row.dataset.index = index;
    for (const value of [shape.kind, shape.label, shape.score === null ? "–" : shape.score.toFixed(4),
                         formatPoints(shape.points)]) {
      row.insertCell().textContent = value;
    }
  });
  $("detections").hidden = shapes.length === 0;
  if (typeof record.result === "string") {
    $("answer-text").textContent = record.result;
    $("answer-text").hidden = false;
  }
  const what = record.task ? `${record.task} by ${record.model}` : `${shapes.length} detections by ${record.model}`;
  $("summary").textContent = `${what}, ${record.width}×${record.height} pixels, request ${record.request_id}`;
  const timings = $("timings");
  for (const [group, values] of [["image", record.timings], ["request", record.request_timings]]) {
    for (const [key, value] of Object.entries(values || {})) {
      if (typeof value !== "number") continue;
      const term = document.createElement("dt");
      term.textContent = `${group} ${key.replace(/_ms$/, "").replaceAll("_", " ")}`;
      const detail = document.createElement("dd");
      detail.textContent = key.endsWith("_ms") ? `${value.toFixed(1)} ms` : String(value);
      detail.dataset.key = `${group}.${key}`;
      timings.append(term, detail);
    }
  }
}

async function send(event) {
  event.preventDefault();
  clearError();
  const file = $("image").files[0];
  if (!file) {
    showError(new ServerError(0, "missing_image", "choose an image first", null));
    return;
  }
  const form = new FormData();
  form.append("image", file, file.name);
  form.append("model", $("model").value);
  if (!$("task-row").hidden) form.append("task", $("task").value);
  if (!$("text-row").hidden) form.append("text", $("text").value);
  setState("sending");
  $("send").disabled = true;
  try {
    const record = await api("detect", { method: "POST", body: form });
    page.lastRecord = record;
    render(record);
    $("result").hidden = false;
    setState("done");
  } catch (error) {
    page.lastRecord = null;
    clearResult();  // the image stays; the answer drawn over it was the previous request's
    showError(error);
  } finally {
    updateSend();
  }
}

function setUpDropZone() {
  const zone = $("drop-zone");
  zone.addEventListener("dragover", (event) => {
    event.preventDefault();
    zone.classList.add("dragging");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("dragging"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("dragging");
    if (!event.dataTransfer.files.length) return;
    $("image").files = event.dataTransfer.files;
    $("image").dispatchEvent(new Event("change"));
  });
}

document.addEventListener("DOMContentLoaded", () => {
  setState("loading");
  setUpDropZone();
  $("image").addEventListener("change", () => {
    if ($("image").files.length) showPhoto($("image").files[0]);
    updateSend();
  });
  $("model").addEventListener("change", () => {
    updateTasks();
    updateSend();
  });
  $("task").addEventListener("change", updateText);
  $("api-key-row").addEventListener("submit", (event) => {
    event.preventDefault();
    loadModels();
  });
  $("request").addEventListener("submit", send);
  // Redraw when the image changes size on screen, so that tags stay readable.
  new ResizeObserver(() => {
    if (page.lastRecord) render(page.lastRecord);
  }).observe($("photo"));
  loadHealth();
  loadModels();
});
