// White strokes on a black canvas (MNIST's polarity, ten times its size); at the end of each stroke the
// picture goes to Python as a PNG data URL, and "Clear" sends null. The pen is the live pad's
// (lib/pen.js), imported by the URL Python sends: this module runs from an inline blob, which has no base
// URL of its own.
export default async function (component) {
  const { setStateValue, parentElement, data } = component;
  const canvas = parentElement.querySelector("canvas");
  // Called again on every rerun: set up once, or each rerun would wipe the drawing and add listeners.
  if (canvas.dataset.ready) return;
  canvas.dataset.ready = "1";
  let attachPen;
  try {
    ({ attachPen } = await import(new URL(data.modules.pen, window.location.href).href));
  } catch (error) {
    console.error(error);
    const note = document.createElement("div");
    note.textContent = `The drawing pad could not start: ${error.message}. Upload an image instead.`;
    parentElement.appendChild(note);
    return;
  }
  const clear = attachPen(canvas, { onStroke: (url) => setStateValue("drawing", url) });
  clear(data.brush || 18);
  parentElement.querySelector("button").addEventListener("click", () => {
    clear(data.brush || 18);
    setStateValue("drawing", null);
  });
}
