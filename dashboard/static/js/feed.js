// The session's live task events (GET /api/events) as callbacks; the browser reconnects by itself after a drop,
// and the server sends every task's current state first on each connection.

const RECONNECT_DELAY_MS = 2000;

export class EventFeed {
  // handlers: updates(list), ended(reason) for "expired"/"logout", state("live"|"connecting"|"offline"),
  // refused() when the server turned the stream down outright (the page then asks who is logged in).
  constructor(handlers) {
    this.handlers = handlers;
    this.source = null;
    this.retryTimer = 0;
  }

  start() {
    this.stop();
    this.handlers.state("connecting");
    const source = new EventSource("/api/events");
    this.source = source;
    source.addEventListener("open", () => this.handlers.state("live"));
    source.addEventListener("tasks", (message) => this.handlers.updates(JSON.parse(message.data)));
    source.addEventListener("end", (message) => {
      const { reason } = JSON.parse(message.data);
      if (reason === "expired" || reason === "logout") {
        this.stop();
        this.handlers.ended(reason);
      } else {
        this.handlers.state("connecting"); // the server dropped its upstream stream: the browser reconnects
      }
    });
    source.addEventListener("error", () => {
      if (this.source !== source) {
        return;
      }
      if (source.readyState !== EventSource.CLOSED) {
        this.handlers.state("connecting");
        return;
      }
      this.stop();
      this.handlers.refused();
    });
  }

  // Try again a little later (after a refusal that turned out not to mean "logged out").
  restartSoon() {
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.start(), RECONNECT_DELAY_MS);
  }

  stop() {
    clearTimeout(this.retryTimer);
    if (this.source) {
      this.source.close();
      this.source = null;
    }
    this.handlers.state("offline");
  }
}
