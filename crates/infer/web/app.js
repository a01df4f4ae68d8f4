// The draw-a-digit page: draws on a canvas, sends it to POST /api/predict as a PNG while the user draws,
// and shows the answer, the ten probabilities and the prediction after each step of the sequence.
"use strict";

const pad = document.getElementById("pad");
const pen = pad.getContext("2d");
const digitView = document.getElementById("digit");
const confidenceView = document.getElementById("confidence");
const bars = document.getElementById("bars");
const seen = document.getElementById("seen");
const heat = document.getElementById("steps");
const marker = document.getElementById("marker");
const slider = document.getElementById("step");
const stepText = document.getElementById("step-text");
const playButton = document.getElementById("play");
const statusView = document.getElementById("status");

const state = {
  model: null, // GET /api/health
  answer: null, // the last POST /api/predict answer
  drawing: false,
  inked: false,
  inFlight: false,
  dirty: false,
  last: null,
  timer: null,
};

function setState(name, message) {
  document.body.dataset.state = name;
  statusView.textContent = message || "";
}

// The pad: white ink on black, like MNIST.
function clearPad() {
  pen.fillStyle = "#000";
  pen.fillRect(0, 0, pad.width, pad.height);
  state.inked = false;
  state.answer = null;
  stopPlaying();
  digitView.textContent = "–";
  digitView.dataset.digit = "";
  confidenceView.textContent = "draw to start";
  renderBars(null);
  renderReading();
  setState("idle");
}

function point(event) {
  const rect = pad.getBoundingClientRect();
  return {
    x: ((event.clientX - rect.left) * pad.width) / rect.width,
    y: ((event.clientY - rect.top) * pad.height) / rect.height,
  };
}

function stroke(from, to) {
  pen.strokeStyle = "#fff";
  pen.fillStyle = "#fff";
  pen.lineWidth = 18;
  pen.lineCap = "round";
  pen.lineJoin = "round";
  pen.beginPath();
  pen.moveTo(from.x, from.y);
  pen.lineTo(to.x, to.y);
  pen.stroke();
  state.inked = true;
}

pad.addEventListener("pointerdown", (event) => {
  event.preventDefault();
  pad.setPointerCapture(event.pointerId);
  state.drawing = true;
  state.last = point(event);
  stroke(state.last, state.last);
  requestPrediction();
});
pad.addEventListener("pointermove", (event) => {
  if (!state.drawing) return;
  const next = point(event);
  stroke(state.last, next);
  state.last = next;
  requestPrediction();
});
for (const type of ["pointerup", "pointercancel"]) {
  pad.addEventListener(type, () => {
    if (!state.drawing) return;
    state.drawing = false;
    requestPrediction();
  });
}
document.getElementById("clear").addEventListener("click", clearPad);

// One request at a time; strokes drawn meanwhile are sent as soon as it returns.
function requestPrediction() {
  if (!state.inked) return;
  if (state.inFlight) {
    state.dirty = true;
    return;
  }
  state.inFlight = true;
  state.dirty = false;
  setState("busy");
  pad.toBlob(async (png) => {
    try {
      const response = await fetch("/api/predict", {
        method: "POST",
        headers: { "Content-Type": "image/png" },
        body: png,
      });
      const answer = await response.json();
      if (!response.ok) throw new Error(answer.error || `HTTP ${response.status}`);
      if (state.inked) showAnswer(answer);
      state.inFlight = false;
      if (state.dirty) requestPrediction();
      else setState(state.inked ? "done" : "idle");
    } catch (error) {
      state.inFlight = false;
      setState("error", `prediction failed: ${error.message}`);
    }
  }, "image/png");
}

function showAnswer(answer) {
  state.answer = answer;
  const p = answer.probabilities[answer.digit];
  digitView.textContent = String(answer.digit);
  digitView.dataset.digit = String(answer.digit);
  confidenceView.textContent = `${(100 * p).toFixed(1)} % sure`;
  renderBars(answer);
  slider.max = String(answer.steps.length);
  slider.value = String(answer.steps.length);
  slider.disabled = false;
  playButton.disabled = false;
  renderReading();
}

function renderBars(answer) {
  const classes = state.model ? state.model.model.num_classes : 10;
  if (bars.children.length !== classes) {
    bars.replaceChildren();
    for (let c = 0; c < classes; c++) {
      const item = document.createElement("li");
      item.innerHTML = `<span class="label">${c}</span><span class="bar"><span class="fill"></span></span><span class="value"></span>`;
      bars.append(item);
    }
  }
  [...bars.children].forEach((item, c) => {
    const p = answer ? answer.probabilities[c] : 0;
    item.querySelector(".fill").style.width = `${(100 * p).toFixed(1)}%`;
    item.querySelector(".value").textContent = answer ? `${(100 * p).toFixed(1)}` : "";
    item.classList.toggle("best", Boolean(answer) && c === answer.digit);
  });
}

