// An imported model's graph, run fenced: in a Web Worker of its own (lib/ort_worker.js) with a watchdog.
// The project's own exports run on the page's thread (lib/runtime.js's Graph); a graph that came from
// someone else's file runs here, where a loop that never ends or a node that asks for all the memory
// costs its worker, not the page.
//
// FencedGraph has Graph's interface (run, runTensor, ort.Tensor for LatestDecoder), one run at a time. A
// run that takes longer than its limit ends the worker; that run is rejected with the reason and the graph
// is dead: every later request fails at once (the page says so where the digit would be). Outputs that are
// not `rowValues` numbers per input row are refused.

import { fetchBytes } from "./assets.js";

// One request may take 2 s, plus 8 ms per input row past the first: a graph the import accepted takes at
// most 1 s per 256 codes on the server (4 ms each), and one WebAssembly thread is allowed twice that. A
// hover (one code) is stopped after 2 s, a grid of 30 x 30 after 9.2 s.
export const RUN_SECONDS = 2;
export const ROW_SECONDS = 0.008;
// Making the session (parsing the graph, compiling the runtime) in a fresh worker.
export const LOAD_SECONDS = 30;
// The most WebAssembly memory the worker's runtime may grow to (the runtime's own maximum is 4 GiB).
export const MEMORY_BYTES = 1024 ** 3;

const WORKER_URL = new URL("./ort_worker.js", import.meta.url);

function seconds(value) {
  return Number(value.toPrecision(2));
}

export function runLimitSeconds(rows) {
  return RUN_SECONDS + ROW_SECONDS * Math.max(0, rows - 1);
}

// What Graph's callers make with `new graph.ort.Tensor(type, data, dims)`: the data is read (copied) when
// the tensor is run, so a caller that refills it, as LatestDecoder does, sends what it holds then.
class FencedTensor {
  constructor(type, data, dims) {
    if (type !== "float32") throw new Error(`a fenced graph takes float32 inputs, not ${type}`);
    this.type = type;
    this.data = data;
    this.dims = dims;
  }
}

export class FencedGraph {
  // what: "decoder" | "encoder" (for messages); rowValues: numbers per input row of every output (784 for a
  // decoder's image, D for an encoder's code); unit: what one input row is ("codes", "images").
  constructor({ what = "decoder", rowValues, unit = "codes" }) {
    this.ort = { Tensor: FencedTensor };
    this.what = what;
    this.rowValues = rowValues;
    this.unit = unit;
    this.worker = new Worker(WORKER_URL, { type: "module", name: `fenced ${what}` });
    this.pending = null; // {id, resolve, reject, timer}
    this.nextId = 1;
    this.dead = null; // the Error every request gets once the worker is gone
    this.queue = Promise.resolve();
    this.worker.onmessage = ({ data }) => this.#answer(data);
    this.worker.onerror = (event) => {
      event.preventDefault();
      this.#kill(new Error(`this imported ${this.what} failed in its worker (${event.message || "it stopped"})`));
    };
  }

  // vendor: {module, wasm} as for loadRuntime; bytes: the graph (ArrayBuffer). Resolves when it can run.
  async load(vendor, bytes) {
    const wasm = await fetchBytes(vendor.wasm);
    const module = new URL(vendor.module, window.location.href).href;
    // Copies, handed over: the cached buffers stay with the page.
    const message = { kind: "load", module, wasm: wasm.slice(0), model: bytes.slice(0), memoryBytes: MEMORY_BYTES };
    const reply = await this.#ask(message, LOAD_SECONDS, () =>
      `this imported ${this.what} took more than ${LOAD_SECONDS} s to load and was stopped`, [message.wasm, message.model]);
    this.inputName = reply.inputNames[0];
    this.outputNames = reply.outputNames;
    return this;
  }

  // data: Float32Array of batch * prod(shape) values -> {outputName: Float32Array}
  run(data, batch, shape) {
    return this.runTensor(new FencedTensor("float32", data, [batch, ...shape]));
  }

  runTensor(input) {
    const job = this.queue.then(async () => {
      const rows = input.dims[0];
      const limit = runLimitSeconds(rows);
      const data = Float32Array.from(input.data);
      const reply = await this.#ask({ kind: "run", data, dims: input.dims }, limit, () =>
        `this imported ${this.what} took more than ${seconds(limit)} s on one request (${this.#count(rows)}) and was ` +
        "stopped: it no longer runs in this page", [data.buffer]);
      return this.#checked(reply, rows);
    });
    this.queue = job.catch(() => {});
    return job;
  }

  #count(rows) {
    return `${rows} ${rows === 1 ? this.unit.replace(/s$/, "") : this.unit}`;
  }

  #checked(reply, rows) {
    const result = {};
    for (const name of this.outputNames) {
      const values = reply.outputs?.[name];
      const expected = rows * this.rowValues;
      if (!(values instanceof Float32Array) || values.length !== expected || reply.dims[name]?.[0] !== rows) {
        const got = values instanceof Float32Array ? `${values.length} numbers [${reply.dims[name]}]` : "no float32 numbers";
        throw new Error(`this imported ${this.what} gave ${got} as ${name} for ${this.#count(rows)}, not ${rows} x ${this.rowValues}: refused`);
      }
      result[name] = values;
    }
    return result;
  }

  // One message to the worker -> its reply; past `limit` seconds the worker is ended and `late()` says why.
  #ask(message, limit, late, transfer = []) {
    if (this.dead) return Promise.reject(this.dead);
    return new Promise((resolve, reject) => {
      const id = this.nextId++;
      const timer = setTimeout(() => this.#kill(new Error(late())), limit * 1000);
      this.pending = { id, resolve, reject, timer };
      this.worker.postMessage({ ...message, id }, transfer);
    });
  }

  #answer(data) {
    const pending = this.pending;
    if (!pending || data.id !== pending.id) return;
    if (data.error !== undefined) {
      // A failed run may have left the runtime in any state (an allocation failure aborts it): the worker goes.
      const memory = /alloc|memory|OOM/i.test(data.error) ? ` (it may not have more than ${MEMORY_BYTES / 1024 ** 3} GiB here)` : "";
      this.#kill(new Error(`this imported ${this.what} failed: ${data.error}${memory}; it no longer runs in this page`));
      return;
    }
    clearTimeout(pending.timer);
    this.pending = null;
    pending.resolve(data);
  }

  // End the worker (whatever it is running), fail the request under way and every later one with `error`.
  #kill(error) {
    if (this.dead) return;
    this.dead = error;
    this.worker.terminate();
    const pending = this.pending;
    this.pending = null;
    if (pending) {
      clearTimeout(pending.timer);
      pending.reject(error);
    }
  }

  dispose() {
    this.#kill(new Error(`this imported ${this.what} was closed`));
  }
}
