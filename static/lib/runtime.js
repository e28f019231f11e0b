// Decoders and encoders in the page: onnxruntime-web (WebAssembly, one thread), one session per model file,
// kept for the life of the page (a model's session serves every component and rerun that shows it). An
// imported model's graphs run fenced instead, each in a worker of its own with a watchdog (lib/fence.js).
//
// The runtime module and its .wasm are served by the app itself (static/vendor, see app/vendor.py); the
// .wasm arrives gzip-compressed and is handed to the runtime as bytes, so it never guesses a URL.

import { fetchBytes } from "./assets.js";
import { FencedGraph } from "./fence.js";

let runtime = null;
const sessions = new Map();

// vendor: {module: URL of ort.wasm.bundle.min.mjs, wasm: URL of the gzip-compressed .wasm}
export function loadRuntime(vendor) {
  runtime ??= (async () => {
    const [ort, wasm] = await Promise.all([import(new URL(vendor.module, window.location.href).href), fetchBytes(vendor.wasm)]);
    ort.env.wasm.wasmBinary = wasm;
    // Threads need cross-origin isolation, which Streamlit's server does not offer; SIMD alone is enough.
    ort.env.wasm.numThreads = 1;
    ort.env.wasm.proxy = false;
    ort.env.logLevel = "error";
    return ort;
  })();
  runtime.catch(() => (runtime = null));
  return runtime;
}

// One graph, run one call at a time (a session does not take overlapping runs).
export class Graph {
  constructor(ort, session) {
    this.ort = ort;
    this.session = session;
    this.inputName = session.inputNames[0];
    this.queue = Promise.resolve();
  }

  // data: Float32Array of batch * prod(shape) values -> {outputName: Float32Array}
  run(data, batch, shape) {
    return this.runTensor(new this.ort.Tensor("float32", data, [batch, ...shape]));
  }

  runTensor(input) {
    const job = this.queue.then(async () => {
      const outputs = await this.session.run({ [this.inputName]: input });
      const result = {};
      for (const name of this.session.outputNames) result[name] = outputs[name].data;
      return result;
    });
    this.queue = job.catch(() => {});
    return job;
  }
}

// What a fenced graph's outputs must be, per input row: a decoder's image, an encoder's code(s) of D numbers.
export const DECODER_FENCE = { what: "decoder", rowValues: 784, unit: "codes" };
export const encoderFence = (dim) => ({ what: "encoder", rowValues: dim, unit: "images" });

// fence: null for the project's own exports (run on this thread); for an imported model's graph (the spec's
// `fenced`), {what, rowValues, unit} as FencedGraph takes them: it runs in a worker with a watchdog.
export function loadGraph(vendor, url, fence = null) {
  if (!sessions.has(url)) {
    const load = fence
      ? fetchBytes(url).then((bytes) => new FencedGraph(fence).load(vendor, bytes))
      : (async () => {
        const [ort, bytes] = await Promise.all([loadRuntime(vendor), fetchBytes(url)]);
        const session = await ort.InferenceSession.create(bytes, { executionProviders: ["wasm"], graphOptimizationLevel: "all" });
        return new Graph(ort, session);
      })();
    load.catch(() => sessions.delete(url));
    sessions.set(url, load);
  }
  return sessions.get(url);
}

// A decoder that answers the pointer: only the latest request is decoded, and while one decode runs the
// next waits for it, so a burst of pointer moves costs one decode per free moment, never a backlog. The
// input tensor is made once and refilled: nothing is allocated per pointer move on this side.
export class LatestDecoder {
  constructor(graph, dim) {
    this.graph = graph;
    this.dim = dim;
    this.pending = new Float32Array(dim);
    this.input = new Float32Array(dim);
    this.tensor = new graph.ort.Tensor("float32", this.input, [1, dim]);
    this.done = null;
    this.waiting = false;
    this.running = false;
  }

  // code: [D] numbers (copied at once); done(pixels Float32Array [784]) runs when this request is decoded,
  // unless a newer one replaced it first; failed(error), when given, if its decode fails (a fenced graph
  // stopped by its watchdog), else the error is thrown.
  request(code, done, failed = null) {
    this.pending.set(code);
    this.done = done;
    this.failed = failed;
    this.waiting = true;
    if (!this.running) this.#next();
  }

  async #next() {
    this.input.set(this.pending);
    const done = this.done, failed = this.failed;
    this.waiting = false;
    this.running = true;
    try {
      const out = await this.graph.runTensor(this.tensor);
      done(out.image ?? Object.values(out)[0]);
    } catch (error) {
      if (!failed) throw error;
      failed(error);
    } finally {
      this.running = false;
      if (this.waiting) this.#next();
    }
  }
}
