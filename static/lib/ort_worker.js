// One imported graph, run in a Web Worker of its own (started by lib/fence.js, which holds its watchdog):
// a stranger's decoder runs here, away from the page. A worker has no DOM, no document, no cookies and no
// access to the page's objects; the page can end it at any moment (Worker.terminate), even in the middle
// of a WebAssembly call that never returns.
//
// Messages (each answered once, with the same id):
//   {id, kind: "load", module, wasm, model, memoryBytes} -> {id, inputNames, outputNames}
//     module: absolute URL of ort.wasm.bundle.min.mjs; wasm, model: ArrayBuffers (the runtime's .wasm, the
//     graph); memoryBytes: the most WebAssembly memory the runtime may have here
//   {id, kind: "run", data, dims} -> {id, outputs: {name: Float32Array}, dims: {name: [...]}}
//     data: Float32Array of prod(dims) values
//   any failure -> {id, error: message}

// The runtime's WebAssembly memory may grow to 4 GiB (its build's maximum). Here it is made with a smaller
// maximum: a graph that asks for more gets an allocation failure in this worker (its run fails), not a tab
// that the browser ends for lack of memory. A memory whose maximum is below the module's declared one is
// a valid import, so the runtime runs unchanged.
const PAGE_BYTES = 65536;

function capMemory(limitPages) {
  const NativeMemory = WebAssembly.Memory;
  function Memory(descriptor) {
    const capped = { ...descriptor };
    if (capped.maximum === undefined || capped.maximum > limitPages) capped.maximum = Math.max(limitPages, capped.initial);
    return new NativeMemory(capped);
  }
  Memory.prototype = NativeMemory.prototype;
  WebAssembly.Memory = Memory;
}

// What limits the harm a graph can do when it runs, set for every imported graph:
// - graphOptimizationLevel "disabled": no constant folding at load, so none of the graph's nodes run while
//   the session is made (folding would run them outside any request's watchdog); imported graphs are the
//   standard wrappers around small user graphs, for which fusions gain little;
// - enableCpuMemArena false: each run's tensors are freed when it ends instead of kept in an arena sized by
//   the largest run;
// - enableMemPattern false: no memory planned (and reserved) ahead from the shapes of a first run;
// - executionMode "sequential", one thread: the page never spends more than one core on a stranger's graph;
// - logSeverityLevel 3 (errors only): a graph cannot fill the console with warnings.
const SESSION_OPTIONS = {
  executionProviders: ["wasm"],
  graphOptimizationLevel: "disabled",
  enableCpuMemArena: false,
  enableMemPattern: false,
  executionMode: "sequential",
  intraOpNumThreads: 1,
  interOpNumThreads: 1,
  logSeverityLevel: 3,
};

let ort = null;
let session = null;

async function load({ module, wasm, model, memoryBytes }) {
  capMemory(Math.floor(memoryBytes / PAGE_BYTES));
  ort = await import(module);
  ort.env.wasm.wasmBinary = wasm;
  // Threads need cross-origin isolation (and would spend more cores); the proxy would start a worker of its own.
  ort.env.wasm.numThreads = 1;
  ort.env.wasm.proxy = false;
  ort.env.logLevel = "error";
  session = await ort.InferenceSession.create(new Uint8Array(model), SESSION_OPTIONS);
  return { inputNames: session.inputNames, outputNames: session.outputNames };
}

async function run({ data, dims }) {
  const outputs = await session.run({ [session.inputNames[0]]: new ort.Tensor("float32", data, dims) }, { logSeverityLevel: 3 });
  const reply = { outputs: {}, dims: {} };
  for (const name of session.outputNames) {
    const tensor = outputs[name];
    if (tensor.type !== "float32") throw new Error(`its output ${name} is ${tensor.type}, not float32`);
    reply.outputs[name] = tensor.data;
    reply.dims[name] = tensor.dims;
  }
  return reply;
}

self.onmessage = async ({ data: message }) => {
  const { id, kind } = message;
  try {
    if (kind === "load") {
      self.postMessage({ id, ...(await load(message)) });
    } else if (kind === "run") {
      const reply = await run(message);
      self.postMessage({ id, ...reply }, Object.values(reply.outputs).map((values) => values.buffer));
    } else {
      throw new Error(`unknown request ${kind}`);
    }
  } catch (error) {
    self.postMessage({ id, error: String(error?.message ?? error) });
  }
};
