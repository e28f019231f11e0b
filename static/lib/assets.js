// Files the server publishes for the page (static/cache/<sha256>.<kind>.gz, see app/frontend.py), fetched
// once per URL and inflated with the browser's own DecompressionStream. URLs name their content, so a URL
// already fetched in this page is never fetched again. The layout of a plane's points file is read here too.

const pending = new Map();

export function fetchBytes(url) {
  if (!pending.has(url)) {
    const load = (async () => {
      const response = await fetch(url);
      if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
      const body = url.endsWith(".gz") ? response.body.pipeThrough(new DecompressionStream("gzip")) : response.body;
      return new Response(body).arrayBuffer();
    })();
    // A failed fetch is forgotten, so the next render tries again.
    load.catch(() => pending.delete(url));
    pending.set(url, load);
  }
  return pending.get(url);
}

// A plane's points file (written by app/web_planes.py's pack_points), as views on its bytes, no copy:
// embedding Float32Array [N * 2], codes Float32Array [N * D], labels Uint8Array [N], one after the other.
export function unpackPoints(bytes, count, dim) {
  const expected = count * (8 + 4 * dim + 1);
  if (bytes.byteLength !== expected) {
    throw new Error(`points of ${count} x ${dim}: expected ${expected} bytes, got ${bytes.byteLength}`);
  }
  return {
    embedding: new Float32Array(bytes, 0, 2 * count),
    codes: new Float32Array(bytes, 8 * count, count * dim),
    labels: new Uint8Array(bytes, 8 * count + 4 * count * dim, count),
  };
}
