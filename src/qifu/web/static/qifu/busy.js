// A form whose work takes some seconds (a policy's trial or match over a county) says so while
// the server works: its buttons are disabled and the one pressed reads its data-busy text.
// The pressed button's name and value still go with the form, as a hidden field.
(function () {
  for (const form of document.querySelectorAll("form[data-busy]")) {
    form.addEventListener("submit", (event) => {
      const pressed = event.submitter;
      for (const old of form.querySelectorAll("input[data-pressed]")) old.remove();  // after a download
      if (pressed && pressed.name) {
        const keep = document.createElement("input");
        keep.type = "hidden";
        keep.dataset.pressed = "";
        keep.name = pressed.name;
        keep.value = pressed.value;
        form.appendChild(keep);
      }
      if (pressed && pressed.value === "export") return;  // a download: the page stays as it is
      for (const button of form.querySelectorAll("button")) button.disabled = true;
      if (pressed) pressed.textContent = pressed.dataset.busy || form.dataset.busy;
    });
  }
})();
