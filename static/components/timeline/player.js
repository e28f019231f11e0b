// The timeline player: both models' latent planes over the frames of their training, side by side on fixed
// axes, with the loss curves, kNN-5 / overlap per frame and what each decoder drew at a pinned point.
//
// Python sends the small things in `data` (see app/timeline.py) and the points of every frame as one gzip
// file of float32 (`data.pack`: each side's [F, N, 2] at its `offset`). Playing and scrubbing stay in the
// page: nothing here talks to Python except a click on a plane, sent as the trigger "pin".
//
// Streamlit calls the component again whenever `data` changes (after a click, Python sends new drawings);
// lib/dom.js's mountOnce keeps one player per mount, updated in place, so the frame being shown survives a
// rerun, and runs the updates one after another.

import { fetchBytes } from "../../lib/assets.js";
import { mountOnce } from "../../lib/dom.js";
import { logTicks, ticks } from "../../lib/ticks.js";
import { finiteExtent, formatCount, formatEpoch, latestAtOrBefore, squareFit } from "./scales.js";

const DPR = () => Math.min(window.devicePixelRatio || 1, 2);

export const render = mountOnce((component) => new Player(component.parentElement));

class Player {
  constructor(root) {
    this.root = root;
    this.el = root.querySelector(".tl");
    this.playButton = root.querySelector(".tl-play");
    this.slider = root.querySelector(".tl-slider");
    this.speed = root.querySelector(".tl-speed");
    this.label = root.querySelector(".tl-label");
    this.sidesEl = root.querySelector(".tl-sides");
    this.legendEl = root.querySelector(".tl-legend");
    this.position = -1;
    this.playing = false;
    this.raf = 0;
    this.draws = 0;
    this.signature = null;
    this.sides = [];
    this.listeners = [];
    this.listen(this.playButton, "click", () => (this.playing ? this.pause() : this.play()));
    this.listen(this.slider, "input", () => {
      this.pause();
      this.show(Number(this.slider.value));
    });
    this.resize = new ResizeObserver(() => this.layout());
    this.resize.observe(this.el);
  }

  listen(target, type, handler) {
    target.addEventListener(type, handler);
    this.listeners.push(() => target.removeEventListener(type, handler));
  }

  dispose() {
    this.pause();
    this.resize.disconnect();
    for (const remove of this.listeners) remove();
    this.listeners = [];
  }

  async update(component) {
    try {
      await this.#update(component.data, component.setTriggerValue);
    } catch (error) {
      this.fail(error);
    }
  }

