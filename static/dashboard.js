// The dashboard's small enhancements; every page works without them.
// - Copy buttons (hidden until this script shows them) copy the text of the element they name.
// - A field the server marked invalid drops the mark and its message once it is edited.
// - A chart wider than the screen shows its latest bar.
// - The site form's solve-time estimate follows the challenges and difficulty as they are typed,
//   with the same rates and wording as the server's (src/captcha/solve_time.rs).
"use strict";

document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("button.copy[data-copy]").forEach(function (button) {
    var target = document.getElementById(button.getAttribute("data-copy"));
    if (!target || !navigator.clipboard) return;
    button.hidden = false;
    if (button.hasAttribute("data-label")) button.setAttribute("aria-label", "Copy " + button.getAttribute("data-label"));
    button.addEventListener("click", function () {
      var text = "value" in target && target.tagName !== "BUTTON" ? target.value : target.textContent;
      navigator.clipboard.writeText(text.trim()).then(function () {
        button.textContent = "Copied";
        setTimeout(function () { button.textContent = "Copy"; }, 2000);
      }, function () {
        button.textContent = "Copy failed";
      });
    });
  });

  // A field marked invalid by the server stops being marked once it is changed.
  document.querySelectorAll("[aria-invalid='true']").forEach(function (field) {
    field.addEventListener("input", function () {
      field.removeAttribute("aria-invalid");
      var wrapper = field.closest(".field");
      if (wrapper) wrapper.classList.remove("invalid");
      (field.getAttribute("aria-describedby") || "").split(" ").forEach(function (id) {
        var note = id && /-error$/.test(id) && document.getElementById(id);
        if (note) note.hidden = true;
      });
    }, { once: true });
  });

  // A chart wider than the screen starts from its right end (CSS); when its latest bar is not
  // there (early in the day, Today's later hours are still empty), it scrolls to that bar.
  document.querySelectorAll(".chart").forEach(function (chart) {
    var bars = chart.querySelectorAll("svg g rect");
    if (!bars.length || chart.scrollWidth <= chart.clientWidth) return;
    var box = chart.getBoundingClientRect(), bar = bars[bars.length - 1].getBoundingClientRect();
    if (bar.left >= box.left && bar.right <= box.right) return;
    // Brings the bar in with a little room on its right.
    chart.scrollLeft += bar.right + Math.min(48, box.width / 4) - box.right;
  });

  var estimate = document.getElementById("solve-estimate");
  var count = document.getElementById("challenge_count");
  var difficulty = document.getElementById("difficulty");
  if (!estimate || !count || !difficulty) return;
  var laptop = Number(estimate.getAttribute("data-laptop-hps"));
  var phone = Number(estimate.getAttribute("data-phone-hps"));
  var slowMs = Number(estimate.getAttribute("data-slow-ms"));
  var maxCount = Number(estimate.getAttribute("data-max-count"));
  var maxDifficulty = Number(estimate.getAttribute("data-max-difficulty"));
  var text = estimate.querySelector(".estimate-text");
  var warning = estimate.querySelector(".estimate-warning");

  function duration(ms) {
    if (ms < 9950) return (Math.round(Math.max(ms, 100) / 100) / 10).toFixed(1) + " s";
    if (ms < 60000) return Math.round(ms / 1000) + " s";
    if (ms < 3600000) return Math.round(ms / 60000) + " min";
    if (ms < 86400000) return Math.round(ms / 3600000) + " h";
    var days = Math.round(ms / 86400000);
    return days === 1 ? "1 day" : days + " days";
  }

  function update() {
    var c = Number(count.value.trim()), d = Number(difficulty.value.trim());
    if (!Number.isInteger(c) || !Number.isInteger(d) || c < 1 || d < 1 || c > maxCount || d > maxDifficulty) {
      text.textContent = "Expected solve time: enter challenges 1–" + maxCount + " and difficulty 1–" + maxDifficulty + ".";
      warning.hidden = true;
      return;
    }
    var hashes = c * Math.pow(16, d);
    var phoneMs = hashes / phone * 1000;
    text.textContent = "Expected solve time: about " + duration(hashes / laptop * 1000) +
      " on a laptop, " + duration(phoneMs) + " on a mid-range phone.";
    warning.hidden = phoneMs <= slowMs;
  }

  count.addEventListener("input", update);
  difficulty.addEventListener("input", update);
});
