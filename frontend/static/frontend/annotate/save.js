// Saving masks so that none is ever lost. Every accept first goes into a pending list kept in
// localStorage, then to the server; a network error or a server error (5xx) leaves it there and
// it is sent again later, with the same client_id, so the server stores it once however many
// tries it took. A rejected save (4xx) stays visible with the server's reason until the
// annotator discards it. Edits of saved masks carry the version they started from; a 409 means
// someone changed the mask meanwhile and is reported, not retried.

const STORAGE_KEY = "sade-pending-saves-v1";
const MAX_DELAY_MS = 30_000;

function readAll() {
  try {
    return JSON.parse(localStorage.getItem(STORAGE_KEY) || "[]");
  } catch {
    return [];
  }
}

export class SaveQueue {
  constructor({ api, imageId, onSaved, onConflict, onChange, retryBaseMs = 1000 }) {
    this.api = api;
    this.imageId = imageId;
    this.onSaved = onSaved;
    this.onConflict = onConflict;
    this.onChange = onChange;
    this.retryBaseMs = retryBaseMs;
    this.items = readAll().filter((item) => item.imageId === imageId);
    for (const item of this.items) item.state = "retrying";
    this.inFlight = new Set();
    this.timers = new Map();
    window.addEventListener("online", () => this.flush());
  }

  persist() {
    const others = readAll().filter((item) => item.imageId !== this.imageId);
    localStorage.setItem(STORAGE_KEY, JSON.stringify([...others, ...this.items]));
    this.onChange();
  }

  /** Queues a new mask (POST /api/masks/); a second add with the same client_id is ignored. */
  create(body) {
    if (this.items.some((item) => item.key === body.client_id)) return;
    this.push({ key: body.client_id, kind: "create", body });
  }

  /** Queues an edit of a saved mask (PATCH with the version it started from). */
  update(maskId, body) {
    this.push({ key: `edit-${maskId}-${body.version}`, kind: "update", maskId, body });
  }

  push(item) {
    Object.assign(item, { imageId: this.imageId, state: "saving", tries: 0, error: "", createdAt: Date.now() });
    this.items.push(item);
    this.persist();
    this.send(item);
  }

  flush() {
    for (const item of this.items) {
      if (item.state !== "rejected") this.send(item);
    }
  }

  discard(key) {
    this.items = this.items.filter((item) => item.key !== key);
    this.persist();
  }

  async send(item) {
    if (this.inFlight.has(item.key)) return;
    clearTimeout(this.timers.get(item.key));
    this.inFlight.add(item.key);
    item.tries += 1;
    let again = false;
    try {
      const saved =
        item.kind === "create"
          ? await this.api("POST", "/api/masks/", item.body)
          : await this.api("PATCH", `/api/masks/${item.maskId}/`, item.body);
      this.discard(item.key);
      this.onSaved(saved, item);
    } catch (error) {
      if (error.offline) {
        item.state = "retrying";
        item.error = error.message;
        const delay = Math.min(MAX_DELAY_MS, this.retryBaseMs * 2 ** Math.min(item.tries - 1, 5));
        this.timers.set(item.key, setTimeout(() => this.send(item), delay));
        this.persist();
      } else if (error.status === 409 || (item.kind === "update" && error.status === 404)) {
        this.discard(item.key);
        this.onConflict(item, error);
      } else if (error.status === 400 && item.body.session && /session/.test(error.message)) {
        // The session ended (another tab finished it): the mask still counts, without it.
        delete item.body.session;
        again = true;
      } else {
        item.state = "rejected";
        item.error = error.message;
        this.persist();
      }
    } finally {
      this.inFlight.delete(item.key);
    }
    if (again) await this.send(item);
  }
}