  async #update(data, setTriggerValue) {
    this.setTriggerValue = setTriggerValue;
    this.data = data;
    const signature = [data.pack, ...data.sides.map((s) => `${s.title}|${s.frames}|${s.offset}`)].join("|");
    if (signature !== this.signature) {
      this.signature = signature;
      this.pause();
      this.pack = null; // nothing is drawn until the new frames are here
      this.position = -1;
      this.build(data);
      let bytes;
      try {
        bytes = await fetchBytes(data.pack);
      } catch (error) {
        this.signature = null; // fetchBytes forgets a failed URL: the next update fetches it again
        throw error;
      }
      this.pack = new Float32Array(bytes);
      this.label.classList.remove("tl-error");
      this.slider.max = String(data.steps.length - 1);
      this.slider.disabled = this.playButton.disabled = false;
      this.el.dataset.ready = "1";
      this.position = -1; // the old position may not exist in the new frames
      this.layout();
      this.show(data.steps.length - 1); // open on the finished map; Play starts from the beginning
    } else {
      // Same frames, new pins and drawings (a click came back from Python): keep the frame on screen.
      data.sides.forEach((sideData, i) => this.sides[i].setDrawings(sideData));
      this.redraw(true);
    }
  }

  fail(error) {
    console.error("timeline player:", error);
    this.label.textContent = `could not show the timeline: ${error.message}`;
    this.label.classList.add("tl-error");
  }

  build(data) {
    this.sidesEl.replaceChildren();
    this.sides = data.sides.map((sideData) => new Side(this, sideData));
    this.legendEl.replaceChildren(
      ...data.classNames.map((name, c) => {
        const item = document.createElement("span");
        item.textContent = name;
        item.style.setProperty("--dot", data.colors[c % data.colors.length]);
        return item;
      }),
    );
  }

  layout() {
    if (!this.pack) return;
    for (const side of this.sides) side.layout();
    this.redraw(true);
  }

  play() {
    const last = this.data.steps.length - 1;
    if (this.position >= last) this.show(0);
    this.playing = true;
    this.el.dataset.playing = "1";
    this.playButton.textContent = "‖ Pause";
    this.playButton.setAttribute("aria-label", "Pause");
    let previous = performance.now();
    const tick = (now) => {
      if (!this.playing) return;
      if (now - previous >= this.data.frameMs / Number(this.speed.value)) {
        previous = now;
        if (this.position >= this.data.steps.length - 1) {
          this.pause();
          return;
        }
        this.show(this.position + 1);
      }
      this.raf = requestAnimationFrame(tick);
    };
    this.raf = requestAnimationFrame(tick);
  }

  pause() {
    this.playing = false;
    cancelAnimationFrame(this.raf);
    this.el.dataset.playing = "0";
    const atEnd = this.data && this.position >= this.data.steps.length - 1;
    // "Play" everywhere, as the README names it; on the last frame (where the page opens) it says it starts over.
    this.playButton.textContent = atEnd ? "▶ Play from the start" : "▶ Play";
    this.playButton.setAttribute("aria-label", atEnd ? "Play from the start" : "Play");
    this.playButton.title = atEnd
      ? "The timeline opens on the finished map; Play runs the training from its first recorded frame."
      : "";
  }

  show(position) {
    if (position === this.position || !this.pack) return;
    this.position = position;
    this.slider.value = String(position);
    this.el.dataset.frame = String(position);
    this.redraw(false);
  }

  redraw(force) {
    if (!this.pack || this.position < 0) return;
    const { steps, batchesPerEpoch } = this.data;
    const step = steps[this.position];
    let text = `frame ${this.position + 1} / ${steps.length} · ${formatCount(step)} batches seen`;
    if (batchesPerEpoch) text += ` · epoch ${formatEpoch(step / batchesPerEpoch)}`;
    this.label.textContent = text;
    for (const side of this.sides) side.draw(this.position, force);
    if (!this.playing) this.pause(); // refresh the button: "Play from the start" at the end, "Play" elsewhere
  }

  countDraw() {
    this.draws += 1;
    this.el.dataset.draws = String(this.draws);
  }
}

class Side {
  constructor(player, data) {
    this.player = player;
    this.data = data;
    this.frame = -1;
    this.el = document.createElement("div");
    this.el.className = "tl-side";
    this.el.dataset.side = data.side;
    this.el.innerHTML = `
      <div class="tl-title"></div>
      <div class="tl-sub"></div>
      <canvas class="tl-plane"></canvas>
      <canvas class="tl-loss"></canvas>
      <div class="tl-chart-caption tl-loss-caption"></div>
      <canvas class="tl-metrics"></canvas>
      <div class="tl-chart-caption tl-metrics-caption"></div>
      <div class="tl-draw">
        <canvas class="tl-big" width="28" height="28"></canvas>
        <div class="tl-draw-text"><div class="tl-draw-caption"></div><div class="tl-strip"></div></div>
      </div>`;
    this.el.querySelector(".tl-title").textContent = data.title;
    this.sub = this.el.querySelector(".tl-sub");
    this.plane = this.el.querySelector(".tl-plane");
    this.plane.setAttribute("aria-label", `latent plane of ${data.title}: click to pin a point`);
    this.loss = this.el.querySelector(".tl-loss");
    this.metrics = this.el.querySelector(".tl-metrics");
    this.lossCaption = this.el.querySelector(".tl-loss-caption");
    this.metricsCaption = this.el.querySelector(".tl-metrics-caption");
    this.big = this.el.querySelector(".tl-big");
    this.drawCaption = this.el.querySelector(".tl-draw-caption");
    this.strip = this.el.querySelector(".tl-strip");
    // Point indices of each class, so a frame is drawn one colour (one path) at a time.
    this.byClass = data.labels.reduce((groups, label, i) => {
      (groups[label] ||= []).push(i);
      return groups;
    }, []);
    player.sidesEl.append(this.el);
    player.listen(this.plane, "click", (event) => this.click(event));
    this.setDrawings(data);
  }

