// The dashboard page: login, the live task table (list pages + the session's event stream), actions and forms.

import { api, setCsrfToken, whenSessionLost } from "./api.js";
import { DetailView } from "./detail.js";
import { setText, show } from "./dom.js";
import { TaskStore } from "./store.js";
import { TaskTable } from "./table.js";

const $ = (id) => document.getElementById(id);
const RECONNECT_DELAY_MS = 2000;
const RELOAD_DELAY_MS = 1000;

const store = new TaskStore();
const table = new TaskTable($("task-rows"), store, onRowAction);
const detail = new DetailView(store, notify);
const view = { tokens: [""], index: 0, next: "", total: 0, status: "", size: 50, seen: new Set() };
let feed = null;
let reloadTimer = 0;
let noticeTimer = 0;
let loadSequence = 0;

function notify(message, isError = false) {
  const notice = $("notice");
  setText(notice, message);
  notice.dataset.kind = isError ? "error" : "info";
  show(notice, true);
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => show(notice, false), 6000);
}

function setConnection(state) {
  const badge = $("connection");
  badge.dataset.state = state;
  setText(badge, state);
}

// Session

async function boot() {
  whenSessionLost(() => showLogin("Your session has ended: please log in again."));
  wireControls();
  try {
    const session = await api.get("/api/session");
    if (session.user) {
      enterDashboard(session);
    } else {
      showLogin("", session.csrf_token);
    }
  } catch (error) {
    notify(`The dashboard is not answering: ${error.message}`, true);
  }
}

function showLogin(message, csrfToken) {
  stopFeed();
  if (detail.openTaskId) {
    detail.dialog.close();
  }
  show($("dashboard-view"), false);
  show($("login-view"), true);
  show($("logout"), false);
  setText($("whoami"), "");
  setText($("login-error"), message || "");
  if (csrfToken) {
    setCsrfToken(csrfToken);
  } else {
    // A new login token (the old session's token is worthless now).
    api.get("/api/session").then((session) => setCsrfToken(session.csrf_token), () => {});
  }
}

function enterDashboard(session) {
  setCsrfToken(session.csrf_token);
  setText($("whoami"), session.user.username);
  show($("logout"), true);
  show($("login-view"), false);
  show($("dashboard-view"), true);
  view.tokens = [""];
  view.index = 0;
  loadPage();
  startFeed();
}

async function login(event) {
  event.preventDefault();
  const form = event.target;
  setText($("login-error"), "");
  try {
    const session = await api.post("/api/login", { email: form.email.value, password: form.password.value });
    form.reset();
    enterDashboard(session);
  } catch (error) {
    setText($("login-error"), error.message);
    if (error.code === "CSRF_FAILED") {
      showLogin(`${error.message}: try again.`);
    }
  }
}

async function logout() {
  try {
    await api.post("/api/logout");
  } catch (error) {
    notify(error.message, true);
  }
  store.tasks.clear();
  view.seen.clear();
  showLogin("You have logged out.");
}

// Live events

function startFeed() {
  stopFeed();
  setConnection("connecting");
  const source = new EventSource("/api/events");
  feed = source;
  source.addEventListener("open", () => setConnection("live"));
  source.addEventListener("tasks", (message) => onUpdates(JSON.parse(message.data)));
  source.addEventListener("end", (message) => {
    const { reason } = JSON.parse(message.data);
    if (reason === "expired" || reason === "logout") {
      showLogin(reason === "expired" ? "Your session has expired: please log in again." : "");
    } else {
      setConnection("connecting"); // the browser reconnects by itself; the server sends the current state first
    }
  });
  source.addEventListener("error", () => {
    if (feed !== source) {
      return;
    }
    if (source.readyState !== EventSource.CLOSED) {
      setConnection("connecting");
      return;
    }
    // Refused outright (no session any more, or the dashboard restarted): find out which.
    setConnection("offline");
    stopFeed();
    api.get("/api/session").then(
      (session) => (session.user ? setTimeout(startFeed, RECONNECT_DELAY_MS) : showLogin("Please log in again.", session.csrf_token)),
      () => setTimeout(startFeed, RECONNECT_DELAY_MS),
    );
  });
}

function stopFeed() {
  if (feed) {
    feed.close();
    feed = null;
  }
  setConnection("offline");
}

function onUpdates(batch) {
  let unseen = false;
  for (const update of batch) {
    const id = update.task_id;
    if (update.removed) {
      store.remove(id);
      if (table.has(id)) {
        scheduleReload();
      }
      continue;
    }
    const { statusChanged } = store.apply(update);
    if (!view.seen.has(id)) {
      view.seen.add(id);
      unseen = true;
    }
    table.touch(id);
    if (id === detail.openTaskId) {
      detail.refresh(statusChanged);
    }
    if (statusChanged && view.status && table.has(id)) {
      scheduleReload(); // it may no longer match the status filter
    }
  }
  $("tasks").dataset.knownTasks = String(store.size);
  if (unseen) {
    scheduleReload(); // a task this page has not listed: created elsewhere (CLI), or on another page
  }
}

