// Pixels in the page: decoder output to something a canvas shows, and a drawing to an MNIST-style digit,
// each computed as the server computes it (vae/plots.py's to_uint8_image, vae/digits.py's to_mnist) so the
// page and the server agree on every grey level.

export const SIDE = 28;
export const PIXELS = SIDE * SIDE;

// numpy's rint: halves go to the even neighbour.
function rint(value) {
  const floor = Math.floor(value), rest = value - floor;
  if (rest > 0.5) return floor + 1;
  if (rest < 0.5) return floor;
  return floor % 2 === 0 ? floor : floor + 1;
}

// Python's round() on a float: also half to even.
export const roundHalfEven = rint;

// A float grey level in [0, 1] (NaN as 0, clipped) -> 0..255, as to_uint8_image.
export function toByte(value) {
  if (!(value > 0)) return 0; // NaN and negatives
  return value >= 1 ? 255 : rint(value * 255);
}

// Grey levels values[offset .. offset + 784) (float in [0, 1], or bytes when `bytes`) -> the RGBA pixels of
// an ImageData of 28 x 28 (`out`, reused between frames: nothing is allocated here).
export function greyToRgba(values, offset, out, bytes = false) {
  for (let i = 0; i < PIXELS; i++) {
    const v = bytes ? values[offset + i] : toByte(values[offset + i]);
    const j = 4 * i;
    out[j] = v;
    out[j + 1] = v;
    out[j + 2] = v;
    out[j + 3] = 255;
  }
  return out;
}

