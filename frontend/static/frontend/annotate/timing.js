// Active time. Time counts while the annotator is active: a gap between two inputs (pointer,
// key, wheel) longer than IDLE_LIMIT_MS is a pause and counts nothing. The per-mask timer and
// the session's heartbeats both read this clock, so a coffee break counts in neither.

export const IDLE_LIMIT_MS = 60_000;

export class ActivityClock {
  constructor(now = () => performance.now(), idleLimitMs = IDLE_LIMIT_MS) {
    this.now = now;
    this.idleLimitMs = idleLimitMs;
    this.last = now();
    this.activeMs = 0;
  }

  /** An input happened now. */
  touch() {
    const t = this.now();
    const gap = t - this.last;
    if (gap <= this.idleLimitMs) this.activeMs += gap;
    this.last = t;
  }

  /** Active milliseconds so far, the time since the last input included unless it is a pause. */
  totalMs() {
    const gap = this.now() - this.last;
    return this.activeMs + (gap <= this.idleLimitMs ? gap : 0);
  }

  idle() {
    return this.now() - this.last > this.idleLimitMs;
  }
}

/** The annotator session on the server: started on load, heartbeats, finished at the end. */
export class SessionTimer {
  constructor(api, clock, imageId, intervalMs = 20_000) {
    this.api = api;
    this.clock = clock;
    this.imageId = imageId;
    this.intervalMs = intervalMs;
    this.session = null;
    this.sentMs = 0;
    this.timer = null;
  }

  async start() {
    this.session = await this.api("POST", "/api/sessions/", { image: this.imageId });
    this.sentMs = this.clock.totalMs();
    this.timer = setInterval(() => this.heartbeat().catch(() => {}), this.intervalMs);
    return this.session;
  }

  pendingSeconds() {
    return Math.max(0, (this.clock.totalMs() - this.sentMs) / 1000);
  }

  async heartbeat({ keepalive = false } = {}) {
    if (!this.session || this.session.ended_at) return;
    const total = this.clock.totalMs();
    const active = (total - this.sentMs) / 1000;
    this.session = await this.api(
      "POST",
      `/api/sessions/${this.session.id}/heartbeat/`,
      { active_seconds: Math.round(active * 1000) / 1000 },
      { keepalive },
    );
    this.sentMs = total;
  }

  async finish({ keepalive = false } = {}) {
    if (!this.session || this.session.ended_at) return this.session;
    clearInterval(this.timer);
    const total = this.clock.totalMs();
    this.session = await this.api(
      "POST",
      `/api/sessions/${this.session.id}/finish/`,
      { active_seconds: Math.round(((total - this.sentMs) / 1000) * 1000) / 1000 },
      { keepalive },
    );
    this.sentMs = total;
    return this.session;
  }
}
