// Progressive enhancement only: every page works without this file.

// The element htmx swapped in. With hx-swap="outerHTML" the event's target is the element that
// was replaced, so look the new one up by its id.
function swappedIn(event) {
  var target = event.detail.target;
  if (!target) { return null; }
  return (target.id && document.getElementById(target.id)) || target;
}

// Inline validation swaps one error slot (id "err-NAME"): mark the controls it describes invalid
// or valid again, as the server does on a full page, so screen readers say so with the message.
function markInvalid(slot) {
  if (!slot.id || !slot.classList.contains("field-error")) { return; }
  var message = slot.textContent.trim();
  var invalid = message !== "";
  var announcer = document.getElementById("announcer");
  // Cleared when the field is fixed, so no stale message is left to be read later.
  if (announcer) { announcer.textContent = message; }
  document.querySelectorAll("[aria-describedby]").forEach(function (control) {
    if (control.getAttribute("aria-describedby").split(/\s+/).indexOf(slot.id) < 0) { return; }
    if (invalid) { control.setAttribute("aria-invalid", "true"); }
    else { control.removeAttribute("aria-invalid"); }
  });
}

// After htmx swaps a whole step in, move focus to its error summary or its heading, so screen
// readers follow; an error slot swapped by inline validation keeps focus where the user is.
function focusSwapped(region) {
  if (region.classList.contains("field-error")) { keepFocusInView(); return; }
  var focusable = region.querySelector(".error-summary") || region.querySelector("h1");
  if (!focusable) { return; }
  if (!focusable.hasAttribute("tabindex")) { focusable.setAttribute("tabindex", "-1"); }
  focusable.focus();
}

// A message inserted above the focused control pushes it down, off the bottom of the screen
// when the browser had scrolled just far enough to show it: bring it back into view.
function keepFocusInView() {
  var active = document.activeElement;
  if (!active || active === document.body) { return; }
  var box = active.getBoundingClientRect();
  if (box.top < 0 || box.bottom > window.innerHeight) { active.scrollIntoView({ block: "nearest" }); }
}

document.addEventListener("htmx:afterSwap", function (event) {
  var region = swappedIn(event);
  if (!region) { return; }
  markInvalid(region);
  focusSwapped(region);
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
