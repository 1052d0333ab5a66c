// Send the chosen or dropped file to the service: a progress bar while it uploads, a spinner
// and Cancel while the service computes; the service answers with the results as HTML
// (escaped on the server), or with a JSON error shown as one line. A result gets its own
// address, so it can be shared, bookmarked and left with Back.
"use strict";
(function () {
  const form = document.getElementById("upload");
  const input = document.getElementById("file");
  const drop = document.getElementById("drop");
  const home = document.getElementById("home");
  const transfer = document.getElementById("transfer");
  const progress = document.getElementById("progress");
  const spinner = document.getElementById("spinner");
  const status = document.getElementById("status");
  const error = document.getElementById("error");
  const cancel = document.getElementById("cancel");
  const results = document.getElementById("results");
  let current = null;

  function idle() {
    transfer.hidden = true;
    spinner.hidden = true;
    cancel.hidden = true;
    current = null;
  }

  function fail(message) {
    idle();
    status.textContent = "";
    error.textContent = message;
    error.hidden = false;
  }

  function showThumbnail(file) {
    const img = document.getElementById("local-thumb");
    if (!img || !/^image\/(png|jpeg|gif|webp)$/.test(file.type)) return;
    const reader = new FileReader();
    reader.onload = function () {
      img.src = reader.result;
      img.hidden = false;
    };
    reader.readAsDataURL(file);
  }

  function answer(xhr, file) {
    idle();
    if (xhr.status === 200) {
      status.textContent = "";
      results.innerHTML = xhr.responseText;
      home.classList.add("has-result");
      const section = results.querySelector("[data-share]");
      if (section) history.pushState({ result: true }, "", section.dataset.share);
      showThumbnail(file);
      document.dispatchEvent(new CustomEvent("registry:content", { detail: results }));
      results.focus({ preventScroll: true });
      window.scrollTo(0, 0);
      return;
    }
    let message = "the service answered " + xhr.status;
    try {
      message = JSON.parse(xhr.responseText).message || message;
    } catch (_) { /* not JSON: keep the status line */ }
    fail("Could not check this file: " + message);
  }

  function send(file) {
    if (current) current.abort();
    error.hidden = true;
    results.textContent = "";
    if (file.size > Number(form.dataset.maxBytes)) {
      fail("Could not check this file: it is larger than this service accepts (" +
           form.dataset.maxMb + " MB).");
      return;
    }
    const xhr = new XMLHttpRequest();
    current = xhr;
    xhr.open("POST", "/upload?filename=" + encodeURIComponent(file.name));
    xhr.setRequestHeader("Content-Type", "application/octet-stream");
    xhr.upload.onprogress = function (event) {
      if (event.lengthComputable) {
        progress.value = Math.round((100 * event.loaded) / event.total);
        progress.textContent = progress.value + " %";
      }
    };
    xhr.upload.onload = function () {
      if (current !== xhr) return;
      transfer.hidden = true;
      spinner.hidden = false;
      status.textContent = "Computing the ISCC and searching the registry…";
    };
    xhr.onload = function () { answer(xhr, file); };
    xhr.onerror = function () { fail("Could not check this file: the connection failed."); };
    xhr.onabort = function () {
      idle();
      status.textContent = "Cancelled: " + file.name + " was not checked.";
    };
    progress.value = 0;
    transfer.hidden = false;
    cancel.hidden = false;
    status.textContent = "Uploading " + file.name + "…";
    xhr.send(file);
  }

  cancel.addEventListener("click", function () { if (current) current.abort(); });
  input.addEventListener("change", function () {
    if (input.files.length) send(input.files[0]);
  });
  form.addEventListener("submit", function (event) { event.preventDefault(); });
  drop.addEventListener("dragover", function (event) {
    event.preventDefault();
    drop.classList.add("over");
  });
  drop.addEventListener("dragleave", function () { drop.classList.remove("over"); });
  drop.addEventListener("drop", function (event) {
    event.preventDefault();
    drop.classList.remove("over");
    if (event.dataTransfer.files.length) send(event.dataTransfer.files[0]);
  });
  // The page behind a pushed result address is the one the server renders for it.
  window.addEventListener("popstate", function () { location.reload(); });
})();
