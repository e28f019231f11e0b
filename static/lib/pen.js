// A pen on a canvas: round white strokes on black, MNIST's polarity, in the canvas's own pixels however
// large it is shown. Shared by the live pad (components/your_digit) and the server path's pad
// (components/digit_canvas).

// Draw on `canvas` with the pointer. `onMove(timeStamp)` runs after each pen-down and each stroke segment,
// `onStroke(dataUrl)` at the end of a stroke with the picture as a PNG data URL. Returns `clear(brush)`,
// which blanks the canvas and sets the brush width for what follows.
export function attachPen(canvas, { onMove = () => {}, onStroke = () => {} } = {}) {
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  let last = null;
  const at = (event) => {
    const box = canvas.getBoundingClientRect();
    return [((event.clientX - box.left) * canvas.width) / box.width, ((event.clientY - box.top) * canvas.height) / box.height];
  };
  canvas.addEventListener("pointerdown", (event) => {
    canvas.setPointerCapture(event.pointerId);
    last = at(event);
    ctx.beginPath();
    ctx.arc(last[0], last[1], ctx.lineWidth / 2, 0, 2 * Math.PI);
    ctx.fill();
    onMove(event.timeStamp);
  });
  canvas.addEventListener("pointermove", (event) => {
    if (!last) return;
    const next = at(event);
    ctx.beginPath();
    ctx.moveTo(last[0], last[1]);
    ctx.lineTo(next[0], next[1]);
    ctx.stroke();
    last = next;
    onMove(event.timeStamp);
  });
  const finish = () => {
    if (!last) return;
    last = null;
    onStroke(canvas.toDataURL("image/png"));
  };
  canvas.addEventListener("pointerup", finish);
  canvas.addEventListener("pointercancel", finish);
  return function clear(brush = 18) {
    ctx.fillStyle = "#000";
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    ctx.fillStyle = "#fff";
    ctx.strokeStyle = "#fff";
    ctx.lineCap = "round";
    ctx.lineJoin = "round";
    ctx.lineWidth = brush;
  };
}