// RGBA pixels of a drawing (opaque) -> grey levels Float64Array [h * w] in [0, 1], ink bright: Pillow's
// L conversion (ITU-R 601-2 luma, in its integer form), inverted when the border is mostly light (dark ink
// on paper), as vae/digits.py's read_image does for an opaque image.
export function rgbaToGrey(rgba, width, height) {
  const grey = new Float64Array(width * height);
  for (let i = 0; i < width * height; i++) {
    const r = rgba[4 * i], g = rgba[4 * i + 1], b = rgba[4 * i + 2];
    grey[i] = ((r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16) / 255;
  }
  let border = 0, n = 0;
  for (let x = 0; x < width; x++) { border += grey[x] + grey[(height - 1) * width + x]; n += 2; }
  for (let y = 0; y < height; y++) { border += grey[y * width] + grey[y * width + width - 1]; n += 2; }
  if (border / n > 0.5) for (let i = 0; i < grey.length; i++) grey[i] = 1 - grey[i];
  return grey;
}

// --- Pillow's Image.resize(size, LANCZOS) of an 8-bit grey image (libImaging/Resample.c) -----------------

const PRECISION_BITS = 32 - 8 - 2;

function sinc(x) {
  if (x === 0) return 1;
  x *= Math.PI;
  return Math.sin(x) / x;
}

function lanczos(x) {
  return -3 <= x && x < 3 ? sinc(x) * sinc(x / 3) : 0;
}

// Fixed-point filter taps for resampling inSize samples to outSize: {bounds: [min, count] per output, taps}.
function coefficients(inSize, outSize) {
  const scale = inSize / outSize;
  const filterScale = Math.max(scale, 1);
  const support = 3 * filterScale;
  const size = Math.ceil(support) * 2 + 1;
  const bounds = new Int32Array(outSize * 2);
  const taps = new Int32Array(outSize * size);
  const weights = new Float64Array(size);
  for (let out = 0; out < outSize; out++) {
    const center = (out + 0.5) * scale;
    const inverse = 1 / filterScale;
    // C's (int) cast truncates towards zero.
    let min = Math.trunc(center - support + 0.5);
    if (min < 0) min = 0;
    let max = Math.trunc(center + support + 0.5);
    if (max > inSize) max = inSize;
    max -= min;
    let total = 0;
    for (let x = 0; x < max; x++) {
      weights[x] = lanczos((x + min - center + 0.5) * inverse);
      total += weights[x];
    }
    for (let x = 0; x < max; x++) {
      const w = total !== 0 ? weights[x] / total : weights[x];
      taps[out * size + x] = Math.trunc(w < 0 ? -0.5 + w * (1 << PRECISION_BITS) : 0.5 + w * (1 << PRECISION_BITS));
    }
    bounds[2 * out] = min;
    bounds[2 * out + 1] = max;
  }
  return { bounds, taps, size };
}

function clip8(sum) {
  if (sum >= (1 << PRECISION_BITS) * 256) return 255;
  if (sum <= 0) return 0;
  return Math.floor(sum / (1 << PRECISION_BITS));
}

function horizontalPass(source, width, rows, firstRow, outWidth, c) {
  const out = new Uint8Array(outWidth * rows);
  for (let y = 0; y < rows; y++) {
    for (let x = 0; x < outWidth; x++) {
      const min = c.bounds[2 * x], count = c.bounds[2 * x + 1];
      let sum = 1 << (PRECISION_BITS - 1);
      for (let j = 0; j < count; j++) sum += source[(y + firstRow) * width + min + j] * c.taps[x * c.size + j];
      out[y * outWidth + x] = clip8(sum);
    }
  }
  return out;
}

function verticalPass(source, width, rowOffset, outHeight, c) {
  const out = new Uint8Array(width * outHeight);
  for (let y = 0; y < outHeight; y++) {
    const min = c.bounds[2 * y] - rowOffset, count = c.bounds[2 * y + 1];
    for (let x = 0; x < width; x++) {
      let sum = 1 << (PRECISION_BITS - 1);
      for (let j = 0; j < count; j++) sum += source[(min + j) * width + x] * c.taps[y * c.size + j];
      out[y * width + x] = clip8(sum);
    }
  }
  return out;
}

// Bytes [h * w] -> bytes [outH * outW], LANCZOS, as Pillow 13 does it: horizontal pass first (over only the
// rows the vertical pass reads), unless the height shrinks by more than twice as many pixels as the width.
export function resizeLanczos(bytes, width, height, outWidth, outHeight) {
  const needHorizontal = outWidth !== width, needVertical = outHeight !== height;
  if (!needHorizontal && !needVertical) return bytes.slice();
  const horizontal = coefficients(width, outWidth), vertical = coefficients(height, outHeight);
  const shrink = height - outHeight;
  if (!(shrink > 0 && shrink > (width - outWidth) * 2)) {
    let source = bytes, rowOffset = 0;
    if (needHorizontal) {
      const first = vertical.bounds[0], last = vertical.bounds[2 * outHeight - 2] + vertical.bounds[2 * outHeight - 1];
      source = horizontalPass(bytes, width, last - first, first, outWidth, horizontal);
      rowOffset = first;
    }
    return needVertical ? verticalPass(source, outWidth, rowOffset, outHeight, vertical) : source;
  }
  const tall = verticalPass(bytes, width, 0, outHeight, vertical);
  return needHorizontal ? horizontalPass(tall, width, outHeight, 0, outWidth, horizontal) : tall;
}

// --- MNIST's recipe, as vae/digits.py's to_mnist -----------------------------------------------------

export const FIELD = 28, BOX = 20;

// Grey levels [h * w] in [0, 1], ink bright -> Float32Array [784] in [0, 1], or null for a blank image:
// ink above a tenth of the brightest pixel, cropped, its longer side scaled to 20 px (LANCZOS), placed in
// 28 x 28 with its centre of mass at pixel (14, 14).
export function toMnist(grey, width, height, threshold = 0.1) {
  let peak = 0;
  for (let i = 0; i < grey.length; i++) if (grey[i] > peak) peak = grey[i];
  if (!(peak > 0.05)) return null;
  // numpy computes in float32 here: Math.fround keeps the same rounding.
  const peak32 = Math.fround(peak);
  let top = height, bottom = -1, left = width, right = -1;
  const ink = new Float32Array(width * height);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const g = Math.fround(grey[y * width + x]);
      if (g >= Math.fround(threshold * peak32)) {
        ink[y * width + x] = Math.fround(g / peak32);
        if (ink[y * width + x] !== 0) {
          if (y < top) top = y;
          if (y > bottom) bottom = y;
          if (x < left) left = x;
          if (x > right) right = x;
        }
      }
    }
  }
  const h = bottom - top + 1, w = right - left + 1;
  const crop = new Uint8Array(w * h);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) crop[y * w + x] = Math.trunc(Math.fround(ink[(y + top) * width + x + left] * 255));
  }
  const scale = BOX / Math.max(h, w);
  const outW = Math.max(1, roundHalfEven(w * scale)), outH = Math.max(1, roundHalfEven(h * scale));
  const boxed = resizeLanczos(crop, w, h, outW, outH);
  let total = 0, sumY = 0, sumX = 0;
  for (let y = 0; y < outH; y++) {
    for (let x = 0; x < outW; x++) {
      const v = Math.fround(boxed[y * outW + x] / 255);
      total += v;
      sumY += y * v;
      sumX += x * v;
    }
  }
  // To a millionth of a pixel first, as vae/digits.py: a centre exactly between two pixels tips the same way
  // whatever the order of the sums.
  const toMillionth = (v) => Math.round(v * 1e6) / 1e6;
  let fieldTop = roundHalfEven(toMillionth(FIELD / 2 - sumY / total));
  let fieldLeft = roundHalfEven(toMillionth(FIELD / 2 - sumX / total));
  fieldTop = Math.min(Math.max(fieldTop, 0), FIELD - outH);
  fieldLeft = Math.min(Math.max(fieldLeft, 0), FIELD - outW);
  const field = new Float32Array(PIXELS);
  for (let y = 0; y < outH; y++) {
    for (let x = 0; x < outW; x++) field[(y + fieldTop) * FIELD + x + fieldLeft] = boxed[y * outW + x] / 255;
  }
  return field;
}
