/* The mark grid (grades/grid.html): Enter goes to the next pupil; typing an absence or excuse word
   ticks the matching status, and leaving the page with unsaved marks asks first.
   The words and labels come from the form's data attributes (no inline script: the CSP forbids it). */
(function () {
  "use strict";
  var form = document.getElementById("marks-form");
  if (!form || !form.hasAttribute("data-absent")) return;
  function words(name) {
    try { return JSON.parse(form.getAttribute(name) || "[]"); } catch (e) { return []; }
  }
  var inputs = Array.prototype.slice.call(form.querySelectorAll("input.mark"));
  var absent = words("data-absent"), excused = words("data-excused");
  var labels = {
    absent: form.getAttribute("data-label-absent") || "",
    excused: form.getAttribute("data-label-excused") || "",
    present: ""
  };
  var dirty = false;
  function rowOf(el) { return el.closest(".pupil"); }
  function setStatus(row, value) {
    var radio = row.querySelector('input[type=radio][value="' + value + '"]');
    if (radio) radio.checked = true;
    row.setAttribute("data-status", value);
    row.querySelector("input.mark").placeholder = labels[value];
  }
  function next(i) {
    var target = inputs[i + 1];
    if (target) { target.focus(); target.select(); }
    else { document.getElementById("save-marks").focus(); }
  }
  inputs.forEach(function (input, i) {
    input.addEventListener("keydown", function (event) {
      if (event.key === "Enter") { event.preventDefault(); next(i); }
    });
    input.addEventListener("input", function () {
      dirty = true;
      var word = input.value.trim().toLowerCase();
      if (!word) return;
      if (absent.indexOf(word) >= 0) setStatus(rowOf(input), "absent");
      else if (excused.indexOf(word) >= 0) setStatus(rowOf(input), "excused");
      else setStatus(rowOf(input), "present");
    });
  });
  form.addEventListener("change", function (event) {
    var target = event.target;
    if (target.type !== "radio") return;
    dirty = true;
    var row = rowOf(target), input = row.querySelector("input.mark");
    setStatus(row, target.value);
    if (target.value === "present") { input.focus(); }
    else { input.value = ""; }
  });
  form.addEventListener("submit", function () { dirty = false; });
  window.addEventListener("beforeunload", function (event) { if (dirty) { event.preventDefault(); event.returnValue = ""; } });
})();
