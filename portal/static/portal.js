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
