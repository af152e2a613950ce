// The canvas: drawing the image and every layer in the view's transform, and turning pointer
// input into the app's actions. A left click adds a + point, a right click (or Alt/Shift +
// click) a − point; dragging draws a box; with the brush or the eraser, dragging paints. Space +
// drag or the middle button pans, the wheel zooms around the pointer. Clicks outside the image
// are ignored.

const DRAG_THRESHOLD_PX = 5;

export class CanvasController {
  constructor(app) {
    this.app = app;
    this.canvas = app.canvas;
    this.ctx = this.canvas.getContext("2d");
    this.view = app.view;
    this.frame = null;
    this.down = null; // the gesture under way: {kind, ...}
    this.pointer = null; // last pointer position in image coordinates
    this.spaceHeld = false;
    this.bind();
  }

  bind() {
    const c = this.canvas;
    c.addEventListener("pointerdown", (e) => this.pointerDown(e));
    c.addEventListener("pointermove", (e) => this.pointerMove(e));
    c.addEventListener("pointerup", (e) => this.pointerUp(e));
    c.addEventListener("pointercancel", () => this.cancel());
    c.addEventListener("pointerleave", () => {
      this.pointer = null;
      this.app.hover.hide();
      this.render();
    });
    c.addEventListener("contextmenu", (e) => e.preventDefault());
    c.addEventListener("wheel", (e) => {
      e.preventDefault();
      const rect = c.getBoundingClientRect();
      this.view.zoomAt(e.clientX - rect.left, e.clientY - rect.top, Math.exp(-e.deltaY * 0.0015));
      this.render();
    }, { passive: false });
    window.addEventListener("keydown", (e) => {
      if (e.code === "Space" && !/^(INPUT|SELECT|TEXTAREA|BUTTON)$/.test(e.target.tagName)) {
        this.spaceHeld = true;
        e.preventDefault();
      }
    });
    window.addEventListener("keyup", (e) => {
      if (e.code === "Space") this.spaceHeld = false;
    });
    new ResizeObserver(() => {
      if (this.view.resize() && !this.view.moved) this.view.fit();
      this.renderNow();
    }).observe(c);
  }

  pointerDown(event) {
    this.canvas.focus({ preventScroll: true });
    const [x, y] = this.view.toImage(event);
    const tool = this.app.tool;
    this.canvas.setPointerCapture(event.pointerId);
    if (event.button === 1 || this.spaceHeld) {
      this.down = { kind: "pan", cx: event.clientX, cy: event.clientY };
      return;
    }
    if (tool === "prompt" && (event.ctrlKey || event.metaKey) && event.button === 0) {
      this.app.selectAt(Math.floor(x), Math.floor(y), event.shiftKey);
      return;
    }
    if (tool === "prompt") {
      const negative = event.button === 2 || event.altKey || event.shiftKey;
      this.down = { kind: "prompt", cx: event.clientX, cy: event.clientY, x, y, negative, dragging: false };
      return;
    }
    if (!this.view.inside(x, y)) {
      this.app.ignoredOutside();
      return;
    }
    const value = tool === "brush" && event.button !== 2 ? 1 : 0;
    this.down = { kind: "stroke" };
    this.app.editor.beginStroke(x, y, this.app.brushRadius(), value);
    this.render();
  }

  pointerMove(event) {
    const [x, y] = this.view.toImage(event);
    this.pointer = [x, y];
    const d = this.down;
    if (d && d.kind === "pan") {
      this.view.panBy(event.clientX - d.cx, event.clientY - d.cy);
      d.cx = event.clientX;
      d.cy = event.clientY;
    } else if (d && d.kind === "prompt") {
      if (!d.negative && Math.hypot(event.clientX - d.cx, event.clientY - d.cy) > DRAG_THRESHOLD_PX) {
        d.dragging = true;
        d.x1 = x;
        d.y1 = y;
      }
    } else if (d && d.kind === "stroke") {
      const clamped = [Math.min(Math.max(x, 0), this.view.w), Math.min(Math.max(y, 0), this.view.h)];
      this.app.editor.extendStroke(...clamped);
    } else if (!d && this.app.tool === "prompt" && this.view.inside(x, y)) {
      this.app.hover.schedule(Math.floor(x), Math.floor(y));
    } else if (!d) {
      this.app.hover.hide();
    }
    this.render();
  }

