// What the page knows about each task: the newest of what the list returned and what the event stream said.

const MAX_SAMPLES = 60; // about a minute of throughput at one event a second

export const ACTIONS_BY_STATUS = {
  start: ["PENDING", "CANCELLED"],
  pause: ["PROCESSING"],
  resume: ["PAUSED"],
  cancel: ["PENDING", "PROCESSING", "PAUSED"],
  retry: ["FAILED", "PARTIAL_COMPLETED"],
};

export function allowed(action, status) {
  return (ACTIONS_BY_STATUS[action] || []).includes(status);
}

function stamp(update) {
  return Date.parse(update.event_time || update.update_time || "") || 0;
}

export class TaskStore {
  constructor() {
    this.tasks = new Map();
    this.samples = new Map();
  }

  get size() {
    return this.tasks.size;
  }

  get(id) {
    return this.tasks.get(id);
  }

  // Merge a task (from the list) or an event (from the stream). Returns what changed, for the caller to redraw.
  apply(update) {
    const id = update.task_id || update.id;
    const known = this.tasks.get(id);
    // A list answer can be older than an event already shown: never let it move a task backwards.
    if (known && !update.event_time && stamp(known) > stamp(update)) {
      Object.assign(known, pick(update, ["liveroom_id", "liveroom_title", "liveroom_url", "resource_url",
        "resource_type", "video_id", "create_time", "retry_count", "last_error"]));
      return { isNew: false, statusChanged: false };
    }
    const merged = Object.assign(known || { id }, update, { id });
    this.tasks.set(id, merged);
    if (update.event_time && merged.status === "PROCESSING") {
      this.sample(id, Number(update.speed_bytes_per_second) || 0);
    }
    return { isNew: !known, statusChanged: !known || known.status !== update.status };
  }

  sample(id, value) {
    let series = this.samples.get(id);
    if (!series) {
      series = [];
      this.samples.set(id, series);
    }
    series.push(value);
    if (series.length > MAX_SAMPLES) {
      series.shift();
    }
  }

  remove(id) {
    this.tasks.delete(id);
    this.samples.delete(id);
  }
}

function pick(source, names) {
  const out = {};
  for (const name of names) {
    if (name in source) {
      out[name] = source[name];
    }
  }
  return out;
}
