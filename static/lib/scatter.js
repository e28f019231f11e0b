// One latent plane: N points coloured by class in WebGL, with zoom, pan and pointer -> data coordinates.
//
// Three stacked canvases: the points (WebGL2, redrawn only when the view, the points or the visible classes
// change), the decor (2-D: axes, paths, ellipses, pins; redrawn with the view), and the hover layer (2-D:
// rings and markers that follow the pointer). A pointer move never redraws the points: in software WebGL
// (SwiftShader) 70,000 points cost ~30 ms a frame, which would eat the whole hover budget.
//
// The plane is square and shows the same data units per pixel on both axes, so distances on screen are
// distances in the view and the nearest point under the pointer is the nearest in data too.

import { ticks } from "./ticks.js";
import { PointIndex } from "./views.js";

const VERTEX = `#version 300 es
in vec2 position;
in float label;
uniform vec2 center;
uniform float inverseHalfSpan;
uniform float pointSize;
uniform vec3 palette[10];
uniform float visible[10];
out vec3 colour;
void main() {
  int k = int(label);
  gl_Position = vec4((position - center) * inverseHalfSpan, 0.0, 1.0);
  gl_PointSize = visible[k] > 0.5 ? pointSize : 0.0;
  colour = palette[k];
}`;

const FRAGMENT = `#version 300 es
precision mediump float;
in vec3 colour;
uniform float alpha;
out vec4 fragment;
void main() {
  vec2 d = gl_PointCoord - 0.5;
  if (dot(d, d) > 0.25) discard;
  fragment = vec4(colour * alpha, alpha);
}`;

export function hexToRgb(hex) {
  const v = parseInt(hex.replace("#", ""), 16);
  return [((v >> 16) & 255) / 255, ((v >> 8) & 255) / 255, (v & 255) / 255];
}

function shader(gl, type, source) {
  const s = gl.createShader(type);
  gl.shaderSource(s, source);
  gl.compileShader(s);
  if (!gl.getShaderParameter(s, gl.COMPILE_STATUS)) throw new Error(gl.getShaderInfoLog(s));
  return s;
}

export class LatentPlane {
  // root: an element to fill; options: {palette: ["#1f77b4", ...], onHover(x, y, index), onLeave(),
  // onClick(x, y, index), onView(view), pickRadius (px)}
  constructor(root, options) {
    this.options = options;
    this.root = root;
    this.root.classList.add("plane");
    this.points = this.#canvas("plane-points");
    this.decor = this.#canvas("plane-decor");
    this.hover = this.#canvas("plane-hover");
    this.hover.tabIndex = 0;
    this.gl = this.points.getContext("webgl2", { antialias: false, premultipliedAlpha: true, preserveDrawingBuffer: false });
    if (!this.gl) throw new Error("WebGL 2 is not available");
    this.#program();
    this.visible = new Float32Array(10).fill(1);
    this.count = 0;
    this.size = 0;
    this.view = { cx: 0, cy: 0, half: 1 };
    this.home = { cx: 0, cy: 0, half: 1 };
    this.decorations = {};
    this.markers = [];
    this.#listen();
  }

