// Instant self-check: after a figure changes, ask the API with the same rules and show the result.
(function () {
  const form = document.getElementById("selfcheck");
  const out = document.getElementById("results");
  if (!form || !out || !window.fetch) return;
  const token = form.querySelector("[name=csrfmiddlewaretoken]").value;
  let timer = null;
  function figures() {
    const data = {};
    for (const el of form.elements) {
      if (el.name && el.name !== "csrfmiddlewaretoken") data[el.name] = el.value === "" ? null : el.value;
    }
    return data;
  }
  function text(tag, cls, s) { const e = document.createElement(tag); if (cls) e.className = cls; e.textContent = s; return e; }
  async function check() {
    const res = await fetch(form.dataset.api, {
      method: "POST", credentials: "same-origin",
      headers: {"Content-Type": "application/json", "X-CSRFToken": token},
      body: JSON.stringify({figures: figures()}),
    });
    if (!res.ok && res.status !== 422) return;
    const body = await res.json();
    out.replaceChildren();
    const errs = Object.entries(body.errors || {});
    if (errs.length) out.append(text("p", "error", "有 " + errs.length + " 个值无法识别：" + errs.map(([k, v]) => v).join("；")));
    if (res.status === 422) return;
    if (!body.problems.length) { out.append(text("h2", "", "没有发现问题")); return; }
    out.append(text("h2", "", "发现 " + body.problems.length + " 处需要核实"));
    for (const p of body.problems) {
      const a = document.createElement("article");
      a.className = "finding sev-" + p.severity;
      a.append(text("header", "rule", p.rule_id), text("p", "", p.message));
      if (p.suggestion) { const s = text("p", "suggestion", "建议填写："); s.append(text("b", "", p.suggestion)); a.append(s); }
      out.append(a);
    }
  }
  form.addEventListener("input", function () { clearTimeout(timer); timer = setTimeout(check, 300); });
})();
