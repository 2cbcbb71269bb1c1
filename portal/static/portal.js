// Progressive enhancement only: every page works without this file.
// After htmx swaps a step, move focus to its error summary or heading so screen readers follow.
document.addEventListener("htmx:afterSwap", function (event) {
  var target = event.detail.target;
  if (!target) { return; }
  var summary = target.querySelector(".error-summary");
  var heading = target.querySelector("h1");
  var focusable = summary || heading;
  if (focusable) {
    if (!focusable.hasAttribute("tabindex")) { focusable.setAttribute("tabindex", "-1"); }
    focusable.focus();
  }
});

// Copy buttons: <button data-copy="INPUT-ID" hidden>. They stay hidden where the clipboard
// can't be used (no JavaScript, plain http); the input can always be selected by hand.
function showCopyButtons() {
  if (!navigator.clipboard) { return; }
  document.querySelectorAll("button[data-copy]").forEach(function (button) { button.hidden = false; });
}
document.addEventListener("DOMContentLoaded", showCopyButtons);
document.addEventListener("htmx:afterSwap", showCopyButtons);
document.addEventListener("click", function (event) {
  var button = event.target.closest ? event.target.closest("button[data-copy]") : null;
  if (!button) { return; }
  var id = button.getAttribute("data-copy");
  var input = document.getElementById(id);
  var status = document.getElementById(id + "-status");
  if (!input) { return; }
  input.select();
  navigator.clipboard.writeText(input.value).then(function () {
    if (status) { status.textContent = "Copied."; }
  }, function () {
    if (status) { status.textContent = "Couldn't copy: select the link and copy it by hand."; }
  });
});
