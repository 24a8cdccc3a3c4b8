// The dashboard page: login, the live task table (list pages + the session's event stream), actions and forms.

import { api, setCsrfToken, whenSessionLost } from "./api.js";
import { DetailView } from "./detail.js";
import { setText, show } from "./dom.js";
import { EventFeed } from "./feed.js";
import { Pager } from "./pager.js";
import { TaskStore } from "./store.js";
import { TaskTable } from "./table.js";

const $ = (id) => document.getElementById(id);
const store = new TaskStore();
const table = new TaskTable($("task-rows"), store, onRowAction);
const detail = new DetailView(store, notify);
const pager = new Pager(store, table, notify);
const feed = new EventFeed({
  updates: onUpdates,
  ended: (reason) => showLogin(reason === "expired" ? "Your session has expired: please log in again." : ""),
  state: setConnection,
  // Refused outright: no session any more, or the dashboard restarted. Ask which.
  refused: () =>
    api.get("/api/session").then(
      (session) => (session.user ? feed.restartSoon() : showLogin("Please log in again.", session.csrf_token)),
      () => feed.restartSoon(),
    ),
});
let noticeTimer = 0;

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
  feed.stop();
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
  pager.first();
  feed.start();
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
  pager.seen.clear();
  showLogin("You have logged out.");
}

// Live events

function onUpdates(batch) {
  let unseen = false;
  for (const update of batch) {
    const id = update.task_id;
    if (update.removed) {
      store.remove(id);
      if (table.has(id)) {
        pager.reloadSoon();
      }
      continue;
    }
    const { statusChanged } = store.apply(update);
    if (!pager.seen.has(id)) {
      pager.seen.add(id);
      unseen = true;
    }
    table.touch(id);
    if (id === detail.openTaskId) {
      detail.refresh(statusChanged);
    }
    if (statusChanged && pager.status && table.has(id)) {
      pager.reloadSoon(); // it may no longer match the status filter
    }
  }
  $("tasks").dataset.knownTasks = String(store.size);
  if (unseen) {
    pager.reloadSoon(); // a task this page has not listed: created elsewhere (CLI), or on another page
  }
}

function applyUpdate(update) {
  const { statusChanged } = store.apply(update);
  table.touch(update.task_id || update.id);
  if ((update.task_id || update.id) === detail.openTaskId) {
    detail.refresh(statusChanged);
  }
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
  pager.load();
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
  await pager.first();
}

function wireControls() {
  $("login-form").addEventListener("submit", login);
  $("logout").addEventListener("click", logout);
  $("create-form").addEventListener("submit", createTask);
  const restart = () => pager.restart($("status-filter").value, Number($("page-size").value));
  $("status-filter").addEventListener("change", restart);
  $("page-size").addEventListener("change", restart);
  $("prev-page").addEventListener("click", () => pager.go(-1));
  $("next-page").addEventListener("click", () => pager.go(1));
  $("confirm-delete").addEventListener("close", onDeleteDialogClosed);
  // Leaving the page closes its stream at once, and with it the dashboard's gRPC stream.
  window.addEventListener("pagehide", () => feed.stop());
  window.addEventListener("pageshow", (event) => {
    if (event.persisted && !$("dashboard-view").hidden) {
      feed.start(); // back from the back/forward cache: a new stream, current state first
    }
  });
}

boot();