  #canvas(className) {
    const c = document.createElement("canvas");
    c.className = className;
    this.root.appendChild(c);
    return c;
  }

  #program() {
    const gl = this.gl;
    const program = gl.createProgram();
    gl.attachShader(program, shader(gl, gl.VERTEX_SHADER, VERTEX));
    gl.attachShader(program, shader(gl, gl.FRAGMENT_SHADER, FRAGMENT));
    gl.linkProgram(program);
    if (!gl.getProgramParameter(program, gl.LINK_STATUS)) throw new Error(gl.getProgramInfoLog(program));
    gl.useProgram(program);
    this.program = program;
    this.uniforms = Object.fromEntries(
      ["center", "inverseHalfSpan", "pointSize", "palette", "visible", "alpha"].map((n) => [n, gl.getUniformLocation(program, n)]),
    );
    this.vao = gl.createVertexArray();
    gl.bindVertexArray(this.vao);
    this.positionBuffer = gl.createBuffer();
    this.labelBuffer = gl.createBuffer();
    gl.enable(gl.BLEND);
    gl.blendFunc(gl.ONE, gl.ONE_MINUS_SRC_ALPHA);
    gl.uniform3fv(this.uniforms.palette, new Float32Array(30).fill(0.5));
    gl.uniform1fv(this.uniforms.visible, new Float32Array(10).fill(1));
  }

  setPalette(palette) {
    const flat = new Float32Array(30).fill(0.5);
    palette.slice(0, 10).forEach((hex, k) => flat.set(hexToRgb(hex), 3 * k));
    this.palette = palette;
    this.gl.useProgram(this.program);
    this.gl.uniform3fv(this.uniforms.palette, flat);
    this.requestDraw();
  }

  // embedding Float32Array [N * 2], labels Uint8Array [N]; extent [x0, x1, y0, y1]: the home view.
  setPoints(embedding, labels, count, extent) {
    const gl = this.gl;
    this.embedding = embedding;
    this.labels = labels;
    this.count = count;
    this.index = new PointIndex(embedding, count);
    gl.bindVertexArray(this.vao);
    gl.bindBuffer(gl.ARRAY_BUFFER, this.positionBuffer);
    gl.bufferData(gl.ARRAY_BUFFER, embedding.subarray(0, 2 * count), gl.STATIC_DRAW);
    const position = gl.getAttribLocation(this.program, "position");
    gl.enableVertexAttribArray(position);
    gl.vertexAttribPointer(position, 2, gl.FLOAT, false, 0, 0);
    gl.bindBuffer(gl.ARRAY_BUFFER, this.labelBuffer);
    gl.bufferData(gl.ARRAY_BUFFER, Float32Array.from(labels.subarray(0, count)), gl.STATIC_DRAW);
    const label = gl.getAttribLocation(this.program, "label");
    gl.enableVertexAttribArray(label);
    gl.vertexAttribPointer(label, 1, gl.FLOAT, false, 0, 0);
    const [x0, x1, y0, y1] = extent;
    this.home = { cx: (x0 + x1) / 2, cy: (y0 + y1) / 2, half: Math.max(x1 - x0, y1 - y0) / 2 };
    this.view = { ...this.home };
    this.requestDraw();
  }

  setVisible(mask) {
    mask.forEach((on, k) => (this.visible[k] = on ? 1 : 0));
    this.gl.useProgram(this.program);
    this.gl.uniform1fv(this.uniforms.visible, this.visible);
    this.requestDraw();
  }

  // CSS pixels of the square's side.
  resize(size) {
    size = Math.max(120, Math.floor(size));
    if (size === this.size) return;
    this.size = size;
    const ratio = window.devicePixelRatio || 1;
    for (const c of [this.points, this.decor, this.hover]) {
      c.width = Math.round(size * ratio);
      c.height = Math.round(size * ratio);
      c.style.width = c.style.height = `${size}px`;
    }
    this.root.style.width = this.root.style.height = `${size}px`;
    this.requestDraw();
    this.drawHover(this.markers);
  }

  // --- coordinates -------------------------------------------------------------------------------------

  get extent() {
    const { cx, cy, half } = this.view;
    return [cx - half, cx + half, cy - half, cy + half];
  }

  toData(px, py) {
    const { cx, cy, half } = this.view;
    return [cx + (px / this.size * 2 - 1) * half, cy - (py / this.size * 2 - 1) * half];
  }

  toPixel(x, y) {
    const { cx, cy, half } = this.view;
    return [((x - cx) / half + 1) * this.size / 2, (1 - (y - cy) / half) * this.size / 2];
  }

  // The visible point nearest (x, y) within `radius` pixels, or -1.
  pick(x, y, radius = this.options.pickRadius ?? 5) {
    if (!this.index) return -1;
    const reach = (radius / this.size) * 2 * this.view.half;
    const k = 8;
    const index = (this.pickIndex ??= new Int32Array(k)), distance = (this.pickDistance ??= new Float64Array(k));
    const found = this.index.nearest(x, y, k, index, distance);
    for (let j = 0; j < found; j++) {
      if (distance[j] > reach) break;
      if (this.visible[this.labels[index[j]]]) return index[j];
    }
    return -1;
  }

  // --- drawing ---------------------------------------------------------------------------------------

  requestDraw() {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.#drawPoints();
      this.#drawDecor();
      this.options.onView?.(this.extent);
    });
  }

  #drawPoints() {
    const gl = this.gl;
    if (!gl || gl.isContextLost()) return;
    gl.viewport(0, 0, this.points.width, this.points.height);
    gl.clearColor(0, 0, 0, 0);
    gl.clear(gl.COLOR_BUFFER_BIT);
    if (!this.count) return;
    gl.useProgram(this.program);
    gl.bindVertexArray(this.vao);
    const ratio = window.devicePixelRatio || 1;
    // Points grow a little as one zooms in, so a zoomed-in cluster does not turn into dust.
    const zoom = this.home.half / this.view.half;
    const base = this.count > 20000 ? 2.2 : 3.2;
    gl.uniform2f(this.uniforms.center, this.view.cx, this.view.cy);
    gl.uniform1f(this.uniforms.inverseHalfSpan, 1 / this.view.half);
    gl.uniform1f(this.uniforms.pointSize, base * ratio * Math.min(3, Math.max(1, Math.sqrt(zoom))));
    gl.uniform1f(this.uniforms.alpha, this.count > 20000 ? 0.55 : 0.8);
    gl.drawArrays(gl.POINTS, 0, this.count);
  }

  // decorations: {axisLabels: [x, y], prior: bool, ellipses: [[mx, my, sx, sy]], path: [[x, y]], pins:
  // [{point: [x, y], label}], rings: [{point: [x, y], label}]}
  setDecor(decorations) {
    this.decorations = decorations || {};
    this.#drawDecor();
  }

  #context(canvas) {
    const ctx = canvas.getContext("2d");
    const ratio = window.devicePixelRatio || 1;
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, this.size, this.size);
    return ctx;
  }

  #drawDecor() {
    if (!this.size) return;
    const ctx = this.#context(this.decor);
    const d = this.decorations;
    const [x0, x1, y0, y1] = this.extent;
    ctx.font = "11px sans-serif";
    ctx.fillStyle = "rgba(60, 60, 60, 0.85)";
    ctx.strokeStyle = "rgba(0, 0, 0, 0.08)";
    ctx.lineWidth = 1;
    for (const t of ticks(x0, x1)) {
      const [px] = this.toPixel(t, 0);
      ctx.beginPath(); ctx.moveTo(px, 0); ctx.lineTo(px, this.size); ctx.stroke();
      ctx.fillText(formatTick(t), px + 2, this.size - 4);
    }
    for (const t of ticks(y0, y1)) {
      const [, py] = this.toPixel(0, t);
      ctx.beginPath(); ctx.moveTo(0, py); ctx.lineTo(this.size, py); ctx.stroke();
      ctx.fillText(formatTick(t), 3, py - 2);
    }
    if (d.prior) {
      ctx.setLineDash([4, 4]);
      ctx.strokeStyle = "rgba(0, 0, 0, 0.45)";
      for (const r of [1, 2, 3]) this.#ellipse(ctx, 0, 0, r, r);
      ctx.setLineDash([]);
    }
    // Posterior ellipses (mean +- sigma) are often a pixel or two across at the home zoom: all of them are
    // drawn magnified by one round factor until the smallest can be seen, and the factor is said on the plane.
    const ellipses = d.ellipses || [];
    const scale = this.size / (2 * this.view.half);
    this.ellipseMagnification = ellipseMagnification(Math.min(...ellipses.map(([, , sx, sy]) => Math.min(sx, sy))) * scale);
    const k = this.ellipseMagnification;
    this.ellipseRadii = ellipses.map(([, , sx, sy]) => [k * sx * scale, k * sy * scale]);
    for (const [mx, my, sx, sy] of ellipses) {
      // A white halo under the outline keeps it readable over a dense cloud; dashed when magnified.
      ctx.lineWidth = 3.5;
      ctx.strokeStyle = "rgba(255, 255, 255, 0.85)";
      ctx.fillStyle = "rgba(20, 20, 20, 0.15)";
      this.#ellipse(ctx, mx, my, k * sx, k * sy, true);
      ctx.lineWidth = 1.5;
      ctx.strokeStyle = "rgba(20, 20, 20, 0.95)";
      if (k > 1) ctx.setLineDash([5, 3]);
      this.#ellipse(ctx, mx, my, k * sx, k * sy);
      ctx.setLineDash([]);
    }
    ctx.lineWidth = 1;
    if (ellipses.length) {
      const text = k > 1 ? `posterior ±1σ, drawn ×${k}` : "posterior ±1σ, true size";
      this.#label(ctx, this.size - ctx.measureText(text).width - 12, 14, text);
    }
    if (d.path && d.path.length > 1) {
      ctx.strokeStyle = "rgba(0, 0, 0, 0.85)";
      ctx.lineWidth = 2;
      ctx.beginPath();
      d.path.forEach(([x, y], i) => { const [px, py] = this.toPixel(x, y); i ? ctx.lineTo(px, py) : ctx.moveTo(px, py); });
      ctx.stroke();
      for (const [x, y] of [d.path[0], d.path[d.path.length - 1]]) this.#dot(ctx, x, y, 4, "#000");
    }
    for (const ring of d.rings || []) this.#ring(ctx, ring.point, 8, "#000", ring.label);
    for (const pin of d.pins || []) this.#cross(ctx, pin.point, "#000", pin.label);
  }

  #ellipse(ctx, mx, my, sx, sy, fill = false) {
    const [px, py] = this.toPixel(mx, my);
    const scale = this.size / (2 * this.view.half);
    ctx.beginPath();
    ctx.ellipse(px, py, Math.max(1, sx * scale), Math.max(1, sy * scale), 0, 0, 2 * Math.PI);
    if (fill) ctx.fill();
    ctx.stroke();
  }

  #dot(ctx, x, y, r, colour) {
    const [px, py] = this.toPixel(x, y);
    ctx.fillStyle = colour;
    ctx.beginPath();
    ctx.arc(px, py, r, 0, 2 * Math.PI);
    ctx.fill();
  }

  #ring(ctx, point, r, colour, label) {
    const [px, py] = this.toPixel(point[0], point[1]);
    ctx.lineWidth = 2.5;
    ctx.strokeStyle = "#fff";
    ctx.beginPath(); ctx.arc(px, py, r + 1.5, 0, 2 * Math.PI); ctx.stroke();
    ctx.strokeStyle = colour;
    ctx.beginPath(); ctx.arc(px, py, r, 0, 2 * Math.PI); ctx.stroke();
    if (label) this.#label(ctx, px + r + 3, py - r, label);
  }

  #cross(ctx, point, colour, label) {
    const [px, py] = this.toPixel(point[0], point[1]);
    for (const [width, stroke] of [[4, "#fff"], [2, colour]]) {
      ctx.lineWidth = width;
      ctx.strokeStyle = stroke;
      ctx.beginPath();
      ctx.moveTo(px - 6, py - 6); ctx.lineTo(px + 6, py + 6);
      ctx.moveTo(px - 6, py + 6); ctx.lineTo(px + 6, py - 6);
      ctx.stroke();
    }
    if (label) this.#label(ctx, px + 9, py - 6, label);
  }

  #label(ctx, x, y, text) {
    ctx.font = "bold 11px sans-serif";
    ctx.lineWidth = 3;
    ctx.strokeStyle = "rgba(255, 255, 255, 0.9)";
    ctx.strokeText(text, x, y);
    ctx.fillStyle = "#000";
    ctx.fillText(text, x, y);
  }

  // markers: [{point: [x, y], kind: "ring" | "dot" | "cross", label, colour}]: drawn at once, not on the next
  // frame, so the hover layer and the decoded digit appear in the same frame.
  drawHover(markers) {
    this.markers = markers || [];
    if (!this.size) return;
    const ctx = this.#context(this.hover);
    for (const m of this.markers) {
      if (m.kind === "cross") this.#cross(ctx, m.point, m.colour || "#000", m.label);
      else if (m.kind === "dot") this.#dot(ctx, m.point[0], m.point[1], 5, m.colour || "#000");
      else this.#ring(ctx, m.point, 7, m.colour || "#000", m.label);
    }
  }

  // --- interaction -------------------------------------------------------------------------------------

  #listen() {
    const target = this.hover;
    let drag = null;
    const local = (event) => {
      const box = target.getBoundingClientRect();
      return [event.clientX - box.left, event.clientY - box.top];
    };
    this.listeners = {
      pointermove: (event) => {
        const [px, py] = local(event);
        if (drag) {
          const scale = (2 * this.view.half) / this.size;
          this.view.cx = drag.cx - (px - drag.px) * scale;
          this.view.cy = drag.cy + (py - drag.py) * scale;
          drag.moved ||= Math.hypot(px - drag.px, py - drag.py) > 4;
          this.requestDraw();
          return;
        }
        const [x, y] = this.toData(px, py);
        this.options.onHover?.(x, y, this.pick(x, y), event);
      },
      pointerdown: (event) => {
        if (event.button !== 0) return;
        target.setPointerCapture(event.pointerId);
        const [px, py] = local(event);
        drag = { px, py, cx: this.view.cx, cy: this.view.cy, moved: false };
      },
      pointerup: (event) => {
        if (!drag) return;
        const moved = drag.moved;
        drag = null;
        if (moved) return;
        const [x, y] = this.toData(...local(event));
        this.options.onClick?.(x, y, this.pick(x, y));
      },
      pointercancel: () => { drag = null; },
      pointerleave: () => { if (!drag) this.options.onLeave?.(); },
      wheel: (event) => {
        event.preventDefault();
        const [px, py] = local(event);
        const [x, y] = this.toData(px, py);
        const factor = Math.exp(Math.max(-1, Math.min(1, event.deltaY * 0.0015)));
        const half = Math.min(this.home.half * 4, Math.max(this.home.half / 400, this.view.half * factor));
        // Zoom about the pointer: the data point under it stays under it.
        this.view.cx = x - (px / this.size * 2 - 1) * half;
        this.view.cy = y + (py / this.size * 2 - 1) * half;
        this.view.half = half;
        this.requestDraw();
      },
      dblclick: () => this.resetView(),
    };
    for (const [name, fn] of Object.entries(this.listeners)) target.addEventListener(name, fn, name === "wheel" ? { passive: false } : undefined);
  }

  resetView() {
    this.view = { ...this.home };
    this.requestDraw();
  }

  dispose() {
    if (this.frame) cancelAnimationFrame(this.frame);
    for (const [name, fn] of Object.entries(this.listeners || {})) this.hover.removeEventListener(name, fn);
    // Browsers cap live WebGL contexts per page: give this one back now rather than at garbage collection.
    this.gl?.getExtension("WEBGL_lose_context")?.loseContext();
    this.root.replaceChildren();
  }
}

// The smallest posterior ellipse is drawn at least this many CSS pixels across its narrow side (radius): more
// than a selected image's ring (8 px), so the ring never hides it.
export const ELLIPSE_MIN_RADIUS = 12;
const MAGNIFICATIONS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000];

// The round factor (1, 2, 5, 10, ...) that brings an ellipse whose narrow radius is `radius` CSS pixels to
// ELLIPSE_MIN_RADIUS; 1 when it is already that large (or there is none).
export function ellipseMagnification(radius) {
  if (!(radius > 0) || !Number.isFinite(radius)) return 1;
  return MAGNIFICATIONS.find((k) => k * radius >= ELLIPSE_MIN_RADIUS) ?? MAGNIFICATIONS[MAGNIFICATIONS.length - 1];
}

function formatTick(t) {
  const a = Math.abs(t);
  if (a === 0) return "0";
  if (a >= 1000 || a < 0.01) return t.toExponential(0);
  return String(Number(t.toPrecision(3)));
}
