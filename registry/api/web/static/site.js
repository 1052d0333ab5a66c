// On every page: copy buttons for shortened values and links. Pages work without it; the
// buttons only show once this script runs (a class on <html> reveals them).
"use strict";
(function () {
  document.documentElement.classList.add("js");

  function copied(button) {
    const label = button.textContent;
    button.textContent = "Copied";
    setTimeout(function () { button.textContent = label; }, 1500);
  }

  document.addEventListener("click", function (event) {
    const button = event.target.closest("button.copy");
    if (!button) return;
    const text = button.dataset.copyLink
      ? new URL(button.dataset.copyLink, location.href).href
      : button.dataset.copy;
    navigator.clipboard.writeText(text).then(
      function () { copied(button); },
      function () { button.textContent = "Select and copy by hand"; }
    );
  });
})();
