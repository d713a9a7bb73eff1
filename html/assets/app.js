// Latchkey web UI: progressive enhancement only. Every page works without
// this script; with it, confirmations open in a <dialog>, secrets copy to
// the clipboard, the tenant switcher submits on change, and the focus goes
// to a field with an error or to a key just created.
(function () {
  "use strict";
  document.documentElement.classList.add("js");

  // Confirmations. Buttons with data-confirm submit a GET form that leads
  // to a confirmation page; here they open the dialog instead, whose form
  // POSTs to the same URL. They are real buttons, so a click, Enter and
  // Space all arrive here as one click event.
  var dialog = document.getElementById("confirm-dialog");
  var opener = null;
  // A key that opened the dialog must not also press the dialog's buttons
  // (auto-repeat, or a browser that activates on another key event): until
  // it is released, keyboard clicks inside the dialog are ignored.
  var keyHeld = false;
  if (dialog && typeof dialog.showModal === "function") {
    document.addEventListener("click", function (e) {
      var b = e.target.closest && e.target.closest("button[data-confirm]");
      if (!b || !b.form || e.defaultPrevented) {
        return;
      }
      e.preventDefault();
      document.getElementById("confirm-form").setAttribute("action", b.form.getAttribute("action"));
      document.getElementById("confirm-title").textContent = b.getAttribute("data-confirm");
      document.getElementById("confirm-text").textContent = b.getAttribute("data-confirm-text") || "";
      document.getElementById("confirm-submit").textContent = b.getAttribute("data-confirm-button") || "Confirm";
      opener = b;
      keyHeld = e.detail === 0; // 0: not a pointer click
      dialog.showModal();
      document.getElementById("confirm-cancel").focus();
    });
    document.addEventListener("keyup", function () { keyHeld = false; }, true);
    dialog.addEventListener("click", function (e) {
      if (keyHeld && e.detail === 0 && e.target.closest && e.target.closest("button")) {
        e.preventDefault();
        return;
      }
      if (e.target === dialog) { // a click on the backdrop
        dialog.close("cancel");
      }
    });
    dialog.addEventListener("close", function () {
      if (opener && document.body.contains(opener)) {
        opener.focus();
      }
      opener = null;
    });
  }

  // Copy buttons: data-copy names the input whose value is copied.
  function legacyCopy() {
    try {
      return document.execCommand("copy");
    } catch (err) {
      return false;
    }
  }
  document.addEventListener("click", function (e) {
    var b = e.target.closest && e.target.closest("button[data-copy]");
    if (!b) {
      return;
    }
    var input = document.getElementById(b.getAttribute("data-copy"));
    var status = document.getElementById("copy-status");
    var done = function (ok) {
      if (status) {
        status.textContent = ok ? "Copied to the clipboard." : "Press Ctrl+C (⌘C on a Mac) to copy the selected text.";
      }
      if (ok) {
        b.textContent = "Copied";
        setTimeout(function () { b.textContent = "Copy"; }, 2000);
      }
    };
    input.focus();
    input.select();
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(input.value).then(function () { done(true); }, function () { done(legacyCopy()); });
    } else {
      done(legacyCopy());
    }
  });
  document.querySelectorAll("[data-select-on-focus]").forEach(function (el) {
    el.addEventListener("focus", function () { el.select(); });
  });

  // The tenant switcher submits as soon as a tenant is picked.
  document.querySelectorAll("select[data-autosubmit]").forEach(function (s) {
    s.addEventListener("change", function () {
      if (s.form.requestSubmit) {
        s.form.requestSubmit();
      } else {
        s.form.submit();
      }
    });
  });

  // The expiration date field shows only for "On a date…".
  document.querySelectorAll("select[data-expiration]").forEach(function (s) {
    var field = s.form.querySelector("[data-expiration-date]");
    if (!field) {
      return;
    }
    var input = field.querySelector("input");
    if (input.value) { // a date wins over the list, as on the server
      s.value = "custom";
    }
    var sync = function () {
      var custom = s.value === "custom";
      field.hidden = !custom;
      input.required = custom;
      if (!custom) {
        input.value = "";
      }
    };
    s.addEventListener("change", function () {
      sync();
      if (s.value === "custom") {
        input.focus();
      }
    });
    sync();
  });

  // "No expiration" shows its warning.
  document.querySelectorAll("select[data-expiration]").forEach(function (s) {
    var warning = s.form.querySelector("[data-no-expiry-warning]");
    if (!warning) {
      return;
    }
    var sync = function () { warning.hidden = s.value !== "never"; };
    s.addEventListener("change", sync);
    sync();
  });

  // After a form came back with an error, the field it is about has the
  // focus; after a key was created, its highlighted row.
  var invalid = document.querySelector("main [aria-invalid=\"true\"]");
  var created = document.querySelector("tr[data-new]");
  if (invalid) {
    invalid.focus();
  } else if (created) {
    created.focus();
  }
})();
