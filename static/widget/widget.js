// The notebook widget's front end (vae/widget.py, anywidget): the dashboard's explorer, run by the same
// stand-in as the static site (components/latent_planes/standalone.js), with everything it needs sent by the
// kernel through the widget's own state, nothing fetched from a server:
//   _modules  {path under static/: source}   the page's modules, as the site copies them
//   _assets   {path: bytes}                  onnxruntime-web's files and the images (fixed for the widget)
//   _files    {path: bytes}                  each plane's decoder and points (new when the view changes)
//   _manifest                                what the site's manifest.json holds; its paths name the files
// and the state a person reads and sets from Python: pinned {plane, point, index, code}, selection [indices],
// grid (the manifold grid's n, 0 for none)
// (the view is Python's: a new one arrives as new _files and _manifest).
//
// anywidget loads this file from a blob URL, where relative imports cannot resolve; so each module is made a
// blob URL of its own, its relative imports ("../../lib/x.js", new URL("./x.js", import.meta.url)) rewritten
// to the blob URLs of the modules they name, dependencies first. The sources stay the files in static/.

const RELATIVE = /(["'])(\.\.?\/[^"'\s]+\.js)\1/g;

// "components/latent_planes/explorer.js" + "../../lib/assets.js" -> "lib/assets.js"
function resolvePath(from, specifier) {
  return new URL(specifier, `https://modules.invalid/${from}`).pathname.slice(1);
}

// One blob URL per module text for the page's life: every widget in the notebook runs the same module
// instances (one explorer, one onnxruntime-web), as the dashboard's components do. Keyed by the text after
// its imports are rewritten, so a module whose dependency changed is a new module too.
const byText = new Map(); // rewritten source -> blob URL

function moduleUrls(sources) {
  const urls = new Map();
  const loading = new Set();
  const urlOf = (path) => {
    if (urls.has(path)) return urls.get(path);
    if (!(path in sources)) throw new Error(`the widget was not sent the module ${path}`);
    if (loading.has(path)) throw new Error(`the page's modules import each other in a circle at ${path}`);
    loading.add(path);
    const text = sources[path].replace(RELATIVE, (match, quote, specifier) => {
      const target = resolvePath(path, specifier);
      return target in sources ? `${quote}${urlOf(target)}${quote}` : match;
    });
    loading.delete(path);
    if (!byText.has(text)) byText.set(text, URL.createObjectURL(new Blob([text], { type: "text/javascript" })));
    urls.set(path, byText.get(text));
    return urls.get(path);
  };
  return urlOf;
}

// {path: DataView} -> {path: blob URL}. A .gz file (the runtime's .wasm) is inflated here: lib/assets.js
// inflates by the URL's ending, which a blob URL does not have. The runtime's module is imported from its
// blob, which a browser allows only with a JavaScript type.
async function fileUrls(files) {
  const entries = await Promise.all(Object.entries(files).map(async ([path, view]) => {
    const type = /\.m?js$/.test(path) ? "text/javascript" : "";
    let blob = new Blob([view], { type });
    if (path.endsWith(".gz")) blob = await new Response(blob.stream().pipeThrough(new DecompressionStream("gzip"))).blob();
    return [path, URL.createObjectURL(blob)];
  }));
  return Object.fromEntries(entries);
}

// The manifest with each path that names a sent file replaced by that file's blob URL.
function relocate(value, urls) {
  if (typeof value === "string") return urls[value] ?? value;
  if (Array.isArray(value)) return value.map((v) => relocate(v, urls));
  if (value && typeof value === "object") return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, relocate(v, urls)]));
  return value;
}

// Python's pinned {plane, point, index, code} <-> the stand-in's {side, point, index}.
const fromPython = (p) => (p ? { side: p.plane, point: [p.point[0], p.point[1]], index: p.index ?? null } : null);
const toPython = (p) => ({ plane: p.side, point: p.point, index: p.index, code: null });

// The modules and fixed files of one widget, made once however often it is displayed.
const loaded = new WeakMap();

async function setUp(model) {
  if (!loaded.has(model)) {
    loaded.set(model, (async () => {
      const urlOf = moduleUrls(model.get("_modules"));
      const [{ StandalonePlanes }, assets] = await Promise.all([
        import(urlOf("components/latent_planes/standalone.js")),
        fileUrls(model.get("_assets")),
      ]);
      return { StandalonePlanes, assets };
    })());
  }
  return loaded.get(model);
}

async function render({ model, el }) {
  const { StandalonePlanes, assets } = await setUp(model);
  const data = async () => relocate(structuredClone(model.get("_manifest")), { ...assets, ...(await fileUrls(model.get("_files"))) });
  let sentSelection = null;
  const planes = new StandalonePlanes(await data(), el, {
    onPin: (pin) => {
      model.set("pinned", toPython(pin));
      model.save_changes();
    },
    onSelection: (indices) => {
      sentSelection = JSON.stringify(indices);
      model.set("selection", indices);
      model.save_changes();
    },
  });
  const pinned = () => planes.pin(fromPython(model.get("pinned")));
  const selection = () => {
    const indices = model.get("selection") ?? [];
    if (JSON.stringify(indices) !== sentSelection) planes.select(indices);
  };
  const planesChanged = async () => {
    planes.data = await data();
    planes.pinned = null;
    planes.ends = [];
    planes.render();
  };
  const grid = () => planes.showGrid(model.get("grid"));
  model.on("change:pinned", pinned);
  model.on("change:selection", selection);
  model.on("change:grid", grid);
  model.on("change:_manifest", planesChanged);
  // A widget displayed again shows what Python holds now.
  const pin = fromPython(model.get("pinned"));
  if (pin) await planes.pin(pin);
  if ((model.get("selection") ?? []).length) planes.select(model.get("selection"));
  planes.data.grid = model.get("grid") ? { n: model.get("grid") } : null;
  planes.render();
  return () => {
    model.off("change:pinned", pinned);
    model.off("change:selection", selection);
    model.off("change:grid", grid);
    model.off("change:_manifest", planesChanged);
  };
}

export default { render };
