// One latent plane: N points coloured by class in WebGL, with zoom, pan and pointer -> data coordinates.
//
// Three stacked canvases: the points (WebGL2, redrawn only when the view, the points or the visible classes
// change), the decor (2-D: axes, paths, ellipses, pins; redrawn with the view), and the hover layer (2-D:
// rings and markers that follow the pointer). A pointer move never redraws the points: in software WebGL
// (SwiftShader) 70,000 points cost ~30 ms a frame, which would eat the whole hover budget.
//
// The plane is square and shows the same data units per pixel on both axes, so distances on screen are
// distances in the view and the nearest point under the pointer is the nearest in data too.
//
// A selection (lib/selection.js) is a second WebGL canvas above the points, drawing only the selected ones
// (an index buffer of S points) in their class colours, while the points' canvas is greyed by a CSS filter
// (the compositor's work, not a redraw): a new selection costs S points, not N. In software WebGL
// (SwiftShader) a redraw of 70,000 points is the slow part of any frame.
// Zoomed in until few points are visible, each is drawn as its own 28 x 28 image instead of a dot.

import { ticks } from "./ticks.js";
import { boxPolygon } from "./selection.js";
import { PointIndex } from "./views.js";

// At most this many points in view are drawn as their own images; more, and they are dots again. 600
// thumbnails of 24 px or more fill a 600 px plane about once: beyond that they hide each other.
export const THUMBNAIL_LIMIT = 600;

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

// One WebGL canvas of points: all N (drawArrays) or, once given elements, only those (drawElements).
class PointLayer {
  constructor(canvas) {
    const gl = (this.gl = canvas.getContext("webgl2", { antialias: false, premultipliedAlpha: true, preserveDrawingBuffer: false }));
    if (!gl) throw new Error("WebGL 2 is not available");
    this.canvas = canvas;
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
    this.elementBuffer = gl.createBuffer();
    this.elements = false;
    gl.enable(gl.BLEND);
    gl.blendFunc(gl.ONE, gl.ONE_MINUS_SRC_ALPHA);
    gl.uniform3fv(this.uniforms.palette, new Float32Array(30).fill(0.5));
    gl.uniform1fv(this.uniforms.visible, new Float32Array(10).fill(1));
  }

  setPalette(flat) {
    this.gl.useProgram(this.program);
    this.gl.uniform3fv(this.uniforms.palette, flat);
  }

  setVisible(visible) {
    this.gl.useProgram(this.program);
    this.gl.uniform1fv(this.uniforms.visible, visible);
  }

  setPoints(embedding, labels, count) {
    const gl = this.gl;
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
  }

  // Only these points (Int32Array of indices) from now on; null: none.
  setElements(indices) {
    const gl = this.gl;
    this.elements = true;
    gl.bindVertexArray(this.vao);
    gl.bindBuffer(gl.ELEMENT_ARRAY_BUFFER, this.elementBuffer);
    gl.bufferData(gl.ELEMENT_ARRAY_BUFFER, indices ? Uint32Array.from(indices) : new Uint32Array(0), gl.DYNAMIC_DRAW);
  }

  // count points: the first `count` (no elements given) or the first `count` elements; 0 clears.
  draw(count, view, pointSize, alpha) {
    const gl = this.gl;
    if (gl.isContextLost()) return;
    gl.viewport(0, 0, this.canvas.width, this.canvas.height);
    gl.clearColor(0, 0, 0, 0);
    gl.clear(gl.COLOR_BUFFER_BIT);
    if (!count) return;
    gl.useProgram(this.program);
    gl.bindVertexArray(this.vao);
    gl.uniform2f(this.uniforms.center, view.cx, view.cy);
    gl.uniform1f(this.uniforms.inverseHalfSpan, 1 / view.half);
    gl.uniform1f(this.uniforms.pointSize, pointSize);
    gl.uniform1f(this.uniforms.alpha, alpha);
    if (this.elements) gl.drawElements(gl.POINTS, count, gl.UNSIGNED_INT, 0);
    else gl.drawArrays(gl.POINTS, 0, count);
  }

  dispose() {
    // Browsers cap live WebGL contexts per page: give this one back now rather than at garbage collection.
    this.gl.getExtension("WEBGL_lose_context")?.loseContext();
  }
}