function applyUpdate(update) {
  const { statusChanged } = store.apply(update);
  table.touch(update.task_id || update.id);
  if ((update.task_id || update.id) === detail.openTaskId) {
    detail.refresh(statusChanged);
  }
}

// The list

function scheduleReload() {
  if (!reloadTimer) {
    reloadTimer = setTimeout(() => {
      reloadTimer = 0;
      loadPage();
    }, RELOAD_DELAY_MS);
  }
}

async function loadPage() {
  const sequence = ++loadSequence;
  const params = new URLSearchParams({ page_size: String(view.size) });
  if (view.tokens[view.index]) {
    params.set("page_token", view.tokens[view.index]);
  }
  if (view.status) {
    params.append("status", view.status);
  }
  let page;
  try {
    page = await api.get(`/api/tasks?${params}`);
  } catch (error) {
    if (error.status !== 401) {
      notify(error.message, true);
    }
    return;
  }
  if (sequence !== loadSequence) {
    return; // a newer request (filter, page change) has already been sent
  }
  for (const task of page.tasks) {
    store.apply(task);
    view.seen.add(task.id);
  }
  view.next = page.next_page_token;
  view.total = page.total_size;
  table.show(page.tasks.map((task) => task.id));
  $("tasks").dataset.knownTasks = String(store.size);
  renderPager();
}

function renderPager() {
  const pages = Math.max(1, Math.ceil(view.total / view.size));
  setText($("page-info"), `Page ${view.index + 1} of ${pages}`);
  setText($("task-count"), `${view.total} task${view.total === 1 ? "" : "s"}`);
  $("prev-page").disabled = view.index === 0;
  $("next-page").disabled = !view.next;
  show($("empty"), view.total === 0);
}

function goToPage(delta) {
  if (delta > 0 && view.next) {
    view.tokens[view.index + 1] = view.next;
    view.index += 1;
  } else if (delta < 0 && view.index > 0) {
    view.index -= 1;
  }
  loadPage();
}

function restartList() {
  view.status = $("status-filter").value;
  view.size = Number($("page-size").value);
  view.tokens = [""];
  view.index = 0;
  loadPage();
}

// Actions

async function onRowAction(action, id) {
  if (action === "details") {
    await detail.open(id);
    return;
  }
  if (action === "delete") {
    confirmDelete(id);
    return;
  }
  try {
    const { task } = await api.post(`/api/tasks/${encodeURIComponent(id)}/${action}`);
    applyUpdate(task);
  } catch (error) {
    notify(error.message, true);
  }
}

function confirmDelete(id) {
  const dialog = $("confirm-delete");
  const task = store.get(id) || {};
  setText($("confirm-name"), task.liveroom_title || id);
  $("delete-files").checked = false;
  dialog.returnValue = "";
  dialog.dataset.taskId = id;
  dialog.showModal();
}

async function onDeleteDialogClosed() {
  const dialog = $("confirm-delete");
  const id = dialog.dataset.taskId;
  if (dialog.returnValue !== "delete" || !id) {
    return;
  }
  const files = $("delete-files").checked;
  try {
    await api.delete(`/api/tasks/${encodeURIComponent(id)}?delete_files=${files}`);
    store.remove(id);
    notify("Task deleted.");
  } catch (error) {
    notify(error.message, true);
  }
  loadPage();
}

async function createTask(event) {
  event.preventDefault();
  const form = event.target;
  const body = {};
  for (const name of ["resource_url", "resource_type", "liveroom_id", "liveroom_title", "liveroom_url", "video_id"]) {
    body[name] = form.elements[name].value;
    form.elements[name].removeAttribute("aria-invalid");
  }
  setText($("create-error"), "");
  let task;
  try {
    task = (await api.post("/api/tasks", body)).task;
  } catch (error) {
    setText($("create-error"), error.message);
    for (const { field } of error.fields || []) {
      if (form.elements[field]) {
        form.elements[field].setAttribute("aria-invalid", "true");
      }
    }
    return;
  }
  store.apply(task);
  const start = form.elements.start.checked;
  form.reset(); // created: a second submit would make a second task
  notify("Task created.");
  if (start) {
    await onRowAction("start", task.id);
  }
  view.tokens = [""];
  view.index = 0;
  await loadPage();
}

function wireControls() {
  $("login-form").addEventListener("submit", login);
  $("logout").addEventListener("click", logout);
  $("create-form").addEventListener("submit", createTask);
  $("status-filter").addEventListener("change", restartList);
  $("page-size").addEventListener("change", restartList);
  $("prev-page").addEventListener("click", () => goToPage(-1));
  $("next-page").addEventListener("click", () => goToPage(1));
  $("confirm-delete").addEventListener("close", onDeleteDialogClosed);
  // Leaving the page closes its stream at once, and with it the dashboard's gRPC stream.
  window.addEventListener("pagehide", stopFeed);
  window.addEventListener("pageshow", (event) => {
    if (event.persisted && !$("dashboard-view").hidden) {
      startFeed(); // back from the back/forward cache: a new stream, current state first
    }
  });
}

boot();
