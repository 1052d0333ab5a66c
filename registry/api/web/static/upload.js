// Send the chosen or dropped file to the service with a progress bar; the service answers
// with the results as HTML (escaped on the server), or with a JSON error shown as one line.
"use strict";
(function () {
  const form = document.getElementById("upload");
  const input = document.getElementById("file");
  const drop = document.getElementById("drop");
  const transfer = document.getElementById("transfer");
  const progress = document.getElementById("progress");
  const status = document.getElementById("status");
  const error = document.getElementById("error");
  const results = document.getElementById("results");

  function fail(message) {
    transfer.hidden = true;
    status.textContent = "";
    error.textContent = message;
    error.hidden = false;
  }

  function answer(xhr) {
    if (xhr.status === 200) {
      status.textContent = "Done.";
      results.innerHTML = xhr.responseText;
      results.focus();
      return;
    }
    let message = "the service answered " + xhr.status;
    try {
      message = JSON.parse(xhr.responseText).message || message;
    } catch (_) { /* not JSON: keep the status line */ }
    fail("Could not check this file: " + message);
  }

  function send(file) {
    error.hidden = true;
    results.textContent = "";
    if (file.size > Number(form.dataset.maxBytes)) {
      fail("Could not check this file: it is larger than this service accepts (" +
           form.dataset.maxMb + " MB).");
      return;
    }
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/upload?filename=" + encodeURIComponent(file.name));
    xhr.setRequestHeader("Content-Type", "application/octet-stream");
    xhr.upload.onprogress = function (event) {
      if (event.lengthComputable) {
        progress.value = Math.round((100 * event.loaded) / event.total);
        progress.textContent = progress.value + " %";
      }
    };
    xhr.upload.onload = function () {
      progress.value = 100;
      status.textContent = "Uploaded. Computing the ISCC and searching the registry…";
    };
    xhr.onload = function () { transfer.hidden = true; answer(xhr); };
    xhr.onerror = function () { fail("Could not check this file: the connection failed."); };
    transfer.hidden = false;
    progress.value = 0;
    status.textContent = "Uploading " + file.name + "…";
    xhr.send(file);
  }

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
})();
