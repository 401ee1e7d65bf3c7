// Site Pulse 360: the little behaviour htmx does not cover. Loaded as a file so the
// Content-Security-Policy needs no inline script.
"use strict";

// A button with data-copy="ID" copies the text of element ID to the clipboard.
document.addEventListener("click", function (event) {
  var button = event.target.closest("button[data-copy]");
  if (!button) return;
  var source = document.getElementById(button.getAttribute("data-copy"));
  if (!source || !navigator.clipboard) return;
  navigator.clipboard.writeText(source.textContent.trim()).then(function () {
    var label = button.textContent;
    button.textContent = "Copied";
    window.setTimeout(function () { button.textContent = label; }, 1500);
  });
});

// Shows whether the live connection is up, so a stale page does not pass for a live one.
document.addEventListener("htmx:sseOpen", function () {
  document.body.setAttribute("data-live", "on");
});
document.addEventListener("htmx:sseError", function () {
  document.body.setAttribute("data-live", "off");
});

// Copy buttons only work with a script, so they are hidden until it runs.
document.querySelectorAll("button[data-copy][hidden]").forEach(function (button) {
  button.hidden = false;
});