// Which pixels the network has read after `step` steps (null: the order is not the image's own).
function readMask(step) {
  const side = 28;
  const sequence = state.model ? state.model.sequence : "rows";
  if (sequence === "rows") return (i) => Math.floor(i / side) < step;
  if (sequence === "pixels") return (i) => i < step;
  return null;
}

function currentStep() {
  return Number(slider.value);
}

function renderReading() {
  const answer = state.answer;
  const steps = answer ? answer.steps.length : state.model ? state.model.steps : 28;
  const classes = state.model ? state.model.model.num_classes : 10;
  const step = answer ? currentStep() : steps;

  // The image as the model saw it, with what is not yet read dimmed.
  const seenPen = seen.getContext("2d");
  const picture = seenPen.createImageData(28, 28);
  const mask = readMask(step);
  for (let i = 0; i < 28 * 28; i++) {
    const v = answer ? answer.image[i] : 0;
    const read = !mask || mask(i);
    const shown = read ? v : Math.round(v * 0.25);
    const edge = mask && state.model && state.model.sequence === "rows" && Math.floor(i / 28) === step - 1;
    picture.data[4 * i] = edge ? Math.max(shown, 90) : shown;
    picture.data[4 * i + 1] = edge ? Math.max(shown, 60) : shown;
    picture.data[4 * i + 2] = shown;
    picture.data[4 * i + 3] = 255;
  }
  seenPen.putImageData(picture, 0, 0);

  // One column per step, one row per class.
  heat.width = steps;
  heat.height = classes;
  const heatPen = heat.getContext("2d");
  const cells = heatPen.createImageData(steps, classes);
  for (let t = 0; t < steps; t++) {
    const probabilities = answer ? answer.steps[t].probabilities : null;
    const best = answer ? answer.steps[t].digit : -1;
    for (let c = 0; c < classes; c++) {
      const p = probabilities ? probabilities[c] : 0;
      const k = 4 * (c * steps + t);
      const [r, g, b] = c === best ? [255, 183, 77] : [79, 195, 247];
      cells.data[k] = Math.round(r * p);
      cells.data[k + 1] = Math.round(g * p);
      cells.data[k + 2] = Math.round(b * p);
      cells.data[k + 3] = 255;
    }
  }
  heatPen.putImageData(cells, 0, 0);

  if (answer) {
    marker.style.display = "block";
    marker.style.left = `calc(${((step - 0.5) / steps) * 100}% - 1px)`;
    const at = answer.steps[step - 1];
    const unit = state.model && state.model.sequence === "rows" ? "row" : "pixel";
    stepText.textContent = `After ${unit} ${step} of ${steps}: ${at.digit} (${(100 * at.probabilities[at.digit]).toFixed(1)} %)`;
  } else {
    marker.style.display = "none";
    stepText.innerHTML = "&nbsp;";
  }
}

slider.addEventListener("input", () => {
  stopPlaying();
  renderReading();
});

function stopPlaying() {
  if (state.timer !== null) clearInterval(state.timer);
  state.timer = null;
  playButton.textContent = "Play";
}

playButton.addEventListener("click", () => {
  if (state.timer !== null || !state.answer) {
    stopPlaying();
    return;
  }
  const steps = state.answer.steps.length;
  const stride = Math.max(1, Math.round(steps / 28));
  let step = 0;
  playButton.textContent = "Stop";
  state.timer = setInterval(() => {
    step = Math.min(steps, step + stride);
    slider.value = String(step);
    renderReading();
    if (step >= steps) stopPlaying();
  }, 90);
});

async function start() {
  clearPad();
  try {
    const response = await fetch("/api/health");
    state.model = await response.json();
    const m = state.model.model;
    document.getElementById("model").textContent =
      `${state.model.run}: ${m.cell}, hidden ${m.hidden_size}, ${m.num_layers} layer${m.num_layers === 1 ? "" : "s"}, ` +
      `${state.model.sequence} (${state.model.steps} steps), on ${state.model.backend}`;
    document.getElementById("unit").textContent = state.model.sequence === "rows" ? "a row" : "a pixel";
    document.querySelector(".classes").innerHTML = Array.from({ length: m.num_classes }, (_, c) => `<li>${c}</li>`).join("");
    renderBars(null);
    renderReading();
    setState("idle");
  } catch (error) {
    setState("error", `cannot reach the server: ${error.message}`);
  }
}

start();
