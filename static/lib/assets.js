// Files the server publishes for the page (static/cache/<sha256>.<kind>.gz, see app/frontend.py), fetched
// once per URL and inflated with the browser's own DecompressionStream. URLs name their content, so a URL
// already fetched in this page is never fetched again.

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