export class LatentPlane {
  // root: an element to fill; options: {palette: ["#1f77b4", ...], onHover(x, y, index), onLeave(),
  // onClick(x, y, index), onView(view), onSelect(polygon, mode), onDrawn(), pickRadius (px)}
  constructor(root, options) {
    this.options = options;
    this.root = root;
    this.root.classList.add("plane");
    this.holes = this.#canvas("plane-holes");
    this.points = this.#canvas("plane-points");
    this.top = this.#canvas("plane-selected");
    this.thumbs = this.#canvas("plane-thumbs");
    this.decor = this.#canvas("plane-decor");
    this.hover = this.#canvas("plane-hover");
    this.hover.tabIndex = 0;
    this.base = new PointLayer(this.points);
    this.selection = new PointLayer(this.top);
    this.dirty = new Set();
    this.visible = new Float32Array(10).fill(1);
    this.count = 0;
    this.size = 0;
    this.view = { cx: 0, cy: 0, half: 1 };
    this.home = { cx: 0, cy: 0, half: 1 };
    this.decorations = {};
    this.markers = [];
    this.selected = null; // Int32Array of selected indices, or null
    this.selectedMask = null;
    this.boxMode = false;
    this.gesture = null; // a lasso or box being drawn: {kind, mode, polygon}
    this.images = null;
    this.tiles = new Map();
    this.thumbnailsShown = 0;
    this.#listen();
  }