  setDrawings(data) {
    this.data = { ...this.data, pin: data.pin, drawings: data.drawings };
    this.pending = null;
    this.images = data.drawings.map((drawing) => {
      const bytes = Uint8Array.from(atob(drawing.pixels), (c) => c.charCodeAt(0)); // 784 grey levels
      const image = new ImageData(28, 28);
      bytes.forEach((v, i) => image.data.set([v, v, v, 255], i * 4));
      return image;
    });
    this.strip.replaceChildren(
      ...data.drawings.map((drawing, i) => {
        const thumb = document.createElement("div");
        thumb.className = "tl-thumb";
        const canvas = document.createElement("canvas");
        canvas.width = canvas.height = 28;
        canvas.getContext("2d").putImageData(this.images[i], 0, 0);
        const caption = document.createElement("span");
        caption.textContent = i === data.drawings.length - 1 ? "final" : formatCount(drawing.step);
        thumb.append(canvas, caption);
        thumb.title = `the decoder after ${formatCount(drawing.step)} batches`;
        return thumb;
      }),
    );
    this.drawnDrawing = null; // drawn again at the next frame
  }

  layout() {
    const width = Math.max(this.el.clientWidth, 200);
    const planeSize = Math.min(width, 520);
    this.size = { width, plane: planeSize, loss: 130, metrics: 90 };
    fit(this.plane, planeSize, planeSize);
    fit(this.loss, width, this.size.loss);
    fit(this.metrics, width, this.size.metrics);
    const margin = { left: 46, right: 8, top: 8, bottom: 34 };
    this.box = { left: margin.left, top: margin.top, width: planeSize - margin.left - margin.right, height: planeSize - margin.top - margin.bottom };
    this.map = squareFit(this.data.xRange, this.data.yRange, this.box);
    this.frame = -1;
  }

  click(event) {
    if (!this.map) return;
    const rect = this.plane.getBoundingClientRect();
    const u = event.clientX - rect.left, v = event.clientY - rect.top;
    const { left, top, width, height } = this.box;
    if (u < left || u > left + width || v < top || v > top + height) return;
    const [x, y] = this.map.toData(u, v);
    this.pending = { x, y };
    this.drawPlane(this.frame); // the new pin at once; its drawings follow from Python
    this.drawCaption.textContent = "asking the decoders what they drew here…";
    this.player.setTriggerValue("pin", { side: this.data.side, x, y });
  }

  draw(position, force) {
    const frame = this.data.frameOfStep[position];
    if (force || frame !== this.frame) {
      this.drawPlane(frame);
      this.drawCharts(frame, position);
      this.frame = frame;
    }
    this.drawDecoder(frame);
    const epoch = this.data.epochs[frame];
    let text = `frame ${frame + 1} / ${this.data.frames} · ${formatCount(this.data.steps[frame])} batches · epoch ${formatEpoch(epoch)}`;
    if (this.outside) text += ` · ${formatCount(this.outside)} points beyond the final frame's axes`;
    this.sub.textContent = text;
  }