  pointerUp(event) {
    const d = this.down;
    this.down = null;
    if (!d) return;
    if (d.kind === "stroke") {
      this.app.editor.endStroke();
    } else if (d.kind === "prompt" && d.dragging) {
      this.app.boxDrawn(this.boxOf(d), performance.now());
    } else if (d.kind === "prompt") {
      const clickedAt = performance.now();
      const [x, y] = this.view.toImage(event);
      if (!this.view.inside(x, y)) this.app.ignoredOutside();
      else this.app.clicked(Math.floor(x), Math.floor(y), d.negative ? 0 : 1, clickedAt);
    }
    this.render();
  }

  cancel() {
    if (this.down && this.down.kind === "stroke") this.app.editor.endStroke();
    this.down = null;
    this.render();
  }

  boxOf(d) {
    const { w, h } = this.view;
    // The box covers every pixel the drag touched: [x0, y0, x1, y1) in image pixels.
    const clamp = (v, max) => Math.min(Math.max(v, 0), max);
    return [
      clamp(Math.floor(Math.min(d.x, d.x1)), w), clamp(Math.floor(Math.min(d.y, d.y1)), h),
      clamp(Math.ceil(Math.max(d.x, d.x1)), w), clamp(Math.ceil(Math.max(d.y, d.y1)), h),
    ];
  }

  render() {
    if (this.frame === null) this.frame = requestAnimationFrame(() => this.renderNow());
  }

  /** Draws everything now (the click-to-mask measurement ends when this returns). */
  renderNow() {
    if (this.frame !== null) cancelAnimationFrame(this.frame);
    this.frame = null;
    const { ctx, view, app } = this;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.fillStyle = "#1b1e24";
    ctx.fillRect(0, 0, this.canvas.width, this.canvas.height);
    view.apply(ctx);
    if (app.image) ctx.drawImage(app.image, 0, 0);
    const px = 1 / view.scale; // one screen pixel in image units
    for (const entry of app.masks.visible()) {
      const l = entry.layer;
      ctx.drawImage(l.canvas, l.x0, l.y0);
      if (entry.mask.source === "prefilled" && !entry.mask.review) {
        this.rect([l.x0, l.y0, l.x1, l.y1], "#ff8c00", 1.5 * px, [6 * px, 4 * px]);
      }
      if (entry.selected) this.rect([l.x0, l.y0, l.x1, l.y1], "#ffffff", 2 * px);
    }
    for (const item of app.proposals.items) {
      if (item.layer) ctx.drawImage(item.layer.canvas, item.layer.x0, item.layer.y0);
    }
    if (app.hover.visible && !this.down) ctx.drawImage(app.hover.layer.canvas, 0, 0);
    ctx.drawImage(app.editor.layer.canvas, 0, 0);
    const state = app.editor.state;
    if (state.box) {
      // Dark under light: visible on the blue working mask and on any image.
      this.rect(state.box, "#000000", 4 * px);
      this.rect(state.box, "#ffffff", 2 * px);
    }
    if (this.down && this.down.kind === "prompt" && this.down.dragging) {
      this.rect(this.boxOf(this.down), "#ffffff", 1.5 * px, [5 * px, 3 * px]);
    }
    state.points.forEach(([x, y], i) => {
      ctx.beginPath();
      ctx.arc(x + 0.5, y + 0.5, 5 * px, 0, Math.PI * 2);
      ctx.fillStyle = state.labels[i] ? "#2ecc40" : "#ff4136";
      ctx.fill();
      ctx.lineWidth = 1.5 * px;
      ctx.strokeStyle = "#ffffff";
      ctx.stroke();
    });
    if (this.pointer && app.tool !== "prompt") {
      ctx.beginPath();
      ctx.arc(this.pointer[0], this.pointer[1], app.brushRadius(), 0, Math.PI * 2);
      ctx.lineWidth = 1.5 * px;
      ctx.strokeStyle = app.tool === "brush" ? "#1e90ff" : "#ff4136";
      ctx.stroke();
    }
  }

  rect([x0, y0, x1, y1], colour, width, dash = []) {
    const { ctx } = this;
    ctx.save();
    ctx.setLineDash(dash);
    ctx.lineWidth = width;
    ctx.strokeStyle = colour;
    ctx.strokeRect(x0, y0, x1 - x0, y1 - y0);
    ctx.restore();
  }
}
