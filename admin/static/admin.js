// Kleis admin: copy buttons and device-login polling. Plain JS; every page also works without it.
"use strict";

function copyText(text) {
  if (navigator.clipboard && window.isSecureContext) {
    return navigator.clipboard.writeText(text);
  }
  const area = document.createElement("textarea");
  area.value = text;
  area.setAttribute("readonly", "");
  area.style.position = "fixed";
  area.style.opacity = "0";
  document.body.appendChild(area);
  area.select();
  const ok = document.execCommand("copy");
  area.remove();
  return ok ? Promise.resolve() : Promise.reject(new Error("copy refused"));
}

function setupCopyButtons() {
  document.querySelectorAll("[data-copy]").forEach((button) => {
    button.addEventListener("click", () => {
      const source = document.querySelector(button.dataset.copy);
      if (!source) return;
      const label = button.textContent;
      copyText(source.textContent.trim()).then(
        () => { button.textContent = "Copied"; },
        () => { button.textContent = "Select and copy by hand"; }
      ).finally(() => setTimeout(() => { button.textContent = label; }, 2000));
    });
  });
}

function setupDevicePolling() {
  const status = document.getElementById("poll-status");
  if (!status) return;
  const token = document.querySelector('meta[name="csrf-token"]').content;
  let interval = Math.max(1, parseFloat(status.dataset.interval) || 5);

  async function poll() {
    let answer;
    try {
      const response = await fetch(status.dataset.pollUrl, {
        method: "POST",
        headers: { "X-CSRFToken": token, "Accept": "application/json" },
        credentials: "same-origin",
      });
      answer = await response.json();
    } catch (error) {
      status.textContent = "Could not reach Kleis; trying again…";
      setTimeout(poll, interval * 1000);
      return;
    }
    if (answer.status === "done") {
      status.textContent = answer.message || "Account added.";
      window.location.assign(answer.redirect);
    } else if (answer.status === "pending") {
      interval = Math.max(1, parseFloat(answer.interval) || interval);
      status.textContent = (answer.message || "Waiting for the provider to confirm") + "…";
      setTimeout(poll, interval * 1000);
    } else {
      status.textContent = answer.error ? answer.error.message : answer.message;
      status.classList.add("bad");
    }
  }
  setTimeout(poll, interval * 1000);
}

document.addEventListener("DOMContentLoaded", () => {
  setupCopyButtons();
  setupDevicePolling();
});