  drawPlane(frame) {
    const { data } = this;
    const { colors } = this.player.data;
    const pack = this.player.pack;
    const ctx = context(this.plane);
    const { toPx, x: xs, y: ys } = this.map;
    const { left, top, width, height } = this.box;
    const ink = getComputedStyle(this.player.el).color || "#333";
    ctx.clearRect(0, 0, this.size.plane, this.size.plane);
    drawFrameAxes(ctx, this.box, xs, ys, toPx, ink, data.axisLabels);
    ctx.save();
    ctx.beginPath();
    ctx.rect(left, top, width, height);
    ctx.clip();
    if (data.prior) {
      // The N(0, I) prior's 1 and 2 sigma circles: where the KL term pulls the VAE's codes.
      ctx.strokeStyle = "rgba(120,120,120,0.7)";
      ctx.setLineDash([4, 4]);
      for (const r of [1, 2]) {
        const [cx, cy] = toPx(0, 0);
        ctx.beginPath();
        ctx.arc(cx, cy, r * this.map.scale, 0, 2 * Math.PI);
        ctx.stroke();
      }
      ctx.setLineDash([]);
    }
    const base = data.offset + frame * data.points * 2;
    const radius = Math.max(1.6, Math.min(3, this.size.plane / 190));
    let outside = 0;
    ctx.globalAlpha = 0.75;
    this.byClass.forEach((indices, c) => {
      if (!indices) return;
      ctx.fillStyle = colors[c % colors.length];
      ctx.beginPath();
      for (const i of indices) {
        const x = pack[base + 2 * i], y = pack[base + 2 * i + 1];
        if (x < xs[0] || x > xs[1] || y < ys[0] || y > ys[1]) outside += 1;
        const [u, v] = toPx(x, y);
        ctx.moveTo(u + radius, v);
        ctx.arc(u, v, radius, 0, 2 * Math.PI);
      }
      ctx.fill();
    });
    ctx.globalAlpha = 1;
    const pin = this.pending || data.pin;
    const [pu, pv] = toPx(pin.x, pin.y);
    for (const [colour, widthPx] of [["#fff", 5], ["#000", 2]]) {
      ctx.strokeStyle = colour;
      ctx.lineWidth = widthPx;
      ctx.beginPath();
      ctx.moveTo(pu - 8, pv); ctx.lineTo(pu + 8, pv);
      ctx.moveTo(pu, pv - 8); ctx.lineTo(pu, pv + 8);
      ctx.stroke();
    }
    ctx.lineWidth = 1;
    ctx.restore();
    this.outside = outside;
    this.player.countDraw();
  }

  drawCharts(frame, position) {
    const { data } = this;
    const steps = this.player.data.steps;
    const xOf = (box, p) => box.left + (steps.length > 1 ? (p / (steps.length - 1)) * box.width : box.width / 2);
    const ink = getComputedStyle(this.player.el).color || "#333";
    const at = data.positionOfFrame;

    // Loss terms on a log axis: train solid, test dashed, as on the Train page.
    let ctx = context(this.loss);
    const lossBox = { left: 46, top: 6, width: this.size.width - 70, height: this.size.loss - 24 };
    ctx.clearRect(0, 0, this.size.width, this.size.loss);
    const series = [];
    for (const [split, dash] of [["train", []], ["test", [5, 3]]]) {
      for (const [term, values] of Object.entries(data.losses[split])) series.push({ split, term, values, dash });
    }
    const extent = finiteExtent(series.map((s) => s.values), true);
    if (extent) {
      const [lo, hi] = [extent[0] / 1.1, extent[1] * 1.1];
      const yOf = (v) => lossBox.top + lossBox.height * (1 - (Math.log(v) - Math.log(lo)) / (Math.log(hi) - Math.log(lo)));
      drawChartFrame(ctx, lossBox, ink, logTicks(lo, hi).map((t) => [yOf(t), shortNumber(t)]), this.epochTicks(xOf, lossBox));
      for (const s of series) {
        ctx.strokeStyle = data.termColors[s.term] || ink;
        ctx.setLineDash(s.dash);
        ctx.lineWidth = 1.6;
        polyline(ctx, s.values.map((v, f) => (v > 0 ? [xOf(lossBox, at[f]), yOf(v)] : null)));
      }
      ctx.setLineDash([]);
      drawCursor(ctx, lossBox, xOf(lossBox, position), ink);
      for (const s of series) {
        const v = s.values[frame];
        if (v > 0) dot(ctx, xOf(lossBox, at[frame]), yOf(v), data.termColors[s.term] || ink);
      }
    }
    const describe = (split) =>
      Object.entries(data.losses[split])
        .map(([term, values]) => `<span style="color:${data.termColors[term]}">${term}</span> ${values[frame] === null ? "–" : shortNumber(values[frame])}`)
        .join(", ");
    this.lossCaption.innerHTML =
      `loss per image on ${formatCount(data.lossImages)} fixed images · test (dashed): ${describe("test")} · train (solid): ${describe("train")}`;

    // kNN-5 accuracy and class overlap among the recorded points, on [0, 1].
    ctx = context(this.metrics);
    const box = { left: 46, top: 6, width: this.size.width - 70, height: this.size.metrics - 24 };
    ctx.clearRect(0, 0, this.size.width, this.size.metrics);
    const yOf = (v) => box.top + box.height * (1 - v);
    drawChartFrame(ctx, box, ink, [0, 0.5, 1].map((t) => [yOf(t), String(t)]), this.epochTicks(xOf, box));
    const { metricColors, metricLabels } = this.player.data;
    Object.entries(data.metrics).forEach(([name, values], k) => {
      ctx.strokeStyle = metricColors[name];
      ctx.setLineDash(k ? [5, 3] : []);
      ctx.lineWidth = 1.6;
      polyline(ctx, values.map((v, f) => (v === null ? null : [xOf(box, at[f]), yOf(v)])));
    });
    ctx.setLineDash([]);
    drawCursor(ctx, box, xOf(box, position), ink);
    for (const [name, values] of Object.entries(data.metrics)) if (values[frame] !== null) dot(ctx, xOf(box, at[frame]), yOf(values[frame]), metricColors[name]);
    this.metricsCaption.innerHTML = Object.entries(data.metrics)
      .map(([name, values]) => `<span style="color:${metricColors[name]}">${metricLabels[name]}</span> ${values[frame] === null ? "–" : values[frame].toFixed(3)}`)
      .join(" · ") + " among the recorded points (5 nearest neighbours, in the latent space)";
  }

