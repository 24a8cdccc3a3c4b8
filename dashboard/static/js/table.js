// The task table: one row per task on the current page, updated in place (only rows that changed, once a frame).

import { allowed } from "./store.js";
import { el, setText } from "./dom.js";
import * as fmt from "./format.js";
import { drawSparkline } from "./sparkline.js";

const ROW_ACTIONS = [
  ["start", "Start"],
  ["pause", "Pause"],
  ["resume", "Resume"],
  ["cancel", "Cancel"],
  ["retry", "Retry"],
];

export class TaskTable {
  constructor(tbody, store, onAction) {
    this.tbody = tbody;
    this.store = store;
    this.rows = new Map();
    this.dirty = new Set();
    this.frame = 0;
    tbody.addEventListener("click", (event) => {
      const button = event.target.closest("button[data-action]");
      const row = button && button.closest("tr[data-task-id]");
      if (row && !button.disabled) {
        onAction(button.dataset.action, row.dataset.taskId);
      }
    });
  }

  // Show exactly these tasks, in this order.
  show(ids) {
    this.rows.clear();
    this.dirty.clear();
    const rows = ids.map((id) => {
      const row = this.buildRow(id);
      this.rows.set(id, row);
      this.update(row, this.store.get(id));
      return row.tr;
    });
    this.tbody.replaceChildren(...rows);
  }

  has(id) {
    return this.rows.has(id);
  }

  // Redraw this task's row at the next animation frame (many events in one frame cost one redraw).
  touch(id) {
    if (!this.rows.has(id)) {
      return;
    }
    this.dirty.add(id);
    if (!this.frame) {
      this.frame = requestAnimationFrame(() => this.flush());
    }
  }

  flush() {
    this.frame = 0;
    for (const id of this.dirty) {
      const row = this.rows.get(id);
      const task = this.store.get(id);
      if (row && task) {
        this.update(row, task);
      }
    }
    this.dirty.clear();
  }

  buildRow(id) {
    const cell = (name) => el("td", { class: name });
    const row = {
      tr: el("tr", { dataset: { taskId: id } }),
      title: el("button", { type: "button", class: "link", "data-action": "details" }),
      liveroom: cell("liveroom"),
      type: cell("type"),
      status: el("span", { class: "badge" }),
      bar: el("progress", { max: "1", value: "0" }),
      percent: el("span", { class: "percent" }),
      bytes: cell("bytes"),
      segments: cell("segments"),
      speed: cell("speed"),
      eta: cell("eta"),
      spark: el("canvas", { class: "sparkline", width: "80", height: "20", "aria-hidden": "true" }),
      buttons: {},
    };
    const actions = el("td", { class: "actions" });
    for (const [action, label] of ROW_ACTIONS) {
      row.buttons[action] = el("button", { type: "button", "data-action": action, text: label });
      actions.append(row.buttons[action]);
    }
    actions.append(el("button", { type: "button", "data-action": "delete", class: "danger", text: "Delete" }));
    row.tr.append(
      el("td", { class: "title" }, row.title),
      row.liveroom,
      row.type,
      el("td", { class: "status" }, row.status),
      el("td", { class: "progress" }, row.bar, row.percent),
      row.bytes,
      row.segments,
      row.speed,
      row.eta,
      el("td", { class: "throughput" }, row.spark),
      actions,
    );
    return row;
  }

  update(row, task) {
    if (!task) {
      return;
    }
    const running = task.status === "PROCESSING";
    row.tr.dataset.status = task.status;
    setText(row.title, task.liveroom_title || "(untitled)");
    setText(row.liveroom, task.liveroom_id || "");
    setText(row.type, task.resource_type || "");
    setText(row.status, task.status);
    row.status.dataset.status = task.status;
    row.bar.value = Math.max(0, Math.min(1, Number(task.progress) || 0));
    setText(row.percent, fmt.percent(task.progress));
    setText(row.bytes, fmt.bytesOf(task.bytes_downloaded, task.bytes_total));
    const failed = task.segments_failed ? ` (${task.segments_failed} failed)` : "";
    setText(row.segments, task.segments_total ? `${task.segments_done}/${task.segments_total}${failed}` : "–");
    setText(row.speed, running ? fmt.speed(task.speed_bytes_per_second) : "–");
    setText(row.eta, running ? fmt.duration(task.eta_seconds) : "–");
    drawSparkline(row.spark, running ? this.store.samples.get(task.id) || [] : []);
    for (const [action, button] of Object.entries(row.buttons)) {
      button.disabled = !allowed(action, task.status);
    }
  }
}
