// The list behind the table: which page of ListTasks is shown (tokens for going back), its filter and size.

import { api } from "./api.js";
import { setText, show } from "./dom.js";

const RELOAD_DELAY_MS = 1000;
const $ = (id) => document.getElementById(id);

export class Pager {
  constructor(store, table, notify) {
    this.store = store;
    this.table = table;
    this.notify = notify;
    this.tokens = [""]; // page_token of each page visited so far; [0] is the first page
    this.index = 0;
    this.next = "";
    this.total = 0;
    this.status = "";
    this.size = 50;
    this.seen = new Set(); // every task id this page has heard of, listed or by event
    this.sequence = 0;
    this.reloadTimer = 0;
  }

  // Back to the first page (after a filter, size or login change, or a new task).
  first() {
    this.tokens = [""];
    this.index = 0;
    return this.load();
  }

  restart(status, size) {
    this.status = status;
    this.size = size;
    return this.first();
  }

  go(delta) {
    if (delta > 0 && this.next) {
      this.tokens[this.index + 1] = this.next;
      this.index += 1;
    } else if (delta < 0 && this.index > 0) {
      this.index -= 1;
    }
    return this.load();
  }

  // Reload the current page a moment from now; many calls meanwhile cost one request.
  reloadSoon() {
    if (!this.reloadTimer) {
      this.reloadTimer = setTimeout(() => {
        this.reloadTimer = 0;
        this.load();
      }, RELOAD_DELAY_MS);
    }
  }

  async load() {
    const sequence = ++this.sequence;
    const params = new URLSearchParams({ page_size: String(this.size) });
    if (this.tokens[this.index]) {
      params.set("page_token", this.tokens[this.index]);
    }
    if (this.status) {
      params.append("status", this.status);
    }
    let page;
    try {
      page = await api.get(`/api/tasks?${params}`);
    } catch (error) {
      if (error.status !== 401) {
        this.notify(error.message, true);
      }
      return;
    }
    if (sequence !== this.sequence) {
      return; // a newer request (filter, page change) has been sent since
    }
    for (const task of page.tasks) {
      this.store.apply(task);
      this.seen.add(task.id);
    }
    this.next = page.next_page_token;
    this.total = page.total_size;
    this.table.show(page.tasks.map((task) => task.id));
    $("tasks").dataset.knownTasks = String(this.store.size);
    this.render();
  }

  render() {
    const pages = Math.max(1, Math.ceil(this.total / this.size));
    setText($("page-info"), `Page ${this.index + 1} of ${pages}`);
    setText($("task-count"), `${this.total} task${this.total === 1 ? "" : "s"}`);
    $("prev-page").disabled = this.index === 0;
    $("next-page").disabled = !this.next;
    show($("empty"), this.total === 0);
  }
}