  // A few x ticks labelled in epochs at the frames that end one (the axis is evenly spaced by frame).
  epochTicks(xOf, box) {
    const { steps, batchesPerEpoch } = this.player.data;
    if (!batchesPerEpoch) return [];
    const ends = [];
    steps.forEach((step, p) => {
      if (step > 0 && step % batchesPerEpoch === 0) ends.push([p, step / batchesPerEpoch]);
    });
    const every = Math.max(1, Math.ceil(ends.length / 6));
    const marks = [[xOf(box, 0), "0"]];
    ends.forEach(([p, epoch], i) => {
      if (i === 0 || (i + 1) % every === 0 || i === ends.length - 1) marks.push([xOf(box, p), `ep ${epoch}`]);
    });
    return marks.filter((mark, i) => i === 0 || mark[0] - marks[i - 1][0] > 28);
  }

  drawDecoder(frame) {
    const { drawings } = this.data;
    const frames = drawings.map((d) => d.frame);
    // The latest decoder kept by this frame; before the first one (or with none kept), the final decoder.
    const kept = latestAtOrBefore(frames, frame);
    const active = kept < 0 ? drawings.length - 1 : kept;
    if (active === this.drawnDrawing && !this.pending) return;
    this.drawnDrawing = active;
    this.strip.querySelectorAll(".tl-thumb").forEach((thumb, i) => thumb.classList.toggle("active", i === active));
    this.big.getContext("2d").putImageData(this.images[active], 0, 0);
    if (this.pending) return; // the caption says a new drawing is on its way
    const final = active === drawings.length - 1;
    let when = final ? "the final decoder" : `the decoder after ${formatCount(drawings[active].step)} batches`;
    if (kept < 0) when += " (none was kept this early)";
    const pin = this.data.pin;
    const approx = pin.approximate ? " (an approximate code: the PCA plane's inverse)" : "";
    this.drawCaption.textContent = `${when} draws this at ${pin.label}${approx}; ${this.data.decodersNote}.`;
  }
}

// -- drawing helpers ------------------------------------------------------------------------------