  #canvas(className) {
    const c = document.createElement("canvas");
    c.className = className;
    this.root.appendChild(c);
    return c;
  }

  setPalette(palette) {
    const flat = new Float32Array(30).fill(0.5);
    palette.slice(0, 10).forEach((hex, k) => flat.set(hexToRgb(hex), 3 * k));
    this.palette = palette;
    for (const layer of [this.base, this.selection]) layer.setPalette(flat);
    this.requestDraw();
  }

  // embedding Float32Array [N * 2], labels Uint8Array [N]; extent [x0, x1, y0, y1]: the home view.
  setPoints(embedding, labels, count, extent) {
    this.embedding = embedding;
    this.labels = labels;
    this.count = count;
    this.index = new PointIndex(embedding, count);
    for (const layer of [this.base, this.selection]) layer.setPoints(embedding, labels, count);
    const [x0, x1, y0, y1] = extent;
    this.home = { cx: (x0 + x1) / 2, cy: (y0 + y1) / 2, half: Math.max(x1 - x0, y1 - y0) / 2 };
    this.view = { ...this.home };
    this.selected = null;
    this.selectedMask = null;
    this.selection.setElements(null);
    this.points.classList.remove("dimmed");
    this.tiles.clear();
    this.requestDraw();
  }

  // The selected points (Int32Array of indices, ascending) drawn on top in colour, the rest in grey; null
  // or empty: no selection, every point in its colour.
  setSelection(indices) {
    this.selected = indices && indices.length ? indices : null;
    this.selectedMask = null;
    if (this.selected) {
      this.selectedMask = new Uint8Array(this.count);
      for (const i of this.selected) this.selectedMask[i] = 1;
    }
    this.selection.setElements(this.selected);
    this.points.classList.toggle("dimmed", Boolean(this.selected));
    // The points themselves are not redrawn (the filter greys them), unless thumbnails show their state.
    this.requestDraw(this.thumbnailsShown ? "all" : "selection");
  }

  // The images of the points (uint8 [N * 784], the subset's), for the thumbnails drawn when zoomed in.
  setImages(images) {
    this.images = images;
    this.tiles.clear();
    this.requestDraw();
  }

  // The holes layer: `map` a canvas of n x n cells covering `extent` [x0, x1, y0, y1] (top row = highest y),
  // drawn under the points, moved with the view until the next map replaces it; null removes it.
  setHolesMap(map, extent) {
    this.holesMap = map ? { map, extent } : null;
    this.requestDraw();
  }

  // A plain drag draws a box selection instead of panning.
  setBoxMode(on) {
    this.boxMode = Boolean(on);
    this.hover.classList.toggle("box-mode", this.boxMode);
  }

  setVisible(mask) {
    mask.forEach((on, k) => (this.visible[k] = on ? 1 : 0));
    for (const layer of [this.base, this.selection]) layer.setVisible(this.visible);
    this.requestDraw();
  }

  // CSS pixels of the square's side.
  resize(size) {
    size = Math.max(120, Math.floor(size));
    if (size === this.size) return;
    this.size = size;
    const ratio = window.devicePixelRatio || 1;
    for (const c of [this.holes, this.points, this.top, this.thumbs, this.decor, this.hover]) {
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

  // what: "all" (the view, points or classes changed) or "selection" (only the selected layer).
  requestDraw(what = "all") {
    this.dirty.add(what);
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      const all = this.dirty.has("all");
      this.dirty.clear();
      const started = performance.now();
      if (all) {
        this.#drawHoles();
        const thumbnails = this.#drawThumbnails();
        this.#drawPoints(thumbnails);
        this.#drawDecor();
      } else this.#drawSelected(Boolean(this.thumbnailsShown));
      this.options.onDrawn?.(performance.now() - started);
      if (all) this.options.onView?.(this.extent);
    });
  }

  #pointSize() {
    // Points grow a little as one zooms in, so a zoomed-in cluster does not turn into dust.
    const zoom = this.home.half / this.view.half;
    const base = this.count > 20000 ? 2.2 : 3.2;
    return base * (window.devicePixelRatio || 1) * Math.min(3, Math.max(1, Math.sqrt(zoom)));
  }

  #drawPoints(thumbnails) {
    this.base.draw(thumbnails ? 0 : this.count, this.view, this.#pointSize(), this.count > 20000 ? 0.55 : 0.8);
    this.#drawSelected(thumbnails);
  }

  #drawSelected(thumbnails) {
    this.selection.draw(thumbnails || !this.selected ? 0 : this.selected.length, this.view, this.#pointSize(), 0.9);
  }

  // Zoomed in until at most THUMBNAIL_LIMIT points are in view, each visible point is drawn as its own
  // image, tinted by its class colour (grey when a selection leaves it out). Returns whether it drew them.
  #drawThumbnails() {
    const ctx = this.#context(this.thumbs);
    this.thumbnailsShown = 0;
    if (!this.images || !this.index || !this.size) return false;
    const [x0, x1, y0, y1] = this.extent;
    const inView = [];
    const xy = this.embedding;
    let over = false;
    this.index.forEachInBox(x0, x1, y0, y1, (i) => {
      if (over) return;
      const x = xy[2 * i], y = xy[2 * i + 1];
      if (x < x0 || x > x1 || y < y0 || y > y1 || !this.visible[this.labels[i]]) return;
      inView.push(i);
      over = inView.length > THUMBNAIL_LIMIT;
    });
    if (over || !inView.length) return false;
    // Sides shrink as more images share the plane, between a readable 24 px and twice their own size.
    const side = Math.round(Math.min(56, Math.max(24, (0.8 * this.size) / Math.sqrt(inView.length))));
    if (this.selected) inView.sort((a, b) => this.selectedMask[a] - this.selectedMask[b]); // selected on top
    for (const i of inView) {
      const [px, py] = this.toPixel(xy[2 * i], xy[2 * i + 1]);
      ctx.drawImage(this.#tile(i), px - side / 2, py - side / 2, side, side);
    }
    this.thumbnailsShown = inView.length;
    return true;
  }

  #drawHoles() {
    const ctx = this.#context(this.holes);
    if (!this.holesMap) return;
    const { map, extent: [x0, x1, y0, y1] } = this.holesMap;
    const [px0, py0] = this.toPixel(x0, y1), [px1, py1] = this.toPixel(x1, y0);
    ctx.imageSmoothingEnabled = true; // a soft map: the cells are samples of a smooth field, not tiles
    ctx.drawImage(map, px0, py0, px1 - px0, py1 - py0);
  }

  // One image as a small canvas, ink in the class colour on white with a border of it; made once.
  #tile(i) {
    const grey = this.selected !== null && !this.selectedMask[i];
    const key = grey ? -1 - i : i;
    let tile = this.tiles.get(key);
    if (tile) return tile;
    if (this.tiles.size > 4 * THUMBNAIL_LIMIT) this.tiles.clear();
    tile = document.createElement("canvas");
    tile.width = tile.height = 30;
    const ctx = tile.getContext("2d");
    const [r, g, b] = grey ? [0.6, 0.6, 0.6] : hexToRgb(this.palette?.[this.labels[i]] ?? "#000000");
    const image = ctx.createImageData(28, 28);
    const offset = i * 784;
    for (let p = 0; p < 784; p++) {
      const v = this.images[offset + p] / 255;
      image.data[4 * p] = 255 - v * (255 - 255 * r);
      image.data[4 * p + 1] = 255 - v * (255 - 255 * g);
      image.data[4 * p + 2] = 255 - v * (255 - 255 * b);
      image.data[4 * p + 3] = grey ? 150 : 255;
    }
    ctx.putImageData(image, 1, 1);
    ctx.strokeStyle = `rgb(${255 * r}, ${255 * g}, ${255 * b})`;
    ctx.lineWidth = 2;
    ctx.strokeRect(0, 0, 30, 30);
    this.tiles.set(key, tile);
    return tile;
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
    if (this.gesture) this.#drawGesture(ctx);
  }

  // The lasso or box being drawn: dashed, red when it removes from the selection.
  #drawGesture(ctx) {
    const polygon = this.gesture.polygon;
    if (polygon.length < 4) return;
    ctx.setLineDash([5, 4]);
    ctx.lineWidth = 1.5;
    ctx.strokeStyle = this.gesture.mode === "remove" ? "#c62828" : "#222";
    ctx.fillStyle = this.gesture.mode === "remove" ? "rgba(198, 40, 40, 0.06)" : "rgba(0, 0, 0, 0.05)";
    ctx.beginPath();
    for (let i = 0; i < polygon.length; i += 2) {
      const [px, py] = this.toPixel(polygon[i], polygon[i + 1]);
      i ? ctx.lineTo(px, py) : ctx.moveTo(px, py);
    }
    ctx.closePath();
    ctx.fill();
    ctx.stroke();
    ctx.setLineDash([]);
  }

  // One redraw of the gesture per frame, however many pointer events arrive in it.
  #requestGestureDraw() {
    if (this.gestureFrame) return;
    this.gestureFrame = requestAnimationFrame(() => {
      this.gestureFrame = 0;
      this.drawHover(this.markers);
    });
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
        if (this.gesture) {
          const g = this.gesture;
          const [x, y] = this.toData(px, py);
          g.moved ||= Math.hypot(px - g.px, py - g.py) > 4;
          if (g.kind === "box") g.polygon = boxPolygon(g.start[0], g.start[1], x, y);
          else g.polygon.push(x, y);
          this.#requestGestureDraw();
          return;
        }
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
        // Shift + drag: a lasso that adds; Alt + drag: one that removes; in box mode a plain drag draws a box
        // that replaces the selection (Shift and Alt add and remove with a box).
        if (this.options.onSelect && (event.shiftKey || event.altKey || this.boxMode)) {
          const [x, y] = this.toData(px, py);
          const mode = event.altKey ? "remove" : event.shiftKey ? "add" : "replace";
          this.gesture = { kind: this.boxMode ? "box" : "lasso", mode, px, py, start: [x, y], polygon: [x, y], moved: false };
          return;
        }
        drag = { px, py, cx: this.view.cx, cy: this.view.cy, moved: false };
      },
      pointerup: (event) => {
        if (this.gesture) {
          const g = this.gesture;
          this.gesture = null;
          this.drawHover(this.markers);
          if (g.moved) this.options.onSelect(g.polygon, g.mode);
          else {
            const [x, y] = this.toData(...local(event));
            this.options.onClick?.(x, y, this.pick(x, y), event);
          }
          return;
        }
        if (!drag) return;
        const moved = drag.moved;
        drag = null;
        if (moved) return;
        const [x, y] = this.toData(...local(event));
        this.options.onClick?.(x, y, this.pick(x, y), event);
      },
      pointercancel: () => { drag = null; this.gesture = null; this.drawHover(this.markers); },
      pointerleave: () => { if (!drag && !this.gesture) this.options.onLeave?.(); },
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
    if (this.gestureFrame) cancelAnimationFrame(this.gestureFrame);
    for (const [name, fn] of Object.entries(this.listeners || {})) this.hover.removeEventListener(name, fn);
    for (const layer of [this.base, this.selection]) layer.dispose();
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
