// What the in-page planes need of the browser, checked once for every component: WebGL 2 (lib/scatter.js
// draws the points with it) and WebAssembly with SIMD (the build of onnxruntime-web that lib/runtime.js
// loads). A component that finds something missing tells Python (its "support" state), which then serves
// the server's planes instead.

export function webglAvailable() {
  try {
    const gl = document.createElement("canvas").getContext("webgl2");
    if (!gl) return false;
    // Browsers cap live WebGL contexts per page: give this probe's back at once.
    gl.getExtension("WEBGL_lose_context")?.loseContext();
    return true;
  } catch {
    return false;
  }
}

export function wasmAvailable() {
  try {
    // The smallest module that uses a SIMD instruction (i32x4.splat): the build we ship needs SIMD.
    const simd = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 10, 1, 8, 0, 65, 0, 253, 15, 253, 98, 11]);
    return typeof WebAssembly === "object" && WebAssembly.validate(simd);
  } catch {
    return false;
  }
}

// The names of what this browser lacks, as the page and Python word them; empty when the planes can run.
export function missingSupport() {
  return [!webglAvailable() && "WebGL 2", !wasmAvailable() && "WebAssembly (with SIMD)"].filter(Boolean);
}