function fit(canvas, width, height) {
  const dpr = DPR();
  canvas.style.width = `${width}px`;
  canvas.style.height = `${height}px`;
  canvas.width = Math.round(width * dpr);
  canvas.height = Math.round(height * dpr);
}

function context(canvas) {
  const ctx = canvas.getContext("2d");
  const dpr = canvas.width / (parseFloat(canvas.style.width) || canvas.width);
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  return ctx;
}

function drawFrameAxes(ctx, box, xs, ys, toPx, ink, labels) {
  const { left, top, width, height } = box;
  ctx.strokeStyle = "rgba(128,128,128,0.5)";
  ctx.strokeRect(left, top, width, height);
  ctx.fillStyle = ink;
  ctx.font = "11px sans-serif";
  ctx.textAlign = "center";
  ctx.textBaseline = "top";
  for (const t of ticks(xs[0], xs[1], 6)) {
    const [u] = toPx(t, 0);
    ctx.fillText(shortNumber(t), u, top + height + 4);
    tickLine(ctx, u, top, u, top + height, t === 0);
  }
  ctx.textAlign = "right";
  ctx.textBaseline = "middle";
  for (const t of ticks(ys[0], ys[1], 6)) {
    const [, v] = toPx(0, t);
    ctx.fillText(shortNumber(t), left - 5, v);
    tickLine(ctx, left, v, left + width, v, t === 0);
  }
  ctx.textAlign = "center";
  ctx.textBaseline = "bottom";
  ctx.fillText(labels[0], left + width / 2, top + height + 32);
  ctx.save();
  ctx.translate(11, top + height / 2);
  ctx.rotate(-Math.PI / 2);
  ctx.textBaseline = "top";
  ctx.fillText(labels[1], 0, -8);
  ctx.restore();
}

function tickLine(ctx, x0, y0, x1, y1, zero) {
  ctx.strokeStyle = zero ? "rgba(128,128,128,0.55)" : "rgba(128,128,128,0.15)";
  ctx.beginPath();
  ctx.moveTo(x0, y0);
  ctx.lineTo(x1, y1);
  ctx.stroke();
}

function drawChartFrame(ctx, box, ink, yTicks, xTicks) {
  ctx.strokeStyle = "rgba(128,128,128,0.5)";
  ctx.lineWidth = 1;
  ctx.strokeRect(box.left, box.top, box.width, box.height);
  ctx.fillStyle = ink;
  ctx.font = "10px sans-serif";
  ctx.textAlign = "right";
  ctx.textBaseline = "middle";
  for (const [y, text] of yTicks) {
    ctx.fillText(text, box.left - 4, y);
    tickLine(ctx, box.left, y, box.left + box.width, y, false);
  }
  ctx.textAlign = "center";
  ctx.textBaseline = "top";
  for (const [x, text] of xTicks) ctx.fillText(text, x, box.top + box.height + 3);
}

function drawCursor(ctx, box, x, ink) {
  ctx.strokeStyle = ink;
  ctx.globalAlpha = 0.6;
  ctx.lineWidth = 1;
  ctx.beginPath();
  ctx.moveTo(x, box.top);
  ctx.lineTo(x, box.top + box.height);
  ctx.stroke();
  ctx.globalAlpha = 1;
}

function polyline(ctx, points) {
  ctx.beginPath();
  let open = false;
  for (const point of points) {
    if (!point) { open = false; continue; }
    if (open) ctx.lineTo(point[0], point[1]); else ctx.moveTo(point[0], point[1]);
    open = true;
  }
  ctx.stroke();
}

function dot(ctx, x, y, colour) {
  ctx.fillStyle = colour;
  ctx.beginPath();
  ctx.arc(x, y, 3, 0, 2 * Math.PI);
  ctx.fill();
}

function shortNumber(v) {
  const a = Math.abs(v);
  if (a >= 1000) return `${Math.round(v / 100) / 10}k`;
  if (a >= 100) return String(Math.round(v));
  if (a >= 10) return v.toFixed(1).replace(/\.0$/, "");
  if (a === 0) return "0";
  return Number(v.toPrecision(2)).toString();
}
