// The task detail dialog: every field, the failure records (retry, abandon) and the video record.

import { api } from "./api.js";
import { el, safeLink, setText, show } from "./dom.js";
import * as fmt from "./format.js";
import { recordingView } from "./player.js";

export class DetailView {
  constructor(store, notify) {
    this.store = store;
    this.notify = notify;
    this.dialog = document.getElementById("detail");
    this.taskId = null;
    this.loading = null;
    document.getElementById("detail-close").addEventListener("click", () => this.dialog.close());
    this.dialog.addEventListener("close", () => {
      this.taskId = null;
    });
    document.getElementById("failure-rows").addEventListener("click", (event) => {
      const button = event.target.closest("button[data-failure-action]");
      if (button && !button.disabled) {
        this.failureAction(button.dataset.failureAction, button.closest("tr").dataset.failureId, button);
      }
    });
  }

  get openTaskId() {
    return this.dialog.open ? this.taskId : null;
  }

  async open(taskId) {
    this.taskId = taskId;
    this.renderTask(this.store.get(taskId) || { id: taskId });
    if (!this.dialog.open) {
      this.dialog.showModal();
    }
    await this.reload();
  }

  // Fetch the records again (after a status change of the open task, or an action on a failure).
  async reload() {
    const taskId = this.taskId;
    if (!taskId) {
      return;
    }
    try {
      const detail = await api.get(`/api/tasks/${encodeURIComponent(taskId)}`);
      if (taskId !== this.taskId) {
        return; // another task was opened meanwhile
      }
      this.store.apply(detail.task);
      this.renderTask(this.store.get(taskId));
      this.renderFailures(detail.failures, detail.failures_total);
      this.renderVideos(detail.videos);
      this.dialog.dataset.loaded = taskId;
    } catch (error) {
      this.notify(error.message, true);
    }
  }

  // A live update of the open task: redraw its fields; a new status may mean new records.
  refresh(statusChanged) {
    if (!this.openTaskId) {
      return;
    }
    this.renderTask(this.store.get(this.taskId));
    if (statusChanged) {
      this.reload();
    }
  }

  renderTask(task) {
    setText(document.getElementById("detail-title"), task.liveroom_title || "(untitled)");
    const rows = [
      ["Status", task.status || "–"],
      ["Progress", `${fmt.percent(task.progress)} · ${fmt.bytesOf(task.bytes_downloaded, task.bytes_total)}`],
      ["Segments", `${task.segments_done || 0} done, ${task.segments_failed || 0} failed, ${task.segments_total || 0} total`],
      ["Type", task.resource_type || "–"],
      ["Liveroom", task.liveroom_id || "–"],
      ["Liveroom URL", safeLink(task.liveroom_url)],
      ["Resource URL", safeLink(task.resource_url)],
      ["Video id", task.video_id || "–"],
      ["Task id", task.id],
      ["Retries", String(task.retry_count || 0)],
      ["Last error", task.last_error || "–"],
      ["Created", fmt.time(task.create_time)],
      ["Completed", fmt.time(task.complete_time)],
    ];
    const fields = document.getElementById("detail-fields");
    fields.replaceChildren(...rows.flatMap(([name, value]) => [el("dt", { text: name }), el("dd", {}, value)]));
    fields.dataset.status = task.status || "";
  }

  renderFailures(failures, total) {
    show(document.getElementById("failures-empty"), failures.length === 0);
    show(document.getElementById("failures-wrap"), failures.length > 0);
    setText(document.getElementById("failures-count"), total ? `(${total})` : "");
    const rows = failures.map((failure) => {
      const open = failure.status === "PENDING";
      return el(
        "tr",
        { dataset: { failureId: failure.id, status: failure.status } },
        el("td", { text: failure.segment_index < 0 ? "whole file" : String(failure.segment_index) }),
        el("td", { class: "url", text: failure.segment_url }),
        el("td", { text: `${failure.error_type}: ${failure.error_message}` }),
        el("td", { text: failure.http_status ? String(failure.http_status) : "–" }),
        el("td", { text: String(failure.attempts) }),
        el("td", {}, el("span", { class: "badge", dataset: { status: failure.status }, text: failure.status })),
        el(
          "td",
          { class: "actions" },
          el("button", { type: "button", "data-failure-action": "retry", text: "Retry",
            disabled: failure.status === "RESOLVED" || failure.status === "RETRYING" }),
          el("button", { type: "button", "data-failure-action": "abandon", text: "Abandon", disabled: !open }),
        ),
      );
    });
    document.getElementById("failure-rows").replaceChildren(...rows);
  }

  renderVideos(videos) {
    show(document.getElementById("videos-empty"), videos.length === 0);
    const fields = document.getElementById("video-fields");
    fields.replaceChildren(
      ...videos.flatMap((video) =>
        [
          ["Format", video.format],
          ["File", video.file_path],
          ["Size", fmt.bytes(video.file_size)],
          ["Segments", String(video.segment_count)],
          ["Duration", fmt.duration(video.duration_seconds)],
          ["SHA-256", video.sha256 || "–"],
          ["Recorded", fmt.time(video.create_time)],
        ].flatMap(([name, value]) => [el("dt", { text: name }), el("dd", { text: value })]),
      ),
    );
    // The same record drawn again keeps its player (redrawing would stop what is playing).
    const key = videos.map((video) => `${video.id}:${video.file_path}`).join(",");
    const recordings = document.getElementById("video-recordings");
    if (recordings.dataset.key !== key) {
      recordings.replaceChildren(...videos.map(recordingView));
      recordings.dataset.key = key;
    }
  }

  async failureAction(action, failureId, button) {
    button.disabled = true;
    try {
      const { failure } = await api.post(`/api/failures/${encodeURIComponent(failureId)}/${action}`, {
        task_id: this.taskId,
      });
      this.notify(`Failure of segment ${failure.segment_index}: ${failure.status}`);
    } catch (error) {
      this.notify(error.message, true);
    }
    await this.reload();
  }
}
