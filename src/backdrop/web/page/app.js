// Backdrop's live page: each model of models.json segments the camera (or a video file) with
// MediaPipe Tasks for Web; the effect and the figures are drawn per model, side by side.
import { FilesetResolver, ImageSegmenter } from "./tasks-vision/vision_bundle.mjs";

const video = document.getElementById("video");
const status = document.getElementById("status");
const effect = document.getElementById("effect");
const backdrop = { ready: false, error: null, stats: [], segmentImage: null };
window.backdrop = backdrop;  // read by the tests, handy in the console

let lastTimestamp = 0;
function nextTimestamp() {  // VIDEO mode needs timestamps that only go up
  lastTimestamp = Math.max(lastTimestamp + 1, performance.now());
  return lastTimestamp;
}

function defaultBackground(width, height) {
  const canvas = new OffscreenCanvas(width, height);
  const context = canvas.getContext("2d");
  const gradient = context.createLinearGradient(0, 0, width, height);
  gradient.addColorStop(0, "#2a9d8f");
  gradient.addColorStop(1, "#e9c46a");
  context.fillStyle = gradient;
  context.fillRect(0, 0, width, height);
  return canvas;
}
let background = null;

function view(label) {
  const figure = document.createElement("figure");
  const canvas = document.createElement("canvas");
  const caption = document.createElement("figcaption");
  // The label is a file name from outside: text, never markup.
  const name = document.createElement("b");
  name.textContent = label;
  const stats = document.createElement("span");
  stats.className = "stats";
  stats.textContent = "starting...";
  caption.append(name, " ", stats);
  figure.append(canvas, caption);
  document.getElementById("views").append(figure);
  return { canvas, caption: stats };
}

// The person layer: the frame where the mask says person (alpha = probability).
function render(canvas, mask, width, height, scratch) {
  canvas.width = width;
  canvas.height = height;
  const context = canvas.getContext("2d");
  const alpha = new ImageData(width, height);
  for (let i = 0; i < mask.length; i++) {
    const value = Math.round(mask[i] * 255);
    alpha.data[4 * i] = alpha.data[4 * i + 1] = alpha.data[4 * i + 2] = value;
    alpha.data[4 * i + 3] = effect.value === "mask" ? 255 : value;
  }
  if (effect.value === "mask") {
    context.putImageData(alpha, 0, 0);
    return;
  }
  scratch.width = width;
  scratch.height = height;
  const person = scratch.getContext("2d");
  person.putImageData(alpha, 0, 0);
  person.globalCompositeOperation = "source-in";
  person.drawImage(video, 0, 0, width, height);
  person.globalCompositeOperation = "source-over";
  if (effect.value === "blur") {
    context.filter = "blur(12px)";
    context.drawImage(video, 0, 0, width, height);
    context.filter = "none";
  } else {
    if (!background || background.width !== width || background.height !== height) {
      background = defaultBackground(width, height);
    }
    context.drawImage(background, 0, 0, width, height);
  }
  context.drawImage(scratch, 0, 0);
}

// Mean absolute difference between what a view shows and the input frame (0..255).
function differenceFromInput(canvas) {
  const probe = new OffscreenCanvas(64, 48);
  const context = probe.getContext("2d");
  context.drawImage(video, 0, 0, 64, 48);
  const input = context.getImageData(0, 0, 64, 48).data;
  context.drawImage(canvas, 0, 0, 64, 48);
  const output = context.getImageData(0, 0, 64, 48).data;
  let total = 0;
  for (let i = 0; i < input.length; i += 4) {
    total += Math.abs(input[i] - output[i]) + Math.abs(input[i + 1] - output[i + 1]) + Math.abs(input[i + 2] - output[i + 2]);
  }
  return total / (3 * 64 * 48);
}

async function startSource() {
  if (document.getElementById("source").value === "camera") {
    video.srcObject = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480 } });
  } else {
    document.getElementById("video-file").click();
    return;
  }
  await video.play();
}

async function main() {
  const models = await (await fetch("models.json")).json();
  const fileset = await FilesetResolver.forVisionTasks(new URL("tasks-vision/wasm", location.href).href);
  const segmenters = [];
  for (const model of models) {
    const segmenter = await ImageSegmenter.createFromOptions(fileset, {
      baseOptions: { modelAssetPath: model.path, delegate: "CPU" },
      runningMode: "VIDEO",
      outputConfidenceMasks: true,
      outputCategoryMask: false,
    });
    const stats = { label: model.label, frames: 0, fps: 0, modelMs: 0, difference: null };
    backdrop.stats.push(stats);
    segmenters.push({ segmenter, stats, scratch: document.createElement("canvas"), ...view(model.label) });
  }
  backdrop.segmentImage = async (url, index = 0) => {
    const image = new Image();
    image.src = url;
    await image.decode();
    const result = segmenters[index].segmenter.segmentForVideo(image, nextTimestamp());
    const mask = result.confidenceMasks[0];
    const values = Array.from(mask.getAsFloat32Array());
    const answer = { width: mask.width, height: mask.height, mask: values };
    result.close();
    return answer;
  };
  document.getElementById("video-file").onchange = async (event) => {
    video.srcObject = null;
    video.src = URL.createObjectURL(event.target.files[0]);
    await video.play();
  };
  document.getElementById("background-file").onchange = async (event) => {
    const bitmap = await createImageBitmap(event.target.files[0]);
    background = new OffscreenCanvas(video.videoWidth, video.videoHeight);
    background.getContext("2d").drawImage(bitmap, 0, 0, video.videoWidth, video.videoHeight);
  };
  effect.onchange = () => { if (effect.value === "replace") document.getElementById("background-file").click(); };
  document.getElementById("source").onchange = startSource;
  await startSource();
  backdrop.ready = true;
  status.textContent = "";
  let lastVideoTime = -1;
  const started = performance.now();
  function frame() {
    if (video.readyState >= 2 && video.currentTime !== lastVideoTime) {
      lastVideoTime = video.currentTime;
      const timestamp = nextTimestamp();
      for (const view of segmenters) {
        const begin = performance.now();
        const result = view.segmenter.segmentForVideo(video, timestamp);
        const milliseconds = performance.now() - begin;
        const mask = result.confidenceMasks[0];
        render(view.canvas, mask.getAsFloat32Array(), mask.width, mask.height, view.scratch);
        result.close();
        const stats = view.stats;
        stats.frames += 1;
        stats.modelMs = stats.frames === 1 ? milliseconds : 0.9 * stats.modelMs + 0.1 * milliseconds;
        stats.fps = stats.frames / ((performance.now() - started) / 1000);
        if (stats.frames % 10 === 1) stats.difference = differenceFromInput(view.canvas);
        view.caption.textContent = ` ${stats.fps.toFixed(1)} frames/s, model ${stats.modelMs.toFixed(1)} ms`;
      }
    }
    requestAnimationFrame(frame);
  }
  requestAnimationFrame(frame);
}

main().catch((error) => {
  backdrop.error = String(error);
  status.textContent = `error: ${error}`;
});
