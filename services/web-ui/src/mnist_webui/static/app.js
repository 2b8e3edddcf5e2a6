// MNIST web UI: fetch digits and predictions without reloading, draw and upload digits.
// Served by the app itself; the Content-Security-Policy allows no other script.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const result = $("result");
  const banner = $("banner");
  let readinessTimer = null;
  let currentLabel = null; // the true label, when the digit is a held-out sample

  // ---- showing a prediction ------------------------------------------------------------------

  function setBars(probabilities, predicted) {
    document.querySelectorAll("#bars .bar-row").forEach((row) => {
      const digit = Number(row.dataset.digit);
      const p = probabilities ? probabilities[digit] : 0;
      row.querySelector(".bar").style.width = (p * 100).toFixed(1) + "%";
      row.querySelector(".bar-value").textContent = (p * 100).toFixed(1) + "%";
      row.classList.toggle("top", digit === predicted);
    });
  }

  function showPrediction(answer, trueLabel, seenImage) {
    $("prediction").textContent = String(answer.prediction);
    setBars(answer.probabilities, answer.prediction);
    $("model-name").textContent = answer.model.name;
    const version = answer.model.version === null ? "–" : String(answer.model.version);
    $("model-version").textContent = version;
    $("badge-version").textContent = answer.model.version === null ? "" : "v" + version;
    $("badge-label").textContent = answer.model.label ? "(" + answer.model.label + ")" : "";
    $("latency").textContent = answer.latency_ms.toFixed(1) + " ms";
    const verdict = $("verdict");
    verdict.replaceChildren();
    if (trueLabel !== null) {
      const mark = document.createElement("span");
      const correct = trueLabel === answer.prediction;
      mark.className = correct ? "ok" : "bad";
      mark.textContent = correct ? "Correct" : "Wrong";
      verdict.append(mark);
      if (!correct) verdict.append(" (true label " + trueLabel + ")");
    }
    const figure = $("model-input-figure");
    if (seenImage) {
      $("model-input").src = seenImage;
      figure.hidden = false;
    } else {
      figure.hidden = true;
    }
    $("error-text").textContent = "";
  }

  function clearPrediction() {
    $("prediction").textContent = "?";
    $("verdict").replaceChildren();
    setBars(null, -1);
    $("latency").textContent = "–";
    $("model-version").textContent = "–"; // only a version that answered is ever shown
    $("model-input-figure").hidden = true;
  }

  // ---- talking to the API --------------------------------------------------------------------

  async function callApi(path, options) {
    let response;
    try {
      response = await fetch(path, options);
    } catch (error) {
      throw { status: 0, reason: "the web UI cannot be reached" };
    }
    let body = null;
    try {
      body = await response.json();
    } catch (error) {
      body = null;
    }
    if (!response.ok) {
      const reason = body && body.error ? body.error : "request failed (" + response.status + ")";
      throw { status: response.status, reason: reason };
    }
    return body;
  }

  function showBanner(reason) {
    $("banner-text").textContent = reason;
    banner.hidden = false;
    if (readinessTimer === null) {
      readinessTimer = window.setInterval(checkReadiness, 3000);
    }
  }

  function hideBanner() {
    banner.hidden = true;
    if (readinessTimer !== null) {
      window.clearInterval(readinessTimer);
      readinessTimer = null;
    }
  }

  async function checkReadiness() {
    try {
      await callApi("/api/v1/model"); // asks the model server (/readyz is the UI's own readiness)
      hideBanner();
      if ($("prediction").textContent === "?" && !$("panel-sample").hidden) newSample();
    } catch (error) {
      /* still down: the banner stays */
    }
  }

  function handleFailure(error) {
    if (error.status === 503 || error.status === 0) {
      showBanner(error.reason);
      clearPrediction();
    } else {
      $("error-text").textContent = error.reason;
    }
  }

  async function predict(body, trueLabel) {
    result.setAttribute("aria-busy", "true");
    try {
      const answer = await callApi("/api/v1/predict", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(body),
      });
      hideBanner();
      showPrediction(answer, trueLabel, answer.preprocessed || null);
    } catch (error) {
      handleFailure(error);
    } finally {
      result.setAttribute("aria-busy", "false");
    }
  }

  // ---- held-out samples ----------------------------------------------------------------------

  async function newSample() {
    const button = $("new-sample");
    button.disabled = true;
    try {
      const sample = await callApi("/api/v1/sample");
      $("digit-image").src = sample.image;
      $("digit-image").alt = "Held-out MNIST digit, labelled " + sample.label;
      $("true-label").textContent = String(sample.label);
      $("sample-index").textContent = "#" + sample.index;
      currentLabel = sample.label;
      await predict({ pixels: sample.pixels }, sample.label);
    } catch (error) {
      handleFailure(error);
    } finally {
      button.disabled = false;
    }
  }

  $("sample-form").addEventListener("submit", (event) => {
    event.preventDefault();
    newSample();
  });

  // ---- tabs (arrow keys move between them, as WAI-ARIA tabs do) ------------------------------

  const tabs = Array.from(document.querySelectorAll('[role="tab"]'));

  function selectTab(tab, focus) {
    tabs.forEach((other) => {
      const selected = other === tab;
      other.setAttribute("aria-selected", String(selected));
      other.tabIndex = selected ? 0 : -1;
      $(other.getAttribute("aria-controls")).hidden = !selected;
    });
    if (focus) tab.focus();
  }

  tabs.forEach((tab, index) => {
    tab.addEventListener("click", () => selectTab(tab, false));
    tab.addEventListener("keydown", (event) => {
      const moves = { ArrowRight: 1, ArrowLeft: -1, Home: -index, End: tabs.length - 1 - index };
      if (!(event.key in moves)) return;
      event.preventDefault();
      const next = (index + moves[event.key] + tabs.length) % tabs.length;
      selectTab(tabs[next], true);
    });
  });

  // ---- drawing -------------------------------------------------------------------------------

  const canvas = $("draw-canvas");
  const context = canvas.getContext("2d");
  let drawing = false;
  let hasInk = false;

  function resetCanvas() {
    context.fillStyle = "#000";
    context.fillRect(0, 0, canvas.width, canvas.height);
    context.strokeStyle = "#fff";
    context.fillStyle = "#fff";
    context.lineWidth = 20;
    context.lineCap = "round";
    context.lineJoin = "round";
    hasInk = false;
  }

  function canvasPoint(event) {
    const rect = canvas.getBoundingClientRect();
    return {
      x: ((event.clientX - rect.left) * canvas.width) / rect.width,
      y: ((event.clientY - rect.top) * canvas.height) / rect.height,
    };
  }

  canvas.addEventListener("pointerdown", (event) => {
    event.preventDefault();
    canvas.setPointerCapture(event.pointerId);
    drawing = true;
    const point = canvasPoint(event);
    context.beginPath();
    context.arc(point.x, point.y, context.lineWidth / 2, 0, Math.PI * 2);
    context.fill();
    context.beginPath();
    context.moveTo(point.x, point.y);
    hasInk = true;
  });

  canvas.addEventListener("pointermove", (event) => {
    if (!drawing) return;
    const point = canvasPoint(event);
    context.lineTo(point.x, point.y);
    context.stroke();
    context.beginPath();
    context.moveTo(point.x, point.y);
  });

  function endStroke() {
    if (!drawing) return;
    drawing = false;
    predictDrawing();
  }
  canvas.addEventListener("pointerup", endStroke);
  canvas.addEventListener("pointercancel", endStroke);

  function predictDrawing() {
    if (!hasInk) {
      $("error-text").textContent = "Draw a digit first.";
      return;
    }
    currentLabel = null;
    predict({ image: canvas.toDataURL("image/png") }, null);
  }

  $("predict-drawing").addEventListener("click", predictDrawing);
  $("clear-canvas").addEventListener("click", () => {
    resetCanvas();
    clearPrediction();
  });

  // ---- uploads -------------------------------------------------------------------------------

  const MAX_UPLOAD_BYTES = 700 * 1024; // base64 grows it by 4/3; the API takes 1 MiB bodies

  const uploadInput = $("upload-input");
  const fileButton = document.querySelector(".file-button");
  uploadInput.addEventListener("focus", () => fileButton.classList.add("focused"));
  uploadInput.addEventListener("blur", () => fileButton.classList.remove("focused"));

  uploadInput.addEventListener("change", () => {
    const file = uploadInput.files && uploadInput.files[0];
    if (!file) return;
    if (file.size > MAX_UPLOAD_BYTES) {
      $("error-text").textContent = "That file is larger than 700 KiB; choose a smaller image.";
      return;
    }
    const reader = new FileReader();
    reader.onload = () => {
      $("upload-preview").src = reader.result;
      $("upload-preview").hidden = false;
      currentLabel = null;
      predict({ image: reader.result }, null);
    };
    reader.onerror = () => {
      $("error-text").textContent = "The file could not be read.";
    };
    reader.readAsDataURL(file);
  });

  // ---- start ---------------------------------------------------------------------------------

  resetCanvas();
  document.querySelectorAll("#bars .bar").forEach((bar) => {
    bar.style.width = (Number(bar.dataset.value) * 100).toFixed(1) + "%";
  });
  const label = $("true-label").textContent.trim();
  currentLabel = /^[0-9]$/.test(label) ? Number(label) : null;
  if (!banner.hidden) showBanner($("banner-text").textContent);
})();
