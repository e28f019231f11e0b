// White strokes on a black canvas (MNIST's polarity, ten times its size); at the end of each stroke the
// picture goes to Python as a PNG data URL, and "Clear" sends null.
export default function (component) {
  const { setStateValue, parentElement, data } = component;
  const canvas = parentElement.querySelector("canvas");
  // Called again on every rerun: set up once, or each rerun would wipe the drawing and add listeners.
  if (canvas.dataset.ready) return;
  canvas.dataset.ready = "1";
  const ctx = canvas.getContext("2d");
  const clear = () => {
    ctx.fillStyle = "#000";
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    ctx.fillStyle = "#fff";
  };
  clear();
  ctx.strokeStyle = "#fff";
  ctx.lineCap = "round";
  ctx.lineJoin = "round";
  ctx.lineWidth = (data && data.brush) || 18;
  let last = null;
  const at = (event) => {
    const box = canvas.getBoundingClientRect();
    return [(event.clientX - box.left) * canvas.width / box.width, (event.clientY - box.top) * canvas.height / box.height];
  };
  canvas.addEventListener("pointerdown", (event) => {
    canvas.setPointerCapture(event.pointerId);
    last = at(event);
    ctx.beginPath();
    ctx.arc(last[0], last[1], ctx.lineWidth / 2, 0, 2 * Math.PI);
    ctx.fill();
  });
  canvas.addEventListener("pointermove", (event) => {
    if (!last) return;
    const next = at(event);
    ctx.beginPath();
    ctx.moveTo(last[0], last[1]);
    ctx.lineTo(next[0], next[1]);
    ctx.stroke();
    last = next;
  });
  const finish = () => {
    if (!last) return;
    last = null;
    setStateValue("drawing", canvas.toDataURL("image/png"));
  };
  canvas.addEventListener("pointerup", finish);
  canvas.addEventListener("pointercancel", finish);
  parentElement.querySelector("button").addEventListener("click", () => {
    clear();
    setStateValue("drawing", null);
  });
}
